"""Name registries of the model parts, so configs and checkpoints can refer to them by name."""

from __future__ import annotations

from fvcore.common.registry import Registry

META_ARCH_REGISTRY = Registry("META_ARCH")
META_ARCH_REGISTRY.__doc__ = "Meta-architectures: whole detectors taking list[dict] inputs."

BACKBONE_REGISTRY = Registry("BACKBONE")
BACKBONE_REGISTRY.__doc__ = "Backbones: image tensor -> dict of named feature maps."

PROPOSAL_GENERATOR_REGISTRY = Registry("PROPOSAL_GENERATOR")
PROPOSAL_GENERATOR_REGISTRY.__doc__ = "Proposal generators such as the RPN."

ROI_HEADS_REGISTRY = Registry("ROI_HEADS")
ROI_HEADS_REGISTRY.__doc__ = "ROI heads: features + proposals -> detections / losses."
