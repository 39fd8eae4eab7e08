"""``build_model``: a model from a LazyCall node or from a registered meta-architecture name."""

from __future__ import annotations

from typing import Any

import torch
from omegaconf import DictConfig

from .registry import META_ARCH_REGISTRY

__all__ = ["build_model"]


def build_model(cfg: Any, device: str | torch.device | None = None, **kwargs: Any) -> torch.nn.Module:
    """Build a detector.

    Args:
        cfg: a LazyCall node (``DictConfig``/dict with ``_target_``) — it is instantiated and
            ``kwargs`` must be empty — or the name of a class in ``META_ARCH_REGISTRY``
            (e.g. ``"GeneralizedRCNN"``), called with ``kwargs``.
        device: move the model there (e.g. ``"cuda"``); ``None`` keeps it where it was built.
    Returns:
        the model (``nn.Module``).
    """
    if isinstance(cfg, str):
        try:
            cls = META_ARCH_REGISTRY.get(cfg)
        except KeyError as e:
            known = sorted(k for k, _ in META_ARCH_REGISTRY)
            from net_detr2.config.instantiate import did_you_mean

            raise KeyError(
                f"build_model: no meta-architecture '{cfg}' in META_ARCH_REGISTRY"
                f"{did_you_mean(cfg, known)} (registered: {', '.join(known)})"
            ) from e
        model = cls(**kwargs)
    elif isinstance(cfg, (DictConfig, dict)) and "_target_" in cfg:
        if kwargs:
            raise TypeError(
                f"build_model: extra arguments {sorted(kwargs)} given with a LazyCall node; set them "
                "on the node instead"
            )
        from net_detr2.config import instantiate

        model = instantiate(cfg)
    else:
        raise TypeError(f"build_model: expected a LazyCall node or a registry name, got {type(cfg).__name__}")
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"build_model: the config built a {type(model).__name__}, not an nn.Module")
    if device is not None:
        model.to(torch.device(device))
    return model
