"""Every NETNet/SSD LazyConfig loads, builds (shrunk to tiny widths) and runs one SGD training step."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from net_detr2.config import LazyConfig, instantiate
from net_detr2.structures import Boxes, Instances
from net_detr2_projects.NETNet.netnet import NETNet
from net_detr2_projects.NETNet.netnet.config_utils import set_vgg16_width, vgg16_ssd_level_channels

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
ABLATIONS = sorted(p.name for p in (CONFIG_DIR / "ablations").glob("table*.py"))
MAIN = [
    "ssd300_vgg16_coco.py",
    "netnet300_vgg16_coco.py",
    "ssd512_vgg16_coco.py",
    "netnet512_vgg16_coco.py",
    "ssd512_r101_coco.py",
    "netnet512_r101_coco.py",
    "ssd300_vgg16_voc.py",
    "netnet300_vgg16_voc.py",
    "ssd512_vgg16_voc.py",
    "netnet512_vgg16_voc.py",
    "ssd300_shapes.py",
    "netnet300_shapes.py",
]

# What each ablation row must switch on (use_nem, use_ntm, fusion, gate, pairs); None = plain SSD.
EXPECTED = {
    "table1_ssd.py": None,
    "table1_nem.py": (True, False, None, "conv", [[0, 2], [1, 3]]),
    "table1_ntm.py": (False, True, None, "conv", [[0, 2], [1, 3]]),
    "table1_netm.py": (True, True, None, "conv", [[0, 2], [1, 3]]),
    "table1_netm_tdp.py": (True, True, "tdp", "conv", [[0, 2], [1, 3]]),
    "table1_netnet.py": (True, True, "nnfm", "conv", [[0, 2], [1, 3]]),
    "table2_max.py": (True, False, None, "max", [[0, 2], [1, 3]]),
    "table2_mean.py": (True, False, None, "mean", [[0, 2], [1, 3]]),
    "table2_attention.py": (True, False, None, "attention", [[0, 2], [1, 3]]),
    "table2_conv.py": (True, False, None, "conv", [[0, 2], [1, 3]]),
    "table3_nem13.py": (True, False, None, "conv", [[0, 2]]),
    "table3_nem24.py": (True, False, None, "conv", [[1, 3]]),
    "table3_nnem.py": (True, False, None, "conv", [[0, 1], [1, 2], [2, 3]]),
    "table3_nem.py": (True, False, None, "conv", [[0, 2], [1, 3]]),
}


def _shrink(cfg):
    """Tiny widths so a step takes a fraction of a second; the architecture is unchanged."""
    m = cfg.model
    size = m.backbone.extra_layers.input_size
    if "depth" in m.backbone.bottom_up:  # ResNet-101 variant
        m.backbone.bottom_up.update(stem_out_channels=8, res2_out_channels=16, width_per_group=2)
        m.backbone.extra_layers.width_mult = 1 / 16
        channels = [32, 64] + [o for _, o, *_ in instantiate(m.backbone.extra_layers)]
        m.head.in_channels = channels
        if "net" in m:
            m.net.in_channels = channels
    else:
        set_vgg16_width(m, 1 / 16, size)
    return size


def _batch(size, num_classes, n=2):
    g = torch.Generator().manual_seed(1)
    out = []
    for _ in range(n):
        inst = Instances((size, size))
        inst.gt_boxes = Boxes(torch.tensor([[8.0, 12.0, 40.0, 50.0], [100.0, 90.0, 260.0, 280.0]]))
        inst.gt_classes = torch.tensor([0, num_classes - 1])
        out.append({"image": torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=g), "instances": inst})
    return out


def _train_step(cfg):
    size = _shrink(cfg)
    torch.manual_seed(0)
    model = instantiate(cfg.model)
    cfg.optimizer.params.model = model
    opt = instantiate(cfg.optimizer)
    losses = model(_batch(size, cfg.model.num_classes))
    total = sum(losses.values())
    assert torch.isfinite(total) and total > 0
    before = [p.detach().clone() for p in model.parameters() if p.requires_grad]
    opt.zero_grad()
    total.backward()
    opt.step()
    changed = sum(not torch.equal(b, p) for b, p in zip(before, (p for p in model.parameters() if p.requires_grad)))
    assert changed > 0
    return model


@pytest.mark.parametrize("name", ABLATIONS)
def test_ablation_config_trains_one_step(name):
    cfg = LazyConfig.load(str(CONFIG_DIR / "ablations" / name))
    assert cfg.optimizer.lr == 0.002 and cfg.optimizer.weight_decay == 5e-4 and cfg.optimizer.momentum == 0.9
    model = _train_step(cfg)
    expected = EXPECTED[name]
    if expected is None:
        assert not isinstance(model, NETNet)
        return
    net = model.net
    use_nem, use_ntm, fusion, gate, pairs = expected
    assert (net.use_nem, net.use_ntm, net.fusion_kind) == (use_nem, use_ntm, fusion)
    assert [list(p) for p in net.pairs] == pairs
    assert (
        type(net.nems[0].gate).__name__
        == {
            "conv": "ConvGate",
            "max": "ChannelPoolGate",
            "mean": "ChannelPoolGate",
            "attention": "GlobalAttentionGate",
        }[gate]
    )


@pytest.mark.parametrize("name", MAIN)
def test_main_config_trains_one_step(name):
    cfg = LazyConfig.load(str(CONFIG_DIR / name))
    model = _train_step(cfg)
    assert isinstance(model, NETNet) == name.startswith("netnet")
    assert len(model.in_features) == model.prior_generator.num_levels == (7 if "512" in name else 6)


def test_paper_recipe_in_iterations():
    cfg = LazyConfig.load(str(CONFIG_DIR / "netnet300_vgg16_coco.py"))
    iters_per_epoch = 3665  # ceil(117266 / 32)
    assert cfg.train.max_iter == 160 * iters_per_epoch
    assert cfg.dataloader.train.total_batch_size == 32 and cfg.optimizer.lr == 0.004
    sched = instantiate(cfg.lr_multiplier)
    at = lambda epoch: sched(epoch * iters_per_epoch / cfg.train.max_iter)  # noqa: E731
    assert at(2.5) == pytest.approx(0.5, abs=0.01)  # half-way through the 5-epoch warm-up
    assert at(6) == pytest.approx(1.0) and at(89) == pytest.approx(1.0)
    assert at(91) == pytest.approx(0.1) and at(121) == pytest.approx(0.01) and at(141) == pytest.approx(0.001)
    assert vgg16_ssd_level_channels(300) == [512, 1024, 512, 256, 256, 256]
