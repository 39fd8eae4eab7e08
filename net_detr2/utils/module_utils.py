"""Two questions every part asks of a model: the module under a DistributedDataParallel wrapper, and its device."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

__all__ = ["unwrap_model", "model_device"]


def unwrap_model(model: nn.Module) -> nn.Module:
    """``model.module`` of a ``DistributedDataParallel`` wrapper, else ``model`` itself."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def model_device(model) -> torch.device:
    """Where ``model`` computes: its ``device`` attribute (detectors have one), else its first parameter's device,
    else the CPU."""
    device = getattr(model, "device", None)
    if device is not None:
        return torch.device(device)
    if isinstance(model, nn.Module):
        param = next(model.parameters(), None)
        if param is not None:
            return param.device
    return torch.device("cpu")
