"""Environment helpers: seeding, saving/restoring the random generators, and a description of the software/hardware."""

from __future__ import annotations

import contextlib
import os
import platform
import random
import sys
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import numpy as np
import torch

__all__ = ["seed_all_rng", "get_rng_state", "set_rng_state", "preserve_rng_state", "collect_env_info", "TORCH_VERSION"]

TORCH_VERSION = tuple(int(x) for x in torch.__version__.split(".")[:2])


def seed_all_rng(seed: int | None = None) -> int:
    """Seed python ``random``, numpy and torch (CPU and CUDA). ``None`` draws a fresh seed.

    Returns:
        the seed used.
    """
    if seed is None:
        seed = (os.getpid() + int(datetime.now().strftime("%S%f")) + int.from_bytes(os.urandom(2), "big")) % 2**31
    seed = int(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    return seed


def get_rng_state() -> dict[str, Any]:
    """The state of every global random generator of this process: python, numpy, torch CPU and each CUDA device.

    Made of tensors, numbers, strings and tuples only, so it loads with ``torch.load(weights_only=True)``.
    """
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what `get_rng_state` returned (CUDA states only when saved and the devices exist)."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"][: torch.cuda.device_count()])


@contextlib.contextmanager
def preserve_rng_state() -> Iterator[None]:
    """Run a block without consuming the global random generators: their states are restored afterwards.

    Evaluation and validation hooks run inside it, so that a run with evaluations draws the same training
    randomness (RoI sampling, ...) as one without, and a resumed run continues exactly where it was saved.
    """
    state = get_rng_state()
    try:
        yield
    finally:
        set_rng_state(state)


def collect_env_info() -> str:
    """A table of the versions/devices relevant for reproducing a run."""
    import cv2
    import fvcore
    import iopath
    import omegaconf
    import PIL
    import pycocotools
    import torchvision

    rows = [
        ("sys.platform", sys.platform),
        ("Python", sys.version.replace("\n", " ")),
        ("platform", platform.platform()),
        ("numpy", np.__version__),
        ("PyTorch", f"{torch.__version__} @{os.path.dirname(torch.__file__)}"),
        ("CUDA available", torch.cuda.is_available()),
        ("torchvision", torchvision.__version__),
    ]
    for module in (fvcore, iopath, omegaconf, cv2, PIL, pycocotools):
        rows.append((module.__name__, getattr(module, "__version__", "unknown")))
    if torch.cuda.is_available():
        rows.append(("CUDA (torch)", torch.version.cuda))
        for i in range(torch.cuda.device_count()):
            rows.append((f"GPU {i}", torch.cuda.get_device_name(i)))
    rows.append(("CPU threads", torch.get_num_threads()))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
