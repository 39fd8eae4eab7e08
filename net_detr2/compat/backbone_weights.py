"""Load ImageNet classification checkpoints into a detector's backbone, renamed on load.

`DetectionCheckpointer` passes every loaded state dict through `adapt_backbone_checkpoint`, so
``train.init_checkpoint`` may name, as they are on disk:

* a torchvision ResNet/ResNeXt ``.pth`` (``conv1.weight``, ``layer1.0.bn1.running_mean``, ...);
* a detectron2 ImageNet ``.pkl`` in Caffe2 names (MSRA's ``R-50.pkl``: ``conv1_w``, ``res_conv1_bn_s``,
  ``res2_0_branch2a_w``, ...);
* a torchvision VGG-16 ``.pth`` for the SSD/NETNet backbone (fc6/fc7 subsampled into the dilated conv6/conv7,
  conv1_1 turned to BGR input: `vgg_weights`);
* a ResNet state dict already in net_detr2/detectron2 names but without the detector's prefix
  (``stem.conv1.weight`` for a model whose ResNet sits at ``backbone.bottom_up.``), e.g. the output of
  detectron2's torchvision converter.

Only the names change. The configuration must still match how the weights were trained: torchvision
ResNets want ``stride_in_1x1=False`` and RGB input normalised with ImageNet mean/std (see
`torchvision_weights`); MSRA's Caffe2 ResNets want ``stride_in_1x1=True``, BGR input, ``pixel_std=[1, 1, 1]``
(detectron2's defaults). BatchNorm in Caffe2 files is a folded affine (scale ``_s``, bias ``_b``): it
becomes running mean 0 and running variance ``1 - eps``, so that ``FrozenBatchNorm2d`` computes exactly
``x * s + b``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import torch

from .torchvision_weights import convert_torchvision_resnet
from .vgg_weights import convert_torchvision_vgg16_to_ssd

__all__ = ["adapt_backbone_checkpoint", "convert_c2_resnet"]

_STEM_KEY = "stem.conv1.weight"
_VGG_FIRST_KEY = "conv1_1.weight"
_BN_EPS = 1e-5  # FrozenBatchNorm2d's default
_C2_BRANCH = {"branch2a": "conv1", "branch2b": "conv2", "branch2c": "conv3", "branch1": "shortcut"}


def _c2_key(key: str) -> str | None:
    """net_detr2 name of one Caffe2 ResNet blob (``norm.running_*`` are added separately); None: dropped."""
    if key.startswith("fc1000_") or key.endswith(("_momentum", "_bn_rm", "_bn_riv")):
        return None
    if key == "conv1_w":
        return "stem.conv1.weight"
    m = re.fullmatch(r"res_conv1_bn_([sb])", key)
    if m:
        return "stem.conv1.norm." + ("weight" if m.group(1) == "s" else "bias")
    m = re.fullmatch(r"res(\d)_(\d+)_(branch2[abc]|branch1)_(w|bn_s|bn_b)", key)
    if m is None:
        raise ValueError(f"Caffe2 ResNet checkpoint: unexpected blob {key!r}")
    stage, block, branch, kind = m.groups()
    layer = f"res{stage}.{block}.{_C2_BRANCH[branch]}"
    return {"w": f"{layer}.weight", "bn_s": f"{layer}.norm.weight", "bn_b": f"{layer}.norm.bias"}[kind]


def convert_c2_resnet(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a Caffe2 (MSRA / Detectron1) ImageNet ResNet to net_detr2 names; the classifier is dropped.

    Every ``*.norm.weight`` gets ``*.norm.running_mean`` = 0 and ``*.norm.running_var`` = 1 - eps (the blobs
    are a folded affine; see the module doc).
    """
    out = {}
    for key, value in state_dict.items():
        new = _c2_key(key)
        if new is not None:
            out[new] = value
    for key in [k for k in out if k.endswith(".norm.weight")]:
        base = key[: -len("weight")]
        out[base + "running_mean"] = torch.zeros_like(out[key])
        out[base + "running_var"] = torch.full_like(out[key], 1.0 - _BN_EPS)
    if _STEM_KEY not in out:
        raise ValueError("Caffe2 ResNet checkpoint: no 'conv1_w' blob")
    return out


def _looks_torchvision(keys: set[str]) -> bool:
    return any(re.match(r"(module\.)?layer1\.0\.conv1\.weight$", k) for k in keys)


def _looks_c2(keys: set[str]) -> bool:
    return "conv1_w" in keys or any(re.match(r"res\d_\d+_branch", k) for k in keys)


def adapt_backbone_checkpoint(
    state_dict: dict[str, torch.Tensor], model_keys: Iterable[str]
) -> tuple[dict[str, torch.Tensor], str | None]:
    """Rename an ImageNet ResNet/VGG-16 checkpoint to the keys of the model's backbone; others pass unchanged.

    Args:
        state_dict: the loaded tensors.
        model_keys: the model's ``state_dict()`` keys (where its ResNet/VGG sits is read from them).
    Returns:
        ``(state_dict, what)``: ``what`` says which conversion ran (None: none did).
    Raises:
        ValueError: a backbone checkpoint, but the model has no such network (or several) to put it in.
    """
    model_keys = set(model_keys)
    keys = set(state_dict)
    if keys & model_keys:  # names already match (a detector checkpoint, or our own)
        return state_dict, None
    first_key = _STEM_KEY
    if "features.0.weight" in keys and "classifier.0.weight" in keys:
        state_dict, what = convert_torchvision_vgg16_to_ssd(state_dict), "a torchvision VGG-16 (BGR input)"
        first_key = _VGG_FIRST_KEY
    elif _looks_torchvision(keys):
        state_dict, what = convert_torchvision_resnet(state_dict), "a torchvision ResNet"
    elif _looks_c2(keys):
        state_dict, what = convert_c2_resnet(state_dict), "a Caffe2 (detectron2 ImageNet .pkl) ResNet"
    elif _STEM_KEY in keys:
        what = "a ResNet state dict"
    else:
        return state_dict, None
    homes = sorted(k[: -len(first_key)] for k in model_keys if k.endswith(first_key))
    if len(homes) != 1:
        kind = "VGG" if first_key == _VGG_FIRST_KEY else "ResNet"
        raise ValueError(
            f"The checkpoint is {what} (ImageNet backbone weights), but the model has "
            f"{'no ' + kind if not homes else 'several: ' + ', '.join(homes)} to load it into"
        )
    prefix = homes[0]
    return {prefix + k: v for k, v in state_dict.items()}, f"{what}, loaded under '{prefix}'"
