"""``DetectionCheckpointer``: fvcore's ``Checkpointer`` with atomic, finite-only saves and checked, safe loading."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from fvcore.common.checkpoint import Checkpointer
from torch import nn

from net_detr2.utils import comm

from .atomic_io import atomic_write
from .safe_load import CheckpointLoadError, load_pkl, load_pth

__all__ = ["DetectionCheckpointer", "register_state_dict_converter", "MAX_ITERATION"]

logger = logging.getLogger(__name__)

# Functions (state_dict, checkpoint) -> state_dict applied to loaded weights, in order (e.g. the
# torchvision -> net_detr2 name conversion the modeling code registers).
_STATE_DICT_CONVERTERS: list[Callable[[dict, dict], dict]] = []

# A checkpoint's "iteration" beyond this is corrupt (a billion iterations is years of training).
MAX_ITERATION = 10**9
# numpy kinds that are not numbers: object, unicode/bytes strings, void (raw records).
_NON_NUMERIC_KINDS = {"O", "U", "S", "V"}
# The most offending tensor names a message lists.
_NAMES_SHOWN = 10


def register_state_dict_converter(fn: Callable[[dict, dict], dict]) -> Callable[[dict, dict], dict]:
    """Register ``fn(state_dict, checkpoint) -> state_dict``, called on every loaded checkpoint.

    ``checkpoint`` holds the file's metadata (``__author__``, ``matching_heuristics``, ...). A
    converter must return ``state_dict`` unchanged when the names already match the model.
    """
    _STATE_DICT_CONVERTERS.append(fn)
    return fn


def _shown(items: list[str]) -> str:
    more = f" (and {len(items) - _NAMES_SHOWN} more)" if len(items) > _NAMES_SHOWN else ""
    return ", ".join(items[:_NAMES_SHOWN]) + more


def _non_finite_tensors(state_dict: Mapping[str, Any]) -> list[str]:
    """``"name (k of n values)"`` for each floating/complex tensor of ``state_dict`` holding NaN or Inf."""
    bad = []
    for name, t in state_dict.items():
        if isinstance(t, torch.Tensor) and (t.is_floating_point() or t.is_complex()) and t.numel():
            finite = torch.isfinite(t)
            if not bool(finite.all()):
                bad.append(f"{name} ({int(t.numel() - finite.sum())} of {t.numel()} values)")
    return bad


def _strip_ddp_prefix(state_dict: dict) -> dict:
    """Keys of a model saved inside DistributedDataParallel start with ``module.``: drop it (all or none)."""
    if state_dict and all(isinstance(k, str) and k.startswith("module.") for k in state_dict):
        return {k[len("module.") :]: v for k, v in state_dict.items()}
    return state_dict


class DetectionCheckpointer(Checkpointer):
    """Save/load model + checkpointables (optimizer, scheduler, grad scaler ...).

    Saving:

    * happens on the main process only; every file (``model_XXX.pth`` and ``last_checkpoint``) is written
      atomically, so an interrupted save keeps the previous checkpoint intact (clean up the temporary
      files of killed saves with :func:`net_detr2.checkpoint.remove_stale_temp_files`);
    * never writes non-finite weights: a model parameter or buffer holding NaN/Inf makes ``save`` raise
      ``FloatingPointError`` naming the tensors, before anything is written (``last_checkpoint`` keeps
      naming the last finite checkpoint);
    * a full disk raises ``OSError(ENOSPC)`` naming the file, leaving no temporary file behind.
    * with ``ema`` (a `net_detr2.solver.ModelEMA`), ``model`` holds the *averaged* weights, the ones evaluated
      and the ones any reader of ``model`` (``init_checkpoint``, ``--eval-only``, ``demo.py``, detectron2) gets;
      the trained weights are kept as ``raw_model`` and the number of averaging steps as ``ema_updates``.

    Loading:

    * ``.pth`` files load with ``weights_only=True``; ``.pkl`` files (detectron2 model zoo) through a
      restricted, size-bounded unpickler; a corrupt file raises ``CheckpointLoadError`` naming it. Its
      ``model`` must map names to numeric arrays/tensors and its ``iteration`` (if any) must be an integer in
      ``[-1, MAX_ITERATION]``, else the error names the file and key. URLs are refused (nothing is ever
      downloaded), and a directory is reported as one.
    * ImageNet backbone checkpoints (torchvision ResNet/VGG-16 ``.pth``, detectron2/Caffe2 ``.pkl``) are
      renamed to the model's backbone keys on load (`net_detr2.compat.backbone_weights`).
    * Resuming (``resume_or_load(..., resume=True)`` with a ``last_checkpoint`` in ``save_dir``, or
      ``load(path, strict=True)``) loads a file's ``raw_model`` (when it has one) into the model and its
      ``model`` into ``ema`` (a run without ``ema`` continues from the raw weights, with a warning); any
      other load takes ``model``, and restarts ``ema`` from it. Resuming is strict: any missing or unexpected
      key or shape mismatch raises ``CheckpointLoadError`` listing them, before the model is touched.
      Initialising from another checkpoint (fine-tuning: ``train.init_checkpoint``) is lenient, as in
      detectron2: missing / unexpected keys and mismatched shapes (e.g. a classifier head for another number
      of classes) are skipped and logged by name. The last result is kept in ``self.last_incompatible``.
    """

    def __init__(
        self,
        model: nn.Module,
        save_dir: str = "",
        *,
        save_to_disk: bool | None = None,
        ema: Any = None,
        **checkpointables: Any,
    ):
        if save_to_disk is None:
            save_to_disk = comm.is_main_process()
        super().__init__(model, save_dir, save_to_disk=save_to_disk, **checkpointables)
        self.ema = ema
        self.last_incompatible = None
        self._strict = False

    # -- saving ---------------------------------------------------------------------------------
    def save(self, name: str, **kwargs: Any) -> None:
        """Write ``save_dir/name.pth`` (model, checkpointables, ``kwargs``) and point ``last_checkpoint`` at it.

        Raises:
            FloatingPointError: a model parameter or buffer holds NaN/Inf (nothing is written).
            OSError: the write failed (``errno.ENOSPC`` for a full disk); the previous files are intact.
        """
        if not self.save_dir or not self.save_to_disk:
            return
        basename = f"{name}.pth"
        save_file = os.path.join(self.save_dir, basename)
        model_state = self.model.state_dict()
        weights = {"model": model_state}
        if self.ema is not None:
            weights = {"model": self.ema.state_dict(), "raw_model": model_state}
        bad = [
            f"{key}/{name}" if len(weights) > 1 else name
            for key, state in weights.items()
            for name in _non_finite_tensors(state)
        ]
        if bad:
            previous = self.get_checkpoint_file() if self.has_checkpoint() else ""
            kept = f"last_checkpoint still names {previous}" if previous else "no checkpoint was written before"
            raise FloatingPointError(
                f"Refusing to save {save_file}: {len(bad)} of the model's tensors hold NaN or Inf values: "
                f"{_shown(bad)}. Training has diverged; {kept}."
            )
        data: dict[str, Any] = dict(weights)
        if self.ema is not None:
            data["ema_updates"] = self.ema.num_updates
        for key, obj in self.checkpointables.items():
            data[key] = obj.state_dict()
        data.update(kwargs)
        self.logger.info(f"Saving checkpoint to {save_file}")
        atomic_write(save_file, lambda f: torch.save(data, f))
        self.tag_last_checkpoint(basename)

    def tag_last_checkpoint(self, last_filename_basename: str) -> None:
        save_file = os.path.join(self.save_dir, "last_checkpoint")
        atomic_write(save_file, lambda f: f.write(last_filename_basename), mode="w")

    # -- loading --------------------------------------------------------------------------------
    def get_checkpoint_file(self) -> str:
        """The file ``save_dir/last_checkpoint`` names ("" when there is none). Raises if it is empty."""
        path = super().get_checkpoint_file()
        if path and os.path.normpath(path) == os.path.normpath(self.save_dir):
            raise CheckpointLoadError(f"{os.path.join(self.save_dir, 'last_checkpoint')} is empty")
        return path

    def resume_or_load(self, path: str, *, resume: bool = True) -> dict[str, Any]:
        """With ``resume`` and a ``last_checkpoint`` in ``save_dir``: load that checkpoint strictly, with every
        checkpointable. Otherwise load only the model weights of ``path`` ("" = none), leniently."""
        if resume and self.has_checkpoint():
            last = self.get_checkpoint_file()
            if not os.path.isfile(last):
                raise FileNotFoundError(
                    f"Cannot resume: {os.path.join(self.save_dir, 'last_checkpoint')} names {last}, which does "
                    "not exist"
                )
            return self.load(last, strict=True)
        return self.load(path, checkpointables=[])

    def load(self, path: str, checkpointables: list[str] | None = None, *, strict: bool = False) -> dict[str, Any]:
        """Load ``path`` into the model and the ``checkpointables`` (None: all); return the remaining data.

        ``strict``: every key of the model must be in the file with its shape, and nothing else (resuming).
        """
        if path:
            path = os.fspath(path)
            if "://" in path:
                hint = ""
                if path.startswith("detectron2://"):
                    hint = f" (detectron2's model zoo: https://dl.fbaipublicfiles.com/detectron2/{path[13:]})"
                raise CheckpointLoadError(
                    f"Checkpoint {path} is a URL; net_detr2 never downloads anything. Download the file "
                    f"yourself{hint} and give its local path."
                )
            if os.path.isdir(path):
                found = sorted(f for f in os.listdir(path) if f.endswith((".pth", ".pkl")))
                listing = f"; it holds {_shown(found)}" if found else ""
                raise IsADirectoryError(
                    f"Checkpoint {path} is a directory, not a checkpoint file: give a .pth/.pkl file{listing}"
                )
            if not os.path.isfile(path):
                raise FileNotFoundError(f"Checkpoint {path} not found")
        self._strict = strict
        try:
            extra = super().load(path, checkpointables=checkpointables)
        finally:
            self._strict = False
        if path:
            self._load_ema(path, extra, resuming=strict)
        return extra

    def _load_ema(self, path: str, extra: dict[str, Any], *, resuming: bool) -> None:
        """After a load: the average of the weights from the file (resuming a run that kept one), else from the
        loaded model."""
        averaged, updates = extra.pop("ema_model", None), extra.pop("ema_updates", 0)
        if self.ema is None:
            if averaged is not None:
                logger.warning(
                    f"{path} holds an average of the weights (train.ema) that this run does not keep: training "
                    "continues from the trained weights (raw_model) without it"
                )
            return
        if averaged is None:
            if resuming:
                logger.warning(f"{path} holds no average of the weights: train.ema starts it from the loaded weights")
            self.ema.reset(self.model)
            return
        if isinstance(updates, bool) or not isinstance(updates, int) or updates < 0:
            raise CheckpointLoadError(f"Checkpoint {path}: 'ema_updates' is {updates!r}, expected an integer >= 0")
        try:
            self.ema.load_state_dict(_strip_ddp_prefix(dict(averaged)), updates)
        except (KeyError, RuntimeError) as e:
            raise CheckpointLoadError(f"Checkpoint {path}: its averaged weights ('model') do not fit: {e}") from e
        self.logger.info(f"Loaded the average of the weights ({updates} updates) from {path}")

    def _load_file(self, filename: str) -> dict[str, Any]:
        if filename.endswith(".pkl"):
            data = load_pkl(filename)
            if not isinstance(data, dict):
                raise CheckpointLoadError(f"Checkpoint {filename} holds a {type(data).__name__}, expected a dict")
            if "model" in data:
                model = data["model"]
                meta = {k: v for k, v in data.items() if k != "model"}
            elif "blobs" in data:  # Caffe2-era files
                blobs = data["blobs"]
                if not isinstance(blobs, dict):
                    raise CheckpointLoadError(
                        f"Checkpoint {filename}: 'blobs' is a {type(blobs).__name__}, expected a dict"
                    )
                model = {k: v for k, v in blobs.items() if not (isinstance(k, str) and k.endswith("_momentum"))}
                meta = {"__author__": "Caffe2", "matching_heuristics": True}
            else:
                model, meta = data, {}
            self._check_state_dict(filename, model, numpy_ok=True)
            checkpoint = {"model": model, **meta}
        else:
            loaded = load_pth(filename)
            if not isinstance(loaded, dict):
                raise CheckpointLoadError(f"Checkpoint {filename} holds a {type(loaded).__name__}, expected a dict")
            # Without a "model" entry, the file is a bare state dict (e.g. torchvision weights).
            checkpoint = loaded if "model" in loaded else {"model": loaded}
            self._check_state_dict(filename, checkpoint["model"], numpy_ok=False)
        if "iteration" in checkpoint:
            checkpoint["iteration"] = self._check_iteration(filename, checkpoint["iteration"])
        if "raw_model" in checkpoint:  # written with an average of the weights: "model" holds the average
            self._check_state_dict(filename, checkpoint["raw_model"], numpy_ok=False)
            raw = checkpoint.pop("raw_model")
            if self._strict:  # resuming: the model goes on from its own weights, the average from the average
                checkpoint["ema_model"], checkpoint["model"] = checkpoint["model"], raw
        checkpoint["__file__"] = filename
        return checkpoint

    @staticmethod
    def _check_state_dict(filename: str, model: Any, *, numpy_ok: bool) -> None:
        """``model`` must map str names to numeric tensors (and, from .pkl files, numeric numpy arrays/numbers)."""
        if not isinstance(model, Mapping):
            raise CheckpointLoadError(
                f"Checkpoint {filename}: 'model' is a {type(model).__name__}, expected a dict of tensors"
            )
        for key, value in model.items():
            if not isinstance(key, str):
                raise CheckpointLoadError(f"Checkpoint {filename}: 'model' has a non-string key {key!r}")
            if isinstance(value, torch.Tensor):
                continue
            if numpy_ok and isinstance(value, (np.ndarray, np.generic)):
                if value.dtype.kind not in _NON_NUMERIC_KINDS:
                    continue
                raise CheckpointLoadError(
                    f"Checkpoint {filename}: 'model' entry '{key}' is a numpy array of dtype {value.dtype} "
                    "(objects/strings), not numbers"
                )
            if numpy_ok and isinstance(value, (int, float)):
                continue
            expected = "a numeric array or tensor" if numpy_ok else "a tensor"
            raise CheckpointLoadError(
                f"Checkpoint {filename}: 'model' entry '{key}' is a {type(value).__name__}, expected {expected}"
            )

    @staticmethod
    def _check_iteration(filename: str, value: Any) -> int:
        """The checkpoint's ``iteration`` as an int; refuses non-integers and values outside [-1, MAX_ITERATION]."""
        if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_floating_point():
            value = value.item()
        if isinstance(value, np.integer):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise CheckpointLoadError(
                f"Checkpoint {filename}: 'iteration' is {value!r} ({type(value).__name__}), expected an integer"
            )
        if not -1 <= value <= MAX_ITERATION:
            raise CheckpointLoadError(
                f"Checkpoint {filename}: 'iteration' = {value} is outside [-1, {MAX_ITERATION}]; the file is corrupt"
            )
        return value

    def _load_model(self, checkpoint: dict[str, Any]):
        filename = checkpoint.pop("__file__", "<checkpoint>")
        state_dict = checkpoint["model"]
        # numpy arrays from .pkl files -> tensors (np.array copies into a contiguous, writable array and keeps
        # 0-d shapes (counters); pickles may hold views).
        for k, v in list(state_dict.items()):
            if isinstance(v, (np.ndarray, np.generic)):
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
        state_dict = _strip_ddp_prefix(dict(state_dict))
        if self._strict:
            self._check_matches_model(filename, state_dict)
        checkpoint["model"] = state_dict
        n_total = len(state_dict)
        incompatible = super()._load_model(checkpoint)
        self.last_incompatible = incompatible
        n_loaded = n_total - len(incompatible.unexpected_keys) - len(incompatible.incorrect_shapes)
        self.logger.info(f"Loaded {n_loaded} tensors from {filename}")
        return incompatible

    def _check_matches_model(self, filename: str, state_dict: dict[str, torch.Tensor]) -> None:
        """Raise, naming every difference, unless ``state_dict`` has exactly the model's keys and shapes."""
        model_state = self.model.state_dict()
        missing = [k for k in model_state if k not in state_dict]
        unexpected = [k for k in state_dict if k not in model_state]
        shapes = [
            f"{k}: {tuple(state_dict[k].shape)} in the file, {tuple(v.shape)} in the model"
            for k, v in model_state.items()
            if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)
        ]
        if not (missing or unexpected or shapes):
            return
        parts = []
        if shapes:
            parts.append(f"{len(shapes)} shape mismatches: {_shown(shapes)}")
        if missing:
            parts.append(f"{len(missing)} keys of the model missing from the file: {_shown(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} keys the model does not have: {_shown(unexpected)}")
        raise CheckpointLoadError(
            f"Cannot resume from {filename}: it does not match the model ({'; '.join(parts)}). Was it written "
            "by another config? Resume with the config that wrote it, or start a new train.output_dir (and give "
            "the file as train.init_checkpoint to load what matches)."
        )
