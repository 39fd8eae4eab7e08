"""Helpers that keep an SSD/NETNet LazyConfig's channel counts consistent when its width changes."""

from __future__ import annotations

from net_detr2.modeling.backbone import ssd_extra_layers

__all__ = ["vgg16_ssd_level_channels", "set_vgg16_width"]


def _scaled(c: int, width_mult: float) -> int:
    return max(4, int(round(c * width_mult)))  # the rounding of VGG16 and ssd_extra_layers


def vgg16_ssd_level_channels(input_size: int, width_mult: float = 1.0) -> list[int]:
    """Channels of the SSD-VGG16 pyramid levels (conv4_3, fc7, extra1, ...) at a given width.

    E.g. ``vgg16_ssd_level_channels(300)`` = [512, 1024, 512, 256, 256, 256].
    """
    return [_scaled(512, width_mult), _scaled(1024, width_mult)] + [
        o for _, o, *_ in ssd_extra_layers(input_size, width_mult)
    ]


def set_vgg16_width(model_cfg, width_mult: float, input_size: int = 300):
    """Set the width multiplier of a VGG16 SSD/NETNet model config everywhere it matters (in place).

    Updates the VGG16 ``width_mult``, the extra layers' ``width_mult``, ``head.in_channels`` and, for
    NETNet, ``net.in_channels``. Returns the config.
    """
    model_cfg.backbone.bottom_up.width_mult = width_mult
    model_cfg.backbone.extra_layers.width_mult = width_mult
    channels = vgg16_ssd_level_channels(input_size, width_mult)
    model_cfg.head.in_channels = channels
    if "net" in model_cfg:
        model_cfg.net.in_channels = channels
    return model_cfg
