"""``DetectionCheckpointer``: fvcore's ``Checkpointer`` with atomic saves and safe loading."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from fvcore.common.checkpoint import Checkpointer
from torch import nn

from net_detr2.utils import comm

from .safe_load import CheckpointLoadError, atomic_write, load_pkl, load_pth

__all__ = ["DetectionCheckpointer", "register_state_dict_converter"]

logger = logging.getLogger(__name__)

# Functions (state_dict, checkpoint) -> state_dict applied to loaded weights, in order (e.g. the
# torchvision -> net_detr2 name conversion the modeling code registers).
_STATE_DICT_CONVERTERS: list[Callable[[dict, dict], dict]] = []


def register_state_dict_converter(fn: Callable[[dict, dict], dict]) -> Callable[[dict, dict], dict]:
    """Register ``fn(state_dict, checkpoint) -> state_dict``, called on every loaded checkpoint.

    ``checkpoint`` holds the file's metadata (``__author__``, ``matching_heuristics``, ...). A
    converter must return ``state_dict`` unchanged when the names already match the model.
    """
    _STATE_DICT_CONVERTERS.append(fn)
    return fn


class DetectionCheckpointer(Checkpointer):
    """Save/load model + checkpointables (optimizer, scheduler, grad scaler ...).

    * Saves happen on the main process only, and every file (``model_XXX.pth`` and
      ``last_checkpoint``) is written atomically, so an interrupted save keeps the previous
      checkpoint intact.
    * ``.pth`` files load with ``weights_only=True``; ``.pkl`` files (detectron2 model zoo) through a
      restricted unpickler; a corrupt file raises ``CheckpointLoadError`` naming it.
    * ImageNet backbone checkpoints (torchvision ResNet/VGG-16 ``.pth``, detectron2/Caffe2 ``.pkl``) are
      renamed to the model's backbone keys on load (`net_detr2.compat.backbone_weights`).
    * Missing / unexpected keys and shape mismatches are logged by name; mismatched shapes are
      skipped. The last result is kept in ``self.last_incompatible``.
    """

    def __init__(
        self, model: nn.Module, save_dir: str = "", *, save_to_disk: bool | None = None, **checkpointables: Any
    ):
        if save_to_disk is None:
            save_to_disk = comm.is_main_process()
        super().__init__(model, save_dir, save_to_disk=save_to_disk, **checkpointables)
        self.last_incompatible = None

    # -- saving ---------------------------------------------------------------------------------
    def save(self, name: str, **kwargs: Any) -> None:
        if not self.save_dir or not self.save_to_disk:
            return
        data: dict[str, Any] = {"model": self.model.state_dict()}
        for key, obj in self.checkpointables.items():
            data[key] = obj.state_dict()
        data.update(kwargs)
        basename = f"{name}.pth"
        save_file = os.path.join(self.save_dir, basename)
        self.logger.info(f"Saving checkpoint to {save_file}")
        atomic_write(save_file, lambda f: torch.save(data, f))
        self.tag_last_checkpoint(basename)

    def tag_last_checkpoint(self, last_filename_basename: str) -> None:
        save_file = os.path.join(self.save_dir, "last_checkpoint")
        atomic_write(save_file, lambda f: f.write(last_filename_basename), mode="w")

    # -- loading --------------------------------------------------------------------------------
    def load(self, path: str, checkpointables: list[str] | None = None) -> dict[str, Any]:
        if path and not os.path.isfile(path) and "://" not in path:
            raise FileNotFoundError(f"Checkpoint {path} not found")
        return super().load(path, checkpointables=checkpointables)

    def _load_file(self, filename: str) -> dict[str, Any]:
        if filename.endswith(".pkl"):
            data = load_pkl(filename)
            if not isinstance(data, dict):
                raise CheckpointLoadError(f"Checkpoint {filename} holds a {type(data).__name__}, expected a dict")
            if "model" in data:
                model = data["model"]
                meta = {k: v for k, v in data.items() if k != "model"}
            elif "blobs" in data:  # Caffe2-era files
                model = {k: v for k, v in data["blobs"].items() if not k.endswith("_momentum")}
                meta = {"__author__": "Caffe2", "matching_heuristics": True}
            else:
                model, meta = data, {}
            if not isinstance(model, dict):
                raise CheckpointLoadError(
                    f"Checkpoint {filename}: 'model' is a {type(model).__name__}, expected a dict"
                )
            bad = [k for k, v in model.items() if not isinstance(v, (np.ndarray, torch.Tensor, np.generic, int, float))]
            if bad:
                raise CheckpointLoadError(f"Checkpoint {filename}: entries {bad[:5]} are not arrays")
            return {"model": model, **meta, "__file__": filename}
        loaded = load_pth(filename)
        if not isinstance(loaded, dict):
            raise CheckpointLoadError(f"Checkpoint {filename} holds a {type(loaded).__name__}, expected a dict")
        if "model" not in loaded:
            # A bare state dict (e.g. torchvision weights).
            loaded = {"model": loaded}
        loaded["__file__"] = filename
        return loaded

    def _load_model(self, checkpoint: dict[str, Any]):
        filename = checkpoint.pop("__file__", "<checkpoint>")
        state_dict = checkpoint["model"]
        # numpy arrays from .pkl files -> tensors (ascontiguousarray: pickles may hold views).
        for k, v in list(state_dict.items()):
            if isinstance(v, (np.ndarray, np.generic)):
                # np.array copies into a contiguous, writable array and keeps 0-d shapes (counters).
                state_dict[k] = torch.from_numpy(np.array(v))
            elif not isinstance(v, torch.Tensor):
                state_dict[k] = torch.as_tensor(v)
        from net_detr2.compat.backbone_weights import adapt_backbone_checkpoint

        state_dict, converted = adapt_backbone_checkpoint(state_dict, self.model.state_dict().keys())
        if converted:
            logger.info(
                f"{filename} is {converted}; the model's config must match how it was trained "
                "(stride_in_1x1, input format, pixel mean/std: see net_detr2/compat/backbone_weights.py)"
            )
        meta = {k: v for k, v in checkpoint.items() if k != "model"}
        for fn in _STATE_DICT_CONVERTERS:
            state_dict = fn(state_dict, meta)
        checkpoint["model"] = state_dict
        n_total = len(state_dict)
        incompatible = super()._load_model(checkpoint)
        self.last_incompatible = incompatible
        n_loaded = n_total - len(incompatible.unexpected_keys) - len(incompatible.incorrect_shapes)
        self.logger.info(f"Loaded {n_loaded} tensors from {filename}")
        return incompatible
