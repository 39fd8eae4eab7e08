"""EFPN backbone / neck / distillation-loss tests on tiny widths."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from net_detr2.modeling.backbone import FPN, LastLevelMaxPool, build_resnet_backbone
from net_detr2_projects.EFPN.efpn import (
    EFPN,
    ESPCNUpsampler,
    FeatureTextureTransfer,
    NearestUpsampler,
    ResNetC2Prime,
    boxes_to_feature_mask,
    build_resnet_c2prime_backbone,
    fbb_loss,
)

TINY = dict(
    depth=50,
    stem_out_channels=8,
    res2_out_channels=16,
    width_per_group=4,
    norm="FrozenBN",
    out_features=["res2", "res3", "res4", "res5"],
    freeze_at=2,
)
WIDTH = 8


def _randomize_frozen_bn(module):
    """FrozenBN defaults are the identity; give them real statistics so the tests see non-trivial maps."""
    g = torch.Generator().manual_seed(1)
    for name, buf in module.named_buffers():
        if name.endswith("running_var"):
            buf.copy_(torch.rand(buf.shape, generator=g) + 0.5)
        elif name.endswith("running_mean") or name.endswith("norm.bias"):
            buf.copy_(torch.randn(buf.shape, generator=g) * 0.1)


def make_efpn(**kwargs):
    torch.manual_seed(0)
    bottom_up = build_resnet_c2prime_backbone(**TINY)
    _randomize_frozen_bn(bottom_up)
    return EFPN(
        bottom_up=bottom_up,
        in_features=["res2", "res3", "res4", "res5"],
        out_channels=WIDTH,
        top_block=LastLevelMaxPool(),
        **kwargs,
    )


def make_fpn():
    torch.manual_seed(0)
    bottom_up = build_resnet_backbone(**TINY)
    return FPN(
        bottom_up=bottom_up,
        in_features=["res2", "res3", "res4", "res5"],
        out_channels=WIDTH,
        top_block=LastLevelMaxPool(),
    )


EXTENSION_PREFIXES = ("c2_prime_lateral.", "ftt.", "p2_prime_output.")


def test_every_level_shape_and_stride():
    model = make_efpn().eval()
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        out = model(x)
    strides = {k: v.stride for k, v in model.output_shape().items()}
    assert strides == {"p2": 4, "p3": 8, "p4": 16, "p5": 32, "p6": 64, "p3_prime": 4, "p2_prime": 2}
    assert list(out) == list(strides)
    for name, stride in strides.items():
        assert out[name].shape == (2, WIDTH, math.ceil(64 / stride), math.ceil(96 / stride)), name
    assert model.size_divisibility == 32


def test_fpn_levels_unchanged_and_fpn_checkpoint_loads():
    fpn = make_fpn().eval()
    _randomize_frozen_bn(fpn)
    efpn = make_efpn().eval()
    result = efpn.load_state_dict(fpn.state_dict(), strict=False)
    assert result.unexpected_keys == []
    assert result.missing_keys and all(k.startswith(EXTENSION_PREFIXES) for k in result.missing_keys)
    extension_keys = {k for k in efpn.state_dict() if k.startswith(EXTENSION_PREFIXES)}
    assert set(result.missing_keys) == extension_keys
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = fpn(x)
        got = efpn(x)
        base, _ = efpn.forward_base(x)
    for name in ["p2", "p3", "p4", "p5", "p6"]:
        torch.testing.assert_close(got[name], expected[name], rtol=0, atol=0)
        torch.testing.assert_close(base[name], expected[name], rtol=0, atol=0)


def test_c2_prime_shares_res2_parameters():
    model = make_efpn().eval()
    bottom_up = model.bottom_up
    assert isinstance(bottom_up, ResNetC2Prime)
    # One parameter set: the state dict has exactly the plain ResNet's keys.
    plain = build_resnet_backbone(**TINY)
    assert list(bottom_up.state_dict().keys()) == list(plain.state_dict().keys())
    calls = []
    handle = bottom_up.res2.register_forward_hook(lambda m, i, o: calls.append((m, i[0].shape[-1], o)))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        out = bottom_up(x)
    handle.remove()
    # res2 runs twice, the very same module object: once at stride 2 (C2'), once at stride 4 (C2).
    assert [c[0] is bottom_up.res2 for c in calls] == [True, True]
    assert sorted(c[1] for c in calls) == [16, 32]
    assert out["res2_prime"].shape == (1, 16, 32, 32) and out["res2"].shape == (1, 16, 16, 16)
    assert bottom_up.output_shape()["res2_prime"].stride == 2
    # C2' = res2(stem without max-pool); C2 = res2(stem with max-pool) == plain stem path.
    with torch.no_grad():
        pre_pool = F.relu(bottom_up.stem.conv1(x))
        torch.testing.assert_close(out["res2_prime"], bottom_up.res2(pre_pool))
        torch.testing.assert_close(out["res2"], bottom_up.res2(bottom_up.stem(x)))
    # Changing a res2 weight changes both C2 and C2'.
    with torch.no_grad():
        bottom_up.res2[0].conv1.weight.mul_(2.0)
        out2 = bottom_up(x)
    assert not torch.equal(out2["res2"], out["res2"]) and not torch.equal(out2["res2_prime"], out["res2_prime"])


def test_teacher_pass_skips_c2_prime():
    model = make_efpn().eval()
    calls = []
    handle = model.bottom_up.res2.register_forward_hook(lambda m, i, o: calls.append(o.shape[-1]))
    with torch.no_grad():
        pyramid, inner = model.forward_base(torch.randn(1, 3, 64, 64))
    handle.remove()
    assert calls == [16]
    assert set(pyramid) == {"p2", "p3", "p4", "p5", "p6"} and set(inner) == {"p2", "p3", "p4", "p5"}


def test_p2_prime_follows_eq1():
    model = make_efpn().eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        out = model(x)
        c2p = model.bottom_up(x)["res2_prime"]
        expected = model.p2_prime_output(
            F.interpolate(out["p3_prime"], scale_factor=2.0, mode="nearest") + model.c2_prime_lateral(c2p)
        )
        p3_expected = model.ftt(out["p3"], out["p2"])
    torch.testing.assert_close(out["p2_prime"], expected)
    torch.testing.assert_close(out["p3_prime"], p3_expected)


def test_ftt_structure_and_reference_gradient():
    torch.manual_seed(0)
    ftt = FeatureTextureTransfer(WIDTH)
    assert len(ftt.content_extractor) == 3 and len(ftt.texture_extractor) == 3  # conv3x3 + 2 residual blocks
    assert ftt.texture_extractor[0].in_channels == 2 * WIDTH
    assert ftt.upsample.conv.out_channels == 4 * WIDTH
    p3 = torch.randn(1, WIDTH, 4, 5)
    p2 = torch.randn(1, WIDTH, 8, 10, requires_grad=True)
    out = ftt(p3, p2)
    assert out.shape == (1, WIDTH, 8, 10)
    content = ftt.upsample(ftt.content_extractor(p3))
    # Eq. 4 (PixelShuffle): output channel c at (2y+i, 2x+j) comes from conv channel 4c + 2i + j at (y, x).
    conv = ftt.upsample.conv(ftt.content_extractor(p3))
    torch.testing.assert_close(content[0, 3, 2 * 1 + 1, 2 * 2 + 0], conv[0, 4 * 3 + 2, 1, 2])
    torch.testing.assert_close(out, ftt.texture_extractor(torch.cat([p2, content], 1)) + content)
    out.sum().backward()
    assert p2.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="twice the size"):
        ftt(p3, torch.randn(1, WIDTH, 8, 8))


def test_sr_variants():
    p3 = torch.randn(2, WIDTH, 4, 4)
    p2 = torch.randn(2, WIDTH, 8, 8)
    assert ESPCNUpsampler(WIDTH)(p3, p2).shape == (2, WIDTH, 8, 8)
    torch.testing.assert_close(NearestUpsampler()(p3, p2), p3.repeat_interleave(2, 2).repeat_interleave(2, 3))
    for sr in ["espcn", "nearest"]:
        model = make_efpn(sr_module=sr).eval()
        with torch.no_grad():
            out = model(torch.randn(1, 3, 64, 64))
        assert out["p2_prime"].shape == (1, WIDTH, 32, 32)
    assert not any(k.startswith("ftt.") for k in make_efpn(sr_module="nearest").state_dict())
    with pytest.raises(ValueError, match="sr_module='srgan'"):
        make_efpn(sr_module="srgan")


def test_ftt_on_inner_maps_ignores_output_convs():
    x = torch.randn(1, 3, 64, 64)
    for ftt_input, should_change in [("inner", False), ("output", True)]:
        model = make_efpn(ftt_input=ftt_input).eval()
        with torch.no_grad():
            before = model(x)["p3_prime"]
            model.fpn_output2.weight.mul_(3.0)
            model.fpn_output3.weight.mul_(3.0)
            after = model(x)["p3_prime"]
        assert (not torch.equal(before, after)) == should_change, ftt_input


def test_box_mask_rounds_outward():
    boxes = [torch.tensor([[3.0, 1.0, 5.0, 4.0], [12.0, 12.0, 100.0, 100.0]]), torch.zeros(0, 4)]
    mask = boxes_to_feature_mask(boxes, stride=2, feature_size=(8, 8))
    expected = torch.zeros(2, 8, 8, dtype=torch.bool)
    expected[0, 0:2, 1:3] = True  # x [3,5) -> cells floor(1.5)=1 .. ceil(2.5)=3; y [1,4) -> 0 .. 2
    expected[0, 6:8, 6:8] = True  # clipped to the map
    assert torch.equal(mask, expected)
    # Exactly aligned box: no extra cell; overlapping boxes count once.
    mask = boxes_to_feature_mask([torch.tensor([[4.0, 4.0, 8.0, 8.0], [4.0, 4.0, 6.0, 6.0]])], 4, (4, 4))
    assert mask.sum() == 1 and mask[0, 1, 1]


def test_fbb_loss_hand_computed():
    student = torch.zeros(1, 2, 2, 2)
    teacher = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[-1.0, 0.0], [0.0, 2.0]]]])
    # One GT box covering only the top-left cell at stride 4 (pixels [0,3) x [0,2)).
    mask = boxes_to_feature_mask([torch.tensor([[0.0, 0.0, 3.0, 2.0]])], 4, (2, 2))
    assert mask.tolist() == [[[True, False], [False, False]]]
    glob = (1 + 2 + 3 + 4 + 1 + 0 + 0 + 2) / 8
    pos = (1 + 1) / 2  # cell (0,0) in both channels
    torch.testing.assert_close(fbb_loss(student, teacher, mask, lam=1.0), torch.tensor(glob + pos))
    torch.testing.assert_close(fbb_loss(student, teacher, mask, lam=0.5), torch.tensor(glob + 0.5 * pos))
    torch.testing.assert_close(fbb_loss(student, teacher, None), torch.tensor(glob))
    empty = boxes_to_feature_mask([torch.zeros(0, 4)], 4, (2, 2))
    torch.testing.assert_close(fbb_loss(student, teacher, empty), torch.tensor(glob))
    with pytest.raises(ValueError, match="differ in shape"):
        fbb_loss(student, teacher[..., :1])
