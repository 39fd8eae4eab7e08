"""`build_backbone`: construct a registered backbone by name."""

from __future__ import annotations

from net_detr2.modeling.registry import BACKBONE_REGISTRY

from .backbone import Backbone

__all__ = ["build_backbone", "BACKBONE_REGISTRY"]


def build_backbone(name: str, **kwargs) -> Backbone:
    """Call the class or builder function registered under `name` in BACKBONE_REGISTRY with `kwargs`.

    E.g. ``build_backbone("build_resnet_fpn_backbone", depth=101)``.
    """
    try:
        builder = BACKBONE_REGISTRY.get(name)
    except KeyError as e:
        raise KeyError(f"Unknown backbone {name!r}; registered: {sorted(k for k, _ in BACKBONE_REGISTRY)}") from e
    backbone = builder(**kwargs)
    if not isinstance(backbone, Backbone):
        raise TypeError(f"Backbone {name!r} returned {type(backbone).__name__}, not a Backbone")
    return backbone
