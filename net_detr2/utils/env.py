"""Environment helpers: seeding and a printable description of the software/hardware."""

from __future__ import annotations

import os
import platform
import random
import sys
from datetime import datetime

import numpy as np
import torch

__all__ = ["seed_all_rng", "collect_env_info", "TORCH_VERSION"]

TORCH_VERSION = tuple(int(x) for x in torch.__version__.split(".")[:2])


def seed_all_rng(seed: int | None = None) -> int:
    """Seed python ``random``, numpy and torch (CPU and CUDA). ``None`` draws a fresh seed.

    Returns:
        the seed used.
    """
    if seed is None:
        seed = (os.getpid() + int(datetime.now().strftime("%S%f")) + int.from_bytes(os.urandom(2), "big")) % 2**31
    seed = int(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    return seed


def collect_env_info() -> str:
    """A table of the versions/devices relevant for reproducing a run."""
    rows = [
        ("sys.platform", sys.platform),
        ("Python", sys.version.replace("\n", " ")),
        ("platform", platform.platform()),
        ("numpy", np.__version__),
        ("PyTorch", f"{torch.__version__} @{os.path.dirname(torch.__file__)}"),
        ("CUDA available", torch.cuda.is_available()),
    ]
    try:
        import torchvision

        rows.append(("torchvision", torchvision.__version__))
    except ImportError:  # pragma: no cover
        rows.append(("torchvision", "not found"))
    for mod in ("fvcore", "iopath", "omegaconf", "cv2", "PIL", "pycocotools"):
        try:
            m = __import__(mod)
            rows.append((mod, getattr(m, "__version__", "unknown")))
        except ImportError:
            rows.append((mod, "not found"))
    if torch.cuda.is_available():
        rows.append(("CUDA (torch)", torch.version.cuda))
        for i in range(torch.cuda.device_count()):
            rows.append((f"GPU {i}", torch.cuda.get_device_name(i)))
    rows.append(("CPU threads", torch.get_num_threads()))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
