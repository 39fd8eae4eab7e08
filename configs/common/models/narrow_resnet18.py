"""The narrow ResNet-18-style bottom-up network of the `shapes` configs, trained from scratch.

BasicBlocks (two per stage), BatchNorm (not frozen: nothing is pretrained), stem width 16 and res2..res5
widths 16/32/64/128 (ResNet-18 has 64..512), outputs res2..res5 at strides 4..32.
"""

from net_detr2.config import LazyCall as L
from net_detr2.modeling import BasicBlock, BasicStem, ResNet

STEM = 16
WIDTHS = [16, 32, 64, 128]  # res2..res5 output channels


def _stage(index):
    return L(ResNet.make_stage)(
        block_class=BasicBlock,
        num_blocks=2,
        in_channels=STEM if index == 0 else WIDTHS[index - 1],
        out_channels=WIDTHS[index],
        stride_per_block=[1 if index == 0 else 2, 1],
        norm="BN",
    )


bottom_up = L(ResNet)(
    stem=L(BasicStem)(in_channels=3, out_channels=STEM, norm="BN"),
    stages=[_stage(i) for i in range(4)],
    out_features=["res2", "res3", "res4", "res5"],
    freeze_at=0,
)
