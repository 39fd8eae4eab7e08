"""Convert an ImageNet VGG-16 (torchvision ``vgg16`` state dict) into net_detr2's SSD `VGG16` backbone.

As in the SSD release, the fully-connected layers become convolutions by subsampling:
fc6 (4096 x 512*7*7) -> 1024 x 512 x 3 x 3 (every 4th output, every 3rd spatial tap: 0, 3, 6), used as
the dilated 3x3 conv after the 3x3/1 pool5; fc7 (4096 x 4096) -> 1024 x 1024 x 1 x 1 (every 4th output
and input). The classifier (fc8) is dropped.

torchvision's VGG takes RGB input scaled to [0, 1] and normalised by the ImageNet mean/std. With
``to_bgr=True`` (default) conv1_1's input channels are reversed so the model can take detectron2's usual
BGR 0-255 input with ``pixel_mean=[103.53, 116.28, 123.675]`` and ``pixel_std=[57.375, 57.12, 58.395]``
(the same normalisation expressed in 0-255 units), which the NETNet ImageNet configs use.
"""

from __future__ import annotations

import torch

__all__ = ["TORCHVISION_VGG16_CONV_INDICES", "convert_torchvision_vgg16_to_ssd"]

# torchvision `features.<i>` index of each 3x3 conv, in VGG order.
TORCHVISION_VGG16_CONV_INDICES = {
    "conv1_1": 0,
    "conv1_2": 2,
    "conv2_1": 5,
    "conv2_2": 7,
    "conv3_1": 10,
    "conv3_2": 12,
    "conv3_3": 14,
    "conv4_1": 17,
    "conv4_2": 19,
    "conv4_3": 21,
    "conv5_1": 24,
    "conv5_2": 26,
    "conv5_3": 28,
}


def convert_torchvision_vgg16_to_ssd(
    state_dict: dict[str, torch.Tensor], prefix: str = "", to_bgr: bool = True, with_fc: bool = True
) -> dict[str, torch.Tensor]:
    """
    Args:
        state_dict: torchvision ``vgg16().state_dict()`` (keys ``features.<i>.*``, ``classifier.{0,3}.*``).
        prefix: prepended to every output key, e.g. ``"backbone.bottom_up."`` for an `SSD` model.
        to_bgr: reverse conv1_1's input channels (RGB -> BGR).
        with_fc: also produce the subsampled ``fc6``/``fc7`` (SSD); False for conv-only backbones.
    Returns:
        state dict for `net_detr2.modeling.backbone.VGG16` (width 1.0, no norm).
    """
    out: dict[str, torch.Tensor] = {}
    for name, idx in TORCHVISION_VGG16_CONV_INDICES.items():
        for kind in ("weight", "bias"):
            key = f"features.{idx}.{kind}"
            if key not in state_dict:
                raise KeyError(
                    f"convert_torchvision_vgg16_to_ssd: missing key {key!r} (is this a torchvision vgg16 state dict?)"
                )
            t = state_dict[key].detach().clone()
            if name == "conv1_1" and kind == "weight" and to_bgr:
                t = t.flip(1)
            out[f"{prefix}{name}.{kind}"] = t
    if with_fc:
        for key in ("classifier.0.weight", "classifier.0.bias", "classifier.3.weight", "classifier.3.bias"):
            if key not in state_dict:
                raise KeyError(f"convert_torchvision_vgg16_to_ssd: missing key {key!r}")
        fc6_w = state_dict["classifier.0.weight"]
        if tuple(fc6_w.shape) != (4096, 512 * 7 * 7):
            raise ValueError(
                f"convert_torchvision_vgg16_to_ssd: classifier.0.weight has shape {tuple(fc6_w.shape)}, "
                "expected (4096, 25088)"
            )
        fc6_w = fc6_w.reshape(4096, 512, 7, 7)[::4, :, ::3, ::3].contiguous()
        fc7_w = state_dict["classifier.3.weight"].reshape(4096, 4096, 1, 1)[::4, ::4].contiguous()
        out[f"{prefix}fc6.weight"] = fc6_w.clone()
        out[f"{prefix}fc6.bias"] = state_dict["classifier.0.bias"][::4].clone()
        out[f"{prefix}fc7.weight"] = fc7_w.clone()
        out[f"{prefix}fc7.bias"] = state_dict["classifier.3.bias"][::4].clone()
    return out
