"""Convert torchvision ImageNet ResNet checkpoints to net_detr2 / detectron2 backbone key names.

torchvision's ResNets differ from detectron2's MSRA ones in two ways that the *config* must match
(the weights alone do not say so):

* the stride of a downsampling bottleneck sits on its 3x3 conv: build the ResNet with
  ``stride_in_1x1=False``;
* they expect RGB input in 0..255 normalised with the ImageNet statistics:
  ``input_format="RGB"``, ``pixel_mean=TORCHVISION_PIXEL_MEAN``, ``pixel_std=TORCHVISION_PIXEL_STD``
  (torchvision's mean/std of [0, 1] images, times 255).

With ``to_bgr=True`` the stem's input channels are reversed instead, so that the model takes
detectron2's usual BGR input: ``input_format="BGR"``, ``pixel_mean=TORCHVISION_PIXEL_MEAN[::-1]``,
``pixel_std=TORCHVISION_PIXEL_STD[::-1]`` (the same normalisation, channels listed in BGR order).

Their BatchNorm layers become FrozenBatchNorm2d buffers (same eps 1e-5); ``num_batches_tracked``
is dropped.
"""

from __future__ import annotations

import re

import torch

__all__ = ["convert_torchvision_resnet", "TORCHVISION_PIXEL_MEAN", "TORCHVISION_PIXEL_STD"]

TORCHVISION_PIXEL_MEAN = [123.675, 116.280, 103.530]  # RGB, 0..255
TORCHVISION_PIXEL_STD = [58.395, 57.120, 57.375]

_BN_FIELDS = ("weight", "bias", "running_mean", "running_var")


def _convert_key(key: str, keep_fc: bool):
    """net_detr2 name for one torchvision key; None for keys that are dropped."""
    if key.endswith("num_batches_tracked"):
        return None
    if key.startswith("fc."):
        return "linear." + key[3:] if keep_fc else None
    if key == "conv1.weight":
        return "stem.conv1.weight"
    m = re.fullmatch(r"bn1\.(\w+)", key)
    if m and m.group(1) in _BN_FIELDS:
        return f"stem.conv1.norm.{m.group(1)}"
    m = re.fullmatch(r"layer(\d)\.(\d+)\.(.+)", key)
    if m is None:
        raise ValueError(f"torchvision ResNet checkpoint: unexpected key {key!r}")
    stage, block, rest = int(m.group(1)) + 1, m.group(2), m.group(3)
    prefix = f"res{stage}.{block}."
    m2 = re.fullmatch(r"conv(\d)\.weight", rest)
    if m2:
        return f"{prefix}conv{m2.group(1)}.weight"
    m2 = re.fullmatch(r"bn(\d)\.(\w+)", rest)
    if m2 and m2.group(2) in _BN_FIELDS:
        return f"{prefix}conv{m2.group(1)}.norm.{m2.group(2)}"
    if rest == "downsample.0.weight":
        return f"{prefix}shortcut.weight"
    m2 = re.fullmatch(r"downsample\.1\.(\w+)", rest)
    if m2 and m2.group(1) in _BN_FIELDS:
        return f"{prefix}shortcut.norm.{m2.group(1)}"
    raise ValueError(f"torchvision ResNet checkpoint: unexpected key {key!r}")


def convert_torchvision_resnet(
    state_dict: dict[str, torch.Tensor], keep_fc: bool = False, prefix: str = "", to_bgr: bool = False
) -> dict[str, torch.Tensor]:
    """Rename a torchvision ResNet state dict (``layer1.0.conv1.weight``, ``bn1.running_mean``, ...).

    Args:
        state_dict: torchvision ``resnet{18,34,50,101,152}`` / ``resnext*`` state dict (optionally
            wrapped in ``{"state_dict": ...}`` or ``{"model": ...}``, or with a ``module.`` prefix
            from DataParallel).
        keep_fc: keep the ImageNet classifier as ``linear.*`` (for `ResNet(num_classes=1000)`).
        prefix: prepended to every output key (e.g. ``"backbone.bottom_up."`` for an FPN detector).
        to_bgr: reverse the input channels of the stem conv so the network takes BGR images (see module doc).

    Returns:
        dict in net_detr2 names: ``stem.conv1.weight``, ``stem.conv1.norm.*``,
        ``res2.0.conv1.weight``, ``res2.0.conv1.norm.*``, ``res2.0.shortcut.*``, ... (res2..res5 =
        torchvision layer1..layer4), tensors unchanged.
    """
    for wrapper in ("state_dict", "model"):
        if wrapper in state_dict and isinstance(state_dict[wrapper], dict):
            state_dict = state_dict[wrapper]
    out = {}
    for key, value in state_dict.items():
        k = key[len("module.") :] if key.startswith("module.") else key
        new = _convert_key(k, keep_fc)
        if new is not None:
            out[prefix + new] = value
    stem = prefix + "stem.conv1.weight"
    if stem not in out:
        raise ValueError("torchvision ResNet checkpoint: no 'conv1.weight' key; is this a torchvision ResNet?")
    if to_bgr:
        out[stem] = out[stem].flip(1)
    return out
