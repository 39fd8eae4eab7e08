"""NETNet modules: gates, NEM, NTM, NNFM/TDP, NETNeck ablation switches, and the NETNet meta-architecture."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from net_detr2.modeling.registry import META_ARCH_REGISTRY
from net_detr2_projects.NETNet.netnet import (
    GATES,
    NEM,
    NNFM,
    NTM,
    LightFusion,
    NETNeck,
    NETNet,
    TopDownPyramid,
    build_gate,
)

SIZES = {300: [38, 19, 10, 5, 3, 1], 512: [64, 32, 16, 8, 4, 2, 1]}
CHANNELS = {300: [16, 24, 16, 8, 8, 8], 512: [16, 24, 16, 8, 8, 8, 8]}


def pyramid(size, n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, c, s, s, generator=g).relu() for c, s in zip(CHANNELS[size], SIZES[size])]


@pytest.mark.parametrize("size", [300, 512])
@pytest.mark.parametrize("gate", GATES)
def test_gates_in_unit_interval_with_right_shape(size, gate):
    torch.manual_seed(0)
    feats = pyramid(size)
    # Skip pairs and nearest-neighbour pairs: every level that has a deeper neighbour.
    for s, d in [(0, 2), (1, 3), (0, 1), (1, 2), (2, 3)]:
        g = build_gate(gate, CHANNELS[size][d], CHANNELS[size][s])(feats[d], feats[s])
        c = CHANNELS[size][s] if gate in ("conv", "attention") else 1
        assert g.shape == (2, c, SIZES[size][s], SIZES[size][s])
        assert g.min() >= 0 and g.max() <= 1
        assert g.std() > 0  # depends on the input, not a constant
    if gate == "conv":  # Eq. 4 + 6 literally: sigmoid(conv1x1(upsample(p_deep)))
        conv_gate = build_gate("conv", CHANNELS[size][2], CHANNELS[size][0])
        up = F.interpolate(feats[2], size=feats[0].shape[-2:], mode="bilinear", align_corners=False)
        torch.testing.assert_close(conv_gate(feats[2], feats[0]), torch.sigmoid(conv_gate.conv(up)))


@pytest.mark.parametrize("size", [300, 512])
def test_netneck_preserves_shapes_and_gates_per_pair(size):
    feats = pyramid(size)
    neck = NETNeck(in_channels=CHANNELS[size])
    out = neck(feats)
    assert [o.shape for o in out] == [f.shape for f in feats]
    # The neck computes in channels-last on CPU; the heads get contiguous NCHW maps back.
    assert all(o.is_contiguous() for o in out)
    gates = neck.gates(feats)
    assert [tuple(g.shape[1:]) for g in gates] == [
        (16, SIZES[size][0], SIZES[size][0]),
        (24, SIZES[size][1], SIZES[size][1]),
    ]
    # p5, p6 (and p7) are untouched by the default NETNet.
    for o, f in zip(out[4:], feats[4:]):
        assert torch.equal(o, f)


class _ConstGate(nn.Module):
    def __init__(self, value):
        super().__init__()
        self.value = value

    def forward(self, p_deep, p_shallow):
        return torch.full_like(p_shallow[:, :1], self.value)


def test_nem_zero_gate_is_identity_and_full_gate_erases_everything():
    p = torch.randn(2, 5, 7, 7)
    kept, erased, g = NEM(_ConstGate(0.0))(p, torch.randn(2, 3, 2, 2))
    assert torch.equal(kept, p) and torch.equal(erased, torch.zeros_like(p))
    kept, erased, _ = NEM(_ConstGate(1.0))(p, torch.randn(2, 3, 2, 2))
    assert torch.equal(kept, torch.zeros_like(p)) and torch.equal(erased, p)
    # Eq. 7 for a general gate: p~ = p - p * g, and kept + erased reconstructs p.
    g = torch.rand(2, 5, 7, 7)
    kept, erased = NEM.erase(p, g)
    torch.testing.assert_close(kept, p - p * g)
    torch.testing.assert_close(kept + erased, p)


def test_neck_with_zero_gates_and_zero_transfer_is_identity():
    feats = pyramid(300)
    neck = NETNeck(in_channels=CHANNELS[300], fusion=None)
    for nem in neck.nems:
        nem.gate = _ConstGate(0.0)
    for block in neck.fusion_blocks:  # light fusion's residual branch off
        nn.init.zeros_(block.conv3.weight), nn.init.zeros_(block.conv3.bias)
    out = neck(feats)
    for o, f in zip(out, feats):
        torch.testing.assert_close(o, f)


def test_ntm_adds_exactly_the_transferred_term():
    # 4x4 erased map -> 2x2 deep map: adaptive max pool takes the max of each 2x2 block.
    p_es = torch.tensor([[1.0, 5.0, 2.0, 0.0], [3.0, 4.0, 8.0, 1.0], [0.0, 0.0, 1.0, 1.0], [7.0, 2.0, 1.0, 9.0]]).view(
        1, 1, 4, 4
    )
    p_deep = torch.tensor([[10.0, 20.0], [30.0, 40.0]]).view(1, 1, 2, 2)
    ntm = NTM(1, 1)
    with torch.no_grad():
        ntm.conv.weight.fill_(2.0)
        ntm.conv.bias.fill_(0.5)
    out = ntm(p_es, p_deep)
    expected = p_deep + 2.0 * torch.tensor([[5.0, 8.0], [7.0, 9.0]]).view(1, 1, 2, 2) + 0.5
    torch.testing.assert_close(out, expected)
    # Non-integer ratio (38 -> 10) works, and the added term is exactly transfer().
    p_es, p_deep = torch.randn(2, 6, 38, 38), torch.randn(2, 9, 10, 10)
    ntm = NTM(6, 9)
    torch.testing.assert_close(ntm(p_es, p_deep) - p_deep, ntm.transfer(p_es, p_deep))


def test_neck_ntm_only_keeps_shallow_and_adds_transfer_computed_before_it():
    feats = pyramid(300)
    neck = NETNeck(in_channels=CHANNELS[300], use_nem=False, use_ntm=True, fusion=None)
    out = neck(feats)
    assert torch.equal(out[0], feats[0]) and torch.equal(out[1], feats[1])
    for i, (s, d) in enumerate(neck.pairs):
        g = neck.nems[i].gate(feats[d], feats[s])  # gate from the *original* p_d
        torch.testing.assert_close(out[d], feats[d] + neck.ntms[i].transfer(feats[s] * g, feats[d]))


def test_light_fusion_is_residual():
    block = LightFusion(8)
    x = torch.randn(1, 8, 5, 5)
    inner = block.conv3(block.conv2(block.conv1(x)))
    torch.testing.assert_close(block(x), x + inner)
    assert block.conv1.out_channels == 2 and block.conv2.kernel_size == (3, 3)


def test_nnfm_sums_pooled_same_and_upsampled_neighbours():
    feats = pyramid(300)
    nnfm = NNFM(CHANNELS[300][:4])
    out = nnfm(feats)
    assert [o.shape for o in out] == [f.shape for f in feats]
    s = 1
    expected = (
        nnfm.same[s](feats[1])
        + nnfm.from_above[0](F.max_pool2d(feats[0], 2, 2, ceil_mode=True))  # 38 -> 19
        + nnfm.from_below[1](F.interpolate(feats[2], size=(19, 19), mode="bilinear", align_corners=False))
    )
    torch.testing.assert_close(out[1], expected)
    # p1 has no shallower neighbour; p4 has no deeper one inside p1..p4; p5, p6 pass through.
    torch.testing.assert_close(
        out[0],
        nnfm.same[0](feats[0])
        + nnfm.from_below[0](F.interpolate(feats[1], size=(38, 38), mode="bilinear", align_corners=False)),
    )
    torch.testing.assert_close(
        out[3], nnfm.same[3](feats[3]) + nnfm.from_above[2](F.max_pool2d(feats[2], 2, 2, ceil_mode=True))
    )
    assert out[4] is feats[4]


def test_tdp_flows_from_the_top():
    feats = pyramid(300)
    tdp = TopDownPyramid(CHANNELS[300], num_out=4)
    out = tdp(feats)
    assert [o.shape for o in out] == [f.shape for f in feats]
    perturbed = list(feats)
    perturbed[5] = feats[5] + 1.0  # the deepest level changes p1 through the top-down path
    assert not torch.allclose(tdp(perturbed)[0], out[0])
    assert out[5] is feats[5]


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),  # NETNet
        dict(fusion="tdp"),
        dict(fusion=None, use_ntm=False, gate="attention"),
        dict(fusion=None, use_ntm=False, gate="max"),
        dict(fusion=None, use_ntm=False, pairs=((0, 1), (1, 2), (2, 3))),
    ],
)
def test_gradients_reach_every_net_parameter(kwargs):
    feats = [f.requires_grad_(True) for f in pyramid(300)]
    neck = NETNeck(in_channels=CHANNELS[300], **kwargs)
    params = dict(neck.named_parameters())
    assert params
    sum((o * torch.randn_like(o)).sum() for o in neck(feats)).backward()
    for name, p in params.items():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_ablation_switches_build_the_right_modules():
    ch = CHANNELS[300]
    assert len(list(NETNeck(in_channels=ch, use_nem=False, use_ntm=False, fusion=None).parameters())) == 0
    nem = NETNeck(in_channels=ch, use_ntm=False, fusion=None)
    assert nem.ntms is None and len(nem.nems) == 2 and nem.fusion is None
    assert NETNeck(in_channels=ch, pairs=((0, 2),)).pairs == [(0, 2)]
    assert isinstance(NETNeck(in_channels=ch, fusion="tdp").fusion, TopDownPyramid)
    with pytest.raises(ValueError, match="pair \\(2, 1\\)"):
        NETNeck(in_channels=ch, pairs=((2, 1),))
    with pytest.raises(ValueError, match="one pair only"):
        NETNeck(in_channels=ch, pairs=((0, 2), (0, 3)))
    with pytest.raises(ValueError, match="unknown gate 'sum'"):
        NETNeck(in_channels=ch, gate="sum")
    with pytest.raises(ValueError, match="fusion must be"):
        NETNeck(in_channels=ch, fusion="fpn")


def test_netnet_meta_arch_trains_and_checks_channels():
    from net_detr2.utils.testing import ssd_training_inputs as _inputs
    from net_detr2.utils.testing import tiny_ssd

    ssd = tiny_ssd()
    channels = [s.channels for s in ssd.backbone.output_shape().values()]
    assert META_ARCH_REGISTRY.get("NETNet") is NETNet
    model = NETNet(
        net=NETNeck(in_channels=channels),
        backbone=ssd.backbone,
        head=ssd.head,
        prior_generator=ssd.prior_generator,
        num_classes=3,
        pixel_mean=[104.0, 117.0, 123.0],
        pixel_std=[1.0, 1.0, 1.0],
    )
    losses = model(_inputs())
    sum(losses.values()).backward()
    for name, p in model.net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    with pytest.raises(ValueError, match="do not match the backbone levels"):
        NETNet(
            net=NETNeck(in_channels=[8] * 6),
            backbone=ssd.backbone,
            head=ssd.head,
            prior_generator=ssd.prior_generator,
            num_classes=3,
            pixel_mean=[0, 0, 0],
            pixel_std=[1, 1, 1],
        )
