"""ResNet / ResNeXt backbones (He et al. 2016; Xie et al. 2017) with detectron2's module names.

Layout of the state dict: ``stem.conv1.*``, then stages ``res2`` .. ``res5``, each a sequence of
blocks ``res{k}.{i}.{shortcut,conv1,conv2,conv3}.*``; every conv carries its norm as ``.norm``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from fvcore.nn import weight_init
from torch import nn

from net_detr2.layers import Conv2d, FrozenBatchNorm2d, ShapeSpec, get_norm, max_pool2d
from net_detr2.modeling.registry import BACKBONE_REGISTRY

from .backbone import Backbone

__all__ = [
    "CNNBlockBase",
    "BasicBlock",
    "BottleneckBlock",
    "BasicStem",
    "ResNet",
    "make_stage",
    "build_resnet_backbone",
    "RESNET_BLOCKS_PER_STAGE",
]

# Number of blocks in res2..res5 for each depth.
RESNET_BLOCKS_PER_STAGE = {
    18: [2, 2, 2, 2],
    34: [3, 4, 6, 3],
    50: [3, 4, 6, 3],
    101: [3, 4, 23, 3],
    152: [3, 8, 36, 3],
}


class CNNBlockBase(nn.Module):
    """A block with known `in_channels`, `out_channels` and `stride`, that can be frozen."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride

    def freeze(self) -> CNNBlockBase:
        """Stop gradients to every parameter and turn every BatchNorm into a FrozenBatchNorm2d."""
        for p in self.parameters():
            p.requires_grad = False
        FrozenBatchNorm2d.convert_frozen_batchnorm(self)
        return self


class BasicBlock(CNNBlockBase):
    """Two 3x3 convs + residual (ResNet-18/34). The stride sits on the first conv.

    A 1x1 projection shortcut exists only when in_channels != out_channels.
    """

    def __init__(self, in_channels: int, out_channels: int, *, stride: int = 1, norm="BN"):
        super().__init__(in_channels, out_channels, stride)
        if in_channels != out_channels:
            self.shortcut = Conv2d(
                in_channels, out_channels, kernel_size=1, stride=stride, bias=False, norm=get_norm(norm, out_channels)
            )
        else:
            self.shortcut = None
        self.conv1 = Conv2d(
            in_channels,
            out_channels,
            kernel_size=3,
            stride=stride,
            padding=1,
            bias=False,
            norm=get_norm(norm, out_channels),
        )
        self.conv2 = Conv2d(
            out_channels,
            out_channels,
            kernel_size=3,
            stride=1,
            padding=1,
            bias=False,
            norm=get_norm(norm, out_channels),
        )
        for layer in [self.conv1, self.conv2, self.shortcut]:
            if layer is not None:
                weight_init.c2_msra_fill(layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu_(self.conv1(x))
        out = self.conv2(out)
        out += x if self.shortcut is None else self.shortcut(x)
        return F.relu_(out)


class BottleneckBlock(CNNBlockBase):
    """1x1 reduce -> 3x3 (grouped, dilated) -> 1x1 expand, + residual (ResNet-50/101/152, ResNeXt).

    Args:
        bottleneck_channels: width of the 3x3 conv (num_groups * width_per_group).
        stride: spatial stride of the block; on the first 1x1 conv when `stride_in_1x1`
            (MSRA/Caffe2 weights, detectron2's default) or on the 3x3 conv otherwise (torchvision).
        num_groups: groups of the 3x3 conv (ResNeXt cardinality).
        dilation: dilation (and padding) of the 3x3 conv.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        bottleneck_channels: int,
        stride: int = 1,
        num_groups: int = 1,
        norm="BN",
        stride_in_1x1: bool = False,
        dilation: int = 1,
    ):
        super().__init__(in_channels, out_channels, stride)
        if in_channels != out_channels:
            self.shortcut = Conv2d(
                in_channels, out_channels, kernel_size=1, stride=stride, bias=False, norm=get_norm(norm, out_channels)
            )
        else:
            self.shortcut = None
        stride_1x1, stride_3x3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = Conv2d(
            in_channels,
            bottleneck_channels,
            kernel_size=1,
            stride=stride_1x1,
            bias=False,
            norm=get_norm(norm, bottleneck_channels),
        )
        self.conv2 = Conv2d(
            bottleneck_channels,
            bottleneck_channels,
            kernel_size=3,
            stride=stride_3x3,
            padding=dilation,
            bias=False,
            groups=num_groups,
            dilation=dilation,
            norm=get_norm(norm, bottleneck_channels),
        )
        self.conv3 = Conv2d(
            bottleneck_channels, out_channels, kernel_size=1, bias=False, norm=get_norm(norm, out_channels)
        )
        for layer in [self.conv1, self.conv2, self.conv3, self.shortcut]:
            if layer is not None:
                weight_init.c2_msra_fill(layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu_(self.conv1(x))
        out = F.relu_(self.conv2(out))
        out = self.conv3(out)
        out += x if self.shortcut is None else self.shortcut(x)
        return F.relu_(out)


class BasicStem(CNNBlockBase):
    """7x7/2 conv + norm + ReLU, then 3x3/2 max-pool with padding 1: total stride 4."""

    def __init__(self, in_channels: int = 3, out_channels: int = 64, norm="BN"):
        super().__init__(in_channels, out_channels, 4)
        self.conv1 = Conv2d(
            in_channels, out_channels, kernel_size=7, stride=2, padding=3, bias=False, norm=get_norm(norm, out_channels)
        )
        weight_init.c2_msra_fill(self.conv1)

    def forward_before_pool(self, x: torch.Tensor) -> torch.Tensor:
        """[N, C_in, H, W] -> [N, C, H/2, W/2]: conv + norm + ReLU (EFPN's stride-2 C2' branch starts here)."""
        return F.relu_(self.conv1(x))

    @staticmethod
    def pool(x: torch.Tensor) -> torch.Tensor:
        """The stem's 3x3/2 max-pool: [N, C, H, W] -> [N, C, ceil(H/2), ceil(W/2)]."""
        return max_pool2d(x, kernel_size=3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.forward_before_pool(x))


class ResNet(Backbone):
    """A stem followed by stages ``res2``, ``res3``, ...; outputs the requested intermediate maps.

    Args:
        stem: a `CNNBlockBase` with a `stride` (e.g. `BasicStem`).
        stages: one list of blocks per stage, named res2, res3, ... in order. Stages past the
            last requested output are not built.
        num_classes: if given, adds global average pooling + a `linear` classifier (output "linear").
        out_features: names among "stem", "res2".. (and "linear"); default: the last stage.
        freeze_at: 0 = train everything, 1 = freeze the stem, k >= 2 = freeze the stem and res2..res{k}.
    """

    def __init__(
        self,
        stem: nn.Module,
        stages: list[list[CNNBlockBase]],
        num_classes: int | None = None,
        out_features: Sequence[str] | None = None,
        freeze_at: int = 0,
    ):
        super().__init__()
        self.stem = stem
        self.num_classes = num_classes
        current_stride = self.stem.stride
        self._out_feature_strides = {"stem": current_stride}
        self._out_feature_channels = {"stem": self.stem.out_channels}

        self.stage_names, self.stages = [], []
        if out_features is not None:
            order = {"stem": 0, **{f"res{i + 2}": i + 1 for i in range(len(stages))}}
            unknown = [f for f in out_features if f not in order and f != "linear"]
            if unknown:
                raise ValueError(
                    f"ResNet out_features {unknown} unknown; available: {list(order)}"
                    + (" and 'linear'" if num_classes else "")
                )
            if "linear" not in out_features:
                stages = stages[: max(order[f] for f in out_features)]
        for i, blocks in enumerate(stages):
            assert len(blocks) > 0, f"stage res{i + 2} has no blocks"
            for block in blocks:
                assert isinstance(block, CNNBlockBase), block
            name = f"res{i + 2}"
            stage = nn.Sequential(*blocks)
            self.add_module(name, stage)
            self.stage_names.append(name)
            self.stages.append(stage)
            current_stride = int(current_stride * np.prod([b.stride for b in blocks]))
            self._out_feature_strides[name] = current_stride
            self._out_feature_channels[name] = curr_channels = blocks[-1].out_channels
        self.stage_names = tuple(self.stage_names)

        if num_classes is not None:
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.linear = nn.Linear(curr_channels, num_classes)
            nn.init.normal_(self.linear.weight, std=0.01)  # the ImageNet classifier init of the ResNet paper's code
            name = "linear"

        if out_features is None:
            out_features = [name]
        self._out_features = list(out_features)
        children = [x[0] for x in self.named_children()]
        for f in self._out_features:
            if f not in children:
                raise ValueError(f"ResNet out_feature {f!r} is not built; available: {children}")
        self.freeze(freeze_at)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x: [N, C, H, W] -> {name: feature} for every name in out_features."""
        if x.dim() != 4:
            raise ValueError(f"ResNet takes an input of shape [N, C, H, W]; got {tuple(x.shape)}")
        return self.forward_after_stem(self.stem(x))

    def forward_after_stem(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The stem's output [N, C, H/4, W/4] -> {name: feature} for every name in out_features."""
        outputs = {}
        if "stem" in self._out_features:
            outputs["stem"] = x
        for name, stage in zip(self.stage_names, self.stages):
            x = stage(x)
            if name in self._out_features:
                outputs[name] = x
        if self.num_classes is not None:
            x = torch.flatten(self.avgpool(x), 1)
            x = self.linear(x)
            if "linear" in self._out_features:
                outputs["linear"] = x
        return outputs

    def output_shape(self) -> dict[str, ShapeSpec]:
        return {
            name: ShapeSpec(channels=self._out_feature_channels[name], stride=self._out_feature_strides[name])
            for name in self._out_features
            if name != "linear"
        }

    def freeze(self, freeze_at: int = 0) -> ResNet:
        """Freeze the stem (freeze_at >= 1) and stages res2..res{freeze_at} (see class doc). Returns self."""
        if freeze_at >= 1:
            self.stem.freeze()
        for idx, stage in enumerate(self.stages, start=2):
            if freeze_at >= idx:
                for block in stage.children():
                    block.freeze()
        return self

    @staticmethod
    def make_stage(
        block_class: type[CNNBlockBase], num_blocks: int, *, in_channels: int, out_channels: int, **kwargs
    ) -> list[CNNBlockBase]:
        """Build `num_blocks` blocks of one stage.

        Every keyword is passed to each block; a keyword ``<arg>_per_block`` must be a list of
        length `num_blocks` and gives block i the value ``<arg>=list[i]`` (e.g. ``stride_per_block=[2, 1, 1]``).
        The first block maps in_channels -> out_channels, the rest out_channels -> out_channels.
        """
        blocks = []
        for i in range(num_blocks):
            curr_kwargs = {}
            for k, v in kwargs.items():
                if k.endswith("_per_block"):
                    if len(v) != num_blocks:
                        raise ValueError(f"make_stage: {k} has {len(v)} values for {num_blocks} blocks")
                    newk = k[: -len("_per_block")]
                    if newk in kwargs:
                        raise ValueError(f"make_stage: both {k} and {newk} given")
                    curr_kwargs[newk] = v[i]
                else:
                    curr_kwargs[k] = v
            blocks.append(block_class(in_channels=in_channels, out_channels=out_channels, **curr_kwargs))
            in_channels = out_channels
        return blocks

    @staticmethod
    def make_default_stages(
        depth: int, block_class: type[CNNBlockBase] | None = None, **kwargs
    ) -> list[list[CNNBlockBase]]:
        """The four stages of a standard ResNet-`depth` after a 64-channel stem.

        Extra keywords (e.g. ``norm``, ``stride_in_1x1``) go to every block.
        """
        if depth not in RESNET_BLOCKS_PER_STAGE:
            raise ValueError(f"ResNet depth {depth} unsupported; choose from {sorted(RESNET_BLOCKS_PER_STAGE)}")
        num_blocks = RESNET_BLOCKS_PER_STAGE[depth]
        if block_class is None:
            block_class = BasicBlock if depth < 50 else BottleneckBlock
        if depth < 50:
            in_channels = [64, 64, 128, 256]
            out_channels = [64, 128, 256, 512]
        else:
            in_channels = [64, 256, 512, 1024]
            out_channels = [256, 512, 1024, 2048]
        stages = []
        for n, s, i, o in zip(num_blocks, [1, 2, 2, 2], in_channels, out_channels):
            if depth >= 50:
                kwargs["bottleneck_channels"] = o // 4
            stages.append(
                ResNet.make_stage(
                    block_class, n, stride_per_block=[s] + [1] * (n - 1), in_channels=i, out_channels=o, **kwargs
                )
            )
        return stages


make_stage = ResNet.make_stage


@BACKBONE_REGISTRY.register()
def build_resnet_backbone(
    *,
    depth: int = 50,
    in_channels: int = 3,
    norm="FrozenBN",
    stem_out_channels: int = 64,
    res2_out_channels: int = 256,
    num_groups: int = 1,
    width_per_group: int = 64,
    stride_in_1x1: bool = True,
    res5_dilation: int = 1,
    out_features: Sequence[str] = ("res4",),
    freeze_at: int = 2,
) -> ResNet:
    """A ResNet / ResNeXt with detectron2's ``MODEL.RESNETS`` options as explicit arguments.

    Args:
        depth: 18, 34 (BasicBlock), 50, 101, 152 (BottleneckBlock).
        in_channels: image channels.
        norm: "FrozenBN", "BN", "SyncBN", "GN", "" or a callable (see `get_norm`).
        stem_out_channels, res2_out_channels: widths of the stem and of res2's output; later
            stages double the latter.
        num_groups, width_per_group: ResNeXt cardinality and per-group width of res2's 3x3 conv
            (bottleneck width = num_groups * width_per_group, doubled per stage).
        stride_in_1x1: put a stage's stride on the first 1x1 conv (MSRA weights) instead of the 3x3 conv
            (torchvision / FB weights).
        res5_dilation: 1 or 2; with 2, res5 keeps stride 16 and dilates its 3x3 convs.
        out_features: e.g. ("res2", "res3", "res4", "res5").
        freeze_at: see `ResNet`.
    """
    if depth not in RESNET_BLOCKS_PER_STAGE:
        raise ValueError(f"ResNet depth {depth} unsupported; choose from {sorted(RESNET_BLOCKS_PER_STAGE)}")
    if res5_dilation not in (1, 2):
        raise ValueError(f"res5_dilation must be 1 or 2, got {res5_dilation}")
    if depth < 50:
        if res2_out_channels != 64:
            raise ValueError(f"res2_out_channels must be 64 for ResNet-{depth} (BasicBlock), got {res2_out_channels}")
        if res5_dilation != 1:
            raise ValueError(f"res5_dilation must be 1 for ResNet-{depth} (BasicBlock), got {res5_dilation}")
    stem = BasicStem(in_channels=in_channels, out_channels=stem_out_channels, norm=norm)
    stage_index = {"stem": 1, "res2": 2, "res3": 3, "res4": 4, "res5": 5}
    for f in out_features:
        if f not in stage_index:
            raise ValueError(f"ResNet out_features: unknown name {f!r}; available: {list(stage_index)}")
    max_stage = max(stage_index[f] for f in out_features)

    stages = []
    in_ch, out_ch = stem_out_channels, res2_out_channels
    bottleneck_channels = num_groups * width_per_group
    for idx, stage_idx in enumerate(range(2, max_stage + 1)):
        dilation = res5_dilation if stage_idx == 5 else 1
        first_stride = 1 if idx == 0 or (stage_idx == 5 and dilation == 2) else 2
        n = RESNET_BLOCKS_PER_STAGE[depth][idx]
        kwargs = dict(
            stride_per_block=[first_stride] + [1] * (n - 1), in_channels=in_ch, out_channels=out_ch, norm=norm
        )
        if depth >= 50:
            kwargs.update(
                bottleneck_channels=bottleneck_channels,
                stride_in_1x1=stride_in_1x1,
                dilation=dilation,
                num_groups=num_groups,
            )
            block_class = BottleneckBlock
        else:
            block_class = BasicBlock
        stages.append(ResNet.make_stage(block_class, n, **kwargs))
        in_ch, out_ch, bottleneck_channels = out_ch, out_ch * 2, bottleneck_channels * 2
    return ResNet(stem, stages, out_features=list(out_features), freeze_at=freeze_at)


BACKBONE_REGISTRY.register(ResNet)
