"""Tests of the ResNet / FPN backbones: detectron2 key names, shapes, parity with detectron2 features."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from net_detr2.layers import FrozenBatchNorm2d, ShapeSpec
from net_detr2.modeling.backbone import (
    BACKBONE_REGISTRY,
    FPN,
    VGG16,
    BasicBlock,
    BasicStem,
    BottleneckBlock,
    LastLevelMaxPool,
    LastLevelP6P7,
    ResNet,
    build_backbone,
    build_resnet_backbone,
    build_resnet_fpn_backbone,
    build_retinanet_resnet_fpn_backbone,
)

# The narrow widths of the parity records (see shared/reference/README.md).
NARROW = dict(stem_out_channels=32, res2_out_channels=64, width_per_group=16, out_channels=64)


def _reference_keys(reference_dir, name, prefix="backbone."):
    lines = (reference_dir / f"keys_{name}.txt").read_text().splitlines()
    return [line for line in lines if line.startswith(prefix)]


def _our_keys(module, prefix="backbone."):
    return [f"{prefix}{k} " + ",".join(str(s) for s in v.shape) for k, v in module.state_dict().items()]


@pytest.mark.parametrize(
    "name,builder,depth",
    [
        ("frcnn_r50_fpn", build_resnet_fpn_backbone, 50),
        ("frcnn_r101_fpn", build_resnet_fpn_backbone, 101),
        ("retinanet_r50_fpn", build_retinanet_resnet_fpn_backbone, 50),
    ],
)
def test_full_size_backbone_keys_match_detectron2(reference_dir, name, builder, depth):
    with torch.device("meta"):
        backbone = builder(depth=depth)
    assert _our_keys(backbone) == _reference_keys(reference_dir, name)


def _load_record(reference_dir, name):
    return torch.load(reference_dir / f"parity_{name}.pt", map_location="cpu", weights_only=True)


@pytest.mark.parametrize(
    "name,builder",
    [
        ("frcnn_r50_fpn", build_resnet_fpn_backbone),
        ("retinanet_r50_fpn", build_retinanet_resnet_fpn_backbone),
    ],
)
def test_backbone_reproduces_detectron2_features(reference_dir, name, builder):
    rec = _load_record(reference_dir, name)
    backbone = builder(depth=50, **NARROW).eval()
    sd = {k[len("backbone.") :]: v for k, v in rec["state_dict"].items() if k.startswith("backbone.")}
    backbone.load_state_dict(sd, strict=True)
    with torch.no_grad():
        feats = backbone(rec["preprocessed"])
    assert list(feats) == list(rec["features"])
    for level, ref in rec["features"].items():
        assert feats[level].shape == ref.shape, level
        tol = 1e-4 * max(1.0, ref.abs().max().item())
        err = (feats[level] - ref).abs().max().item()
        assert err <= tol, f"{name} {level}: max|diff| {err} > {tol}"
    shapes = backbone.output_shape()
    assert {k: (v.channels, v.stride) for k, v in shapes.items()} == {
        k: (64, rec["preprocessed"].shape[-1] // v.shape[-1] if k not in ("p6", "p7") else 2 ** int(k[1]))
        for k, v in rec["features"].items()
    }
    assert backbone.size_divisibility == 32


def test_resnet_shapes_strides_and_stride_placement():
    r = build_resnet_backbone(
        depth=50,
        out_features=["stem", "res2", "res3", "res4", "res5"],
        **{k: v for k, v in NARROW.items() if k != "out_channels"},
    )
    assert {k: (v.channels, v.stride) for k, v in r.output_shape().items()} == {
        "stem": (32, 4),
        "res2": (64, 4),
        "res3": (128, 8),
        "res4": (256, 16),
        "res5": (512, 32),
    }
    out = r(torch.randn(1, 3, 64, 96))
    assert [tuple(v.shape) for v in out.values()] == [
        (1, 32, 16, 24),
        (1, 64, 16, 24),
        (1, 128, 8, 12),
        (1, 256, 4, 6),
        (1, 512, 2, 3),
    ]
    # stride_in_1x1=True (MSRA): the stride sits on the first 1x1 conv of a downsampling block
    assert r.res3[0].conv1.stride == (2, 2) and r.res3[0].conv2.stride == (1, 1)
    tv = build_resnet_backbone(depth=50, stride_in_1x1=False, out_features=["res3"])
    assert tv.res3[0].conv1.stride == (1, 1) and tv.res3[0].conv2.stride == (2, 2)
    assert not hasattr(tv, "res4"), "stages after the last out_feature must not be built"
    assert isinstance(r.stem.conv1.norm, FrozenBatchNorm2d)


def test_resnext_groups_and_dilation():
    r = build_resnet_backbone(
        depth=50, num_groups=32, width_per_group=4, res5_dilation=2, out_features=["res5"], norm="BN", freeze_at=0
    )
    conv2 = r.res2[0].conv2
    assert conv2.groups == 32 and conv2.weight.shape == (128, 4, 3, 3)
    assert r.res5[0].conv2.dilation == (2, 2) and r.res5[0].conv2.padding == (2, 2)
    assert r.output_shape()["res5"].stride == 16
    assert type(r.res2[0].conv1.norm) is nn.BatchNorm2d


def test_basic_block_resnet18_and_34():
    r18 = build_resnet_backbone(depth=18, res2_out_channels=64, out_features=["res2", "res5"], freeze_at=0)
    assert isinstance(r18.res2[0], BasicBlock) and len(r18.res2) == 2 and r18.res2[0].shortcut is None
    assert r18.res3[0].shortcut is not None and r18.output_shape()["res5"].channels == 512
    tv = torchvision.models.resnet18(weights=None).state_dict()
    tv_sizes = sorted(v.numel() for k, v in tv.items() if not k.startswith("fc.") and "num_batches" not in k)
    assert sorted(v.numel() for v in r18.state_dict().values()) == tv_sizes
    r34 = build_resnet_backbone(depth=34, res2_out_channels=64, out_features=["res4"])
    assert [len(getattr(r34, f"res{i}")) for i in (2, 3, 4)] == [3, 4, 6]
    with pytest.raises(ValueError, match="res2_out_channels must be 64 for ResNet-18"):
        build_resnet_backbone(depth=18)
    with pytest.raises(ValueError, match="ResNet depth 42 unsupported"):
        build_resnet_backbone(depth=42)


def test_freeze_at():
    r = build_resnet_backbone(depth=50, norm="BN", freeze_at=2, out_features=["res3"])
    assert all(not p.requires_grad for p in r.stem.parameters())
    assert all(not p.requires_grad for p in r.res2.parameters())
    assert all(p.requires_grad for p in r.res3.parameters())
    # frozen blocks get FrozenBN, trainable ones keep BN
    assert isinstance(r.res2[0].conv1.norm, FrozenBatchNorm2d) and isinstance(r.stem.conv1.norm, FrozenBatchNorm2d)
    assert type(r.res3[0].conv1.norm) is nn.BatchNorm2d
    r0 = build_resnet_backbone(depth=50, norm="BN", freeze_at=0, out_features=["res2"])
    assert all(p.requires_grad for p in r0.parameters())


def test_make_stage_per_block_arguments_and_classifier():
    blocks = ResNet.make_stage(
        BottleneckBlock,
        3,
        in_channels=8,
        out_channels=16,
        bottleneck_channels=4,
        stride_per_block=[2, 1, 1],
        norm="FrozenBN",
    )
    assert [b.stride for b in blocks] == [2, 1, 1] and blocks[0].in_channels == 8 and blocks[1].in_channels == 16
    with pytest.raises(ValueError, match="stride_per_block has 2 values for 3 blocks"):
        ResNet.make_stage(BasicBlock, 3, in_channels=8, out_channels=8, stride_per_block=[1, 1])
    net = ResNet(BasicStem(3, 8, norm="BN"), [blocks], num_classes=5, out_features=["res2", "linear"])
    out = net(torch.randn(2, 3, 32, 32))
    assert out["linear"].shape == (2, 5) and out["res2"].shape == (2, 16, 4, 4)
    assert "linear" not in net.output_shape()
    with pytest.raises(ValueError, match=r"ResNet out_features \['res9'\] unknown"):
        ResNet(BasicStem(3, 8), [blocks], out_features=["res9"])
    stages = ResNet.make_default_stages(50, norm="FrozenBN")
    assert [len(s) for s in stages] == [3, 4, 6, 3] and stages[3][0].out_channels == 2048


def test_fpn_structure_fuse_and_errors():
    bottom_up = build_resnet_backbone(
        depth=50,
        res2_out_channels=32,
        width_per_group=8,
        stem_out_channels=16,
        out_features=["res2", "res3", "res4", "res5"],
    )
    fpn = FPN(bottom_up, ["res2", "res3", "res4", "res5"], 16, top_block=LastLevelMaxPool())
    x = torch.randn(1, 3, 64, 64)
    out = fpn(x)
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "p2": (1, 16, 16, 16),
        "p3": (1, 16, 8, 8),
        "p4": (1, 16, 4, 4),
        "p5": (1, 16, 2, 2),
        "p6": (1, 16, 1, 1),
    }
    # P6 is a stride-2 subsample of P5
    torch.testing.assert_close(out["p6"], out["p5"][:, :, ::2, ::2])
    # hand-recompute P4 = output_conv(lateral(C4) + nearest-up(lateral(C5)))
    c = bottom_up(x)
    inner5 = fpn.fpn_lateral5(c["res5"])
    inner4 = fpn.fpn_lateral4(c["res4"]) + inner5.repeat_interleave(2, 2).repeat_interleave(2, 3)
    torch.testing.assert_close(out["p4"], fpn.fpn_output4(inner4), rtol=1e-5, atol=1e-5)
    # sizes that are not multiples of 32 still run (each level follows its lateral's size)
    odd = fpn(torch.randn(1, 3, 70, 50))
    assert [tuple(v.shape[-2:]) for v in odd.values()] == [(18, 13), (9, 7), (5, 4), (3, 2), (2, 1)]
    fpn_avg = FPN(bottom_up, ["res4", "res5"], 16, fuse_type="avg")
    with torch.no_grad():
        for name in ("fpn_lateral4", "fpn_lateral5", "fpn_output4", "fpn_output5"):
            getattr(fpn_avg, name).load_state_dict(getattr(fpn, name).state_dict())
    torch.testing.assert_close(fpn_avg(x)["p4"], fpn.fpn_output4(inner4 / 2), rtol=1e-5, atol=1e-5)
    assert fpn_avg.padding_constraints == {"square_size": 0}
    with pytest.raises(ValueError, match="fuse_type must be 'sum' or 'avg', got 'max'"):
        FPN(bottom_up, ["res4", "res5"], 16, fuse_type="max")
    with pytest.raises(ValueError, match=r"FPN in_features \['res6'\] are not outputs"):
        FPN(bottom_up, ["res5", "res6"], 16)
    with pytest.raises(ValueError, match="strides must double"):
        FPN(bottom_up, ["res3", "res5"], 16)
    # GN norm: convs lose their bias, gain a norm
    fpn_gn = FPN(bottom_up, ["res4", "res5"], 32, norm="GN")
    assert fpn_gn.fpn_lateral4.bias is None and isinstance(fpn_gn.fpn_lateral4.norm, nn.GroupNorm)


def test_fpn_top_down_is_the_forward_pass_and_keeps_inner_maps():
    bottom_up = build_resnet_backbone(
        depth=18, res2_out_channels=64, stem_out_channels=8, out_features=["res2", "res3", "res4", "res5"]
    )
    fpn = FPN(bottom_up, ["res2", "res3", "res4", "res5"], 8, top_block=LastLevelMaxPool())
    x = torch.randn(1, 3, 64, 64)
    c = bottom_up(x)
    outputs, inner = fpn.top_down(c, keep_inner=True)
    plain = fpn(x)
    assert list(outputs) == list(plain) == ["p2", "p3", "p4", "p5", "p6"]
    assert all(torch.equal(outputs[k], plain[k]) for k in plain)
    # the inner maps are what the output convs read: lateral(C5), then lateral(Ck) + nearest-up(inner k+1)
    assert list(inner) == ["p2", "p3", "p4", "p5"]
    torch.testing.assert_close(inner["p5"], fpn.fpn_lateral5(c["res5"]))
    up = inner["p4"].repeat_interleave(2, 2).repeat_interleave(2, 3)
    torch.testing.assert_close(inner["p3"], fpn.fpn_lateral3(c["res3"]) + up)
    torch.testing.assert_close(outputs["p3"], fpn.fpn_output3(inner["p3"]))
    assert fpn.top_down(c)[1] == {}


def test_retinanet_top_block_reads_c5_or_p5():
    bottom_up = build_resnet_backbone(
        depth=50, res2_out_channels=32, width_per_group=8, stem_out_channels=16, out_features=["res3", "res4", "res5"]
    )
    fpn = FPN(bottom_up, ["res3", "res4", "res5"], 16, top_block=LastLevelP6P7(256, 16))
    x = torch.randn(1, 3, 128, 128)
    out = fpn(x)
    assert list(out) == ["p3", "p4", "p5", "p6", "p7"]
    assert out["p7"].shape == (1, 16, 1, 1)
    c5 = bottom_up(x)["res5"]
    tb = fpn.top_block
    torch.testing.assert_close(out["p6"], tb.p6(c5))
    torch.testing.assert_close(out["p7"], tb.p7(torch.relu(tb.p6(c5))))
    fpn_p5 = FPN(bottom_up, ["res3", "res4", "res5"], 16, top_block=LastLevelP6P7(16, 16, in_feature="p5"))
    out5 = fpn_p5(x)
    torch.testing.assert_close(out5["p6"], fpn_p5.top_block.p6(out5["p5"]))
    assert fpn_p5.output_shape()["p7"] == ShapeSpec(channels=16, stride=128)


def test_registry_and_build_backbone():
    for name in (
        "ResNet",
        "FPN",
        "build_resnet_backbone",
        "build_resnet_fpn_backbone",
        "build_retinanet_resnet_fpn_backbone",
    ):
        assert BACKBONE_REGISTRY.get(name) is not None
    b = build_backbone("build_resnet_backbone", depth=18, res2_out_channels=64, out_features=["res3"])
    assert isinstance(b, ResNet) and list(b.output_shape()) == ["res3"]
    with pytest.raises(KeyError, match="Unknown backbone 'nope'"):
        build_backbone("nope")


# ----------------------------------------------------------------------------- VGG16
def test_vgg16_single_level_conv5_3_for_faster_rcnn():
    vgg = VGG16(out_features=["conv5_3"], width_mult=0.0625)
    assert BACKBONE_REGISTRY.get("VGG16") is VGG16
    shape = vgg.output_shape()
    assert list(shape) == ["conv5_3"] and shape["conv5_3"].stride == 16 and shape["conv5_3"].channels == 32
    assert not hasattr(vgg, "fc6") and vgg.conv4_3_norm is None
    out = vgg(torch.randn(1, 3, 64, 80))
    assert out["conv5_3"].shape == (1, 32, 4, 5)


def test_vgg16_ssd_levels_l2norm_and_freeze():
    vgg = VGG16(out_features=["conv4_3", "conv7"], width_mult=0.0625, l2norm_scale=20.0, freeze_at=2)
    out = vgg(torch.randn(2, 3, 300, 300))
    assert out["conv4_3"].shape == (2, 32, 38, 38) and out["fc7"].shape == (2, 64, 19, 19)
    # L2Norm: every pixel of conv4_3 has norm 20 (the initial scale) unless all-zero.
    norms = out["conv4_3"].norm(dim=1)
    nonzero = norms > 1e-3
    torch.testing.assert_close(norms[nonzero], torch.full_like(norms[nonzero], 20.0), rtol=1e-4, atol=1e-4)
    assert not vgg.conv2_2.weight.requires_grad and vgg.conv3_1.weight.requires_grad
    with pytest.raises(ValueError, match="unknown out_feature 'pool5'"):
        VGG16(out_features=["pool5"])


def test_convert_torchvision_vgg16():
    import torchvision

    from net_detr2.compat.vgg_weights import convert_torchvision_vgg16_to_ssd

    tv = torchvision.models.vgg16(weights=None).state_dict()
    sd = convert_torchvision_vgg16_to_ssd(tv, prefix="")
    vgg = VGG16(out_features=["conv4_3", "fc7"])
    missing, unexpected = vgg.load_state_dict(sd, strict=False)
    assert unexpected == [] and missing == ["conv4_3_norm.weight"]
    assert vgg.fc6.weight.shape == (1024, 512, 3, 3) and vgg.fc7.weight.shape == (1024, 1024, 1, 1)
    fc6 = tv["classifier.0.weight"].reshape(4096, 512, 7, 7)
    torch.testing.assert_close(vgg.fc6.weight[5, 7, 1, 2], fc6[20, 7, 3, 6])  # output 4*5, taps 3*1, 3*2
    torch.testing.assert_close(vgg.fc7.weight[3, 9, 0, 0], tv["classifier.3.weight"][12, 36])
    torch.testing.assert_close(vgg.fc6.bias[5], tv["classifier.0.bias"][20])
    torch.testing.assert_close(vgg.conv1_1.weight[:, 0], tv["features.0.weight"][:, 2])  # BGR flip
    torch.testing.assert_close(vgg.conv5_3.weight, tv["features.28.weight"])
    # A conv-only backbone (Faster R-CNN conv5_3) loads the conv part strictly.
    conv_only = convert_torchvision_vgg16_to_ssd(tv, with_fc=False, to_bgr=False)
    VGG16(out_features=["conv5_3"], l2norm_scale=None).load_state_dict(conv_only, strict=True)
    with pytest.raises(KeyError, match="features.0.weight"):
        convert_torchvision_vgg16_to_ssd({})
