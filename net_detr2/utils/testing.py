"""Small models and inputs for tests (of the core and of the projects built on it)."""

from __future__ import annotations

import torch

from net_detr2.structures import Boxes, Instances

__all__ = ["ssd_training_inputs", "tiny_ssd"]


def tiny_ssd(num_classes: int = 3, size: int = 300):
    """An SSD with a 1/16-width VGG-16 + BN (random weights), VOC default boxes for ``size`` in {300, 512}."""
    from net_detr2.modeling.anchor_generator import DefaultBoxGenerator, ssd_default_box_sizes
    from net_detr2.modeling.backbone import VGG16, SSDBackbone, ssd_extra_layers
    from net_detr2.modeling.meta_arch.ssd import SSD, SSDHead

    vgg = VGG16(out_features=["conv4_3", "fc7"], width_mult=0.0625, norm="BN")
    backbone = SSDBackbone(
        bottom_up=vgg, in_features=["conv4_3", "fc7"], extra_layers=ssd_extra_layers(size, 0.0625), norm="BN"
    )
    gen = DefaultBoxGenerator(**ssd_default_box_sizes(size, "voc"))
    channels = [s.channels for s in backbone.output_shape().values()]
    head = SSDHead(in_channels=channels, num_anchors=gen.num_anchors, num_classes=num_classes)
    return SSD(
        backbone=backbone,
        head=head,
        prior_generator=gen,
        num_classes=num_classes,
        pixel_mean=[104.0, 117.0, 123.0],
        pixel_std=[1.0, 1.0, 1.0],
    )


def ssd_training_inputs(n: int = 2, size: int = 300) -> list[dict]:
    """``n`` random uint8 BGR images (seeded) of ``size`` x ``size``; image i holds the first i + 1 of two boxes
    (classes 0 and 2)."""
    g = torch.Generator().manual_seed(0)
    out = []
    for i in range(n):
        inst = Instances((size, size))
        inst.gt_boxes = Boxes(torch.tensor([[10.0, 20.0, 60.0, 90.0], [120.0, 100.0, 280.0, 290.0]])[: i + 1])
        inst.gt_classes = torch.tensor([0, 2])[: i + 1]
        out.append({"image": torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=g), "instances": inst})
    return out
