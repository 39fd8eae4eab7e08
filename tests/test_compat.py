"""Tests of net_detr2.compat: detectron2 yaml -> LazyConfig conversion, torchvision weight conversion, and
ImageNet backbone checkpoints (torchvision, Caffe2) renamed on load."""

from __future__ import annotations

import logging
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from net_detr2.compat import (
    TORCHVISION_PIXEL_MEAN,
    TORCHVISION_PIXEL_STD,
    adapt_backbone_checkpoint,
    convert_c2_resnet,
    convert_torchvision_resnet,
    d2_config_to_lazy,
    d2_input_config,
    load_d2_yaml,
)
from net_detr2.config import LazyConfig, instantiate
from net_detr2.modeling.backbone import build_resnet_backbone

REPO = Path(__file__).resolve().parents[1]

# Undo the parity records' narrowing overrides: the unmodified model-zoo widths.
FULL_SIZE = """
MODEL:
  RESNETS: {{STEM_OUT_CHANNELS: 64, RES2_OUT_CHANNELS: 256, WIDTH_PER_GROUP: 64, DEPTH: {depth}}}
  FPN: {{OUT_CHANNELS: 256}}
  ROI_BOX_HEAD: {{FC_DIM: 1024}}
"""


def _tool(name):
    """Import a script from tools/ as a module (in-process: no interpreter start-up per call)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _record(reference_dir, name):
    return torch.load(reference_dir / f"parity_{name}.pt", map_location="cpu", weights_only=True)


def _keys(model):
    return [f"{k} " + ",".join(str(s) for s in v.shape) for k, v in model.state_dict().items()]


def _assert_detections_match(inst, rec):
    """Every reference detection has a prediction with the same class, IoU > 0.99, |score diff| < 1e-4."""
    assert len(inst) == len(rec["scores"])
    iou = torchvision.ops.box_iou(rec["pred_boxes"], inst.pred_boxes.tensor)
    ok = (
        (iou > 0.99)
        & (rec["pred_classes"][:, None] == inst.pred_classes[None])
        & ((rec["scores"][:, None] - inst.scores[None]).abs() < 1e-4)
    )
    assert ok.any(dim=1).all(), f"{int((~ok.any(dim=1)).sum())} reference detections unmatched"


@pytest.mark.parametrize("name", ["frcnn_r50_fpn", "retinanet_r50_fpn"])
def test_parity_config_builds_detectron2_model(reference_dir, name):
    rec = _record(reference_dir, name)
    model = instantiate(d2_config_to_lazy(rec["config"], source=name)).eval()
    assert _keys(model) == [f"{k} " + ",".join(str(s) for s in v.shape) for k, v in rec["state_dict"].items()]
    model.load_state_dict(rec["state_dict"], strict=True)
    torch.testing.assert_close(model.pixel_mean, rec["pixel_mean"])
    torch.testing.assert_close(model.pixel_std, rec["pixel_std"])
    with torch.no_grad():
        out = model([{"image": rec["image"], "height": rec["height"], "width": rec["width"]}])
    _assert_detections_match(out[0]["instances"], rec)


@pytest.mark.parametrize(
    "record,keys,depth",
    [
        ("frcnn_r50_fpn", "frcnn_r50_fpn", 50),
        ("frcnn_r50_fpn", "frcnn_r101_fpn", 101),
        ("retinanet_r50_fpn", "retinanet_r50_fpn", 50),
    ],
)
def test_full_size_config_keys_match_detectron2(reference_dir, tmp_path, record, keys, depth):
    (tmp_path / "base.yaml").write_text(_record(reference_dir, record)["config"])
    child = "_BASE_: base.yaml\n" + FULL_SIZE.format(depth=depth)
    node = d2_config_to_lazy(child, base_dir=str(tmp_path))
    with torch.device("meta"):
        model = instantiate(node)
    assert _keys(model) == (reference_dir / f"keys_{keys}.txt").read_text().splitlines()


def test_base_chain_with_relative_paths_and_input_settings(reference_dir, tmp_path):
    (tmp_path / "Base.yaml").write_text(_record(reference_dir, "retinanet_r50_fpn")["config"])
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "mid.yaml").write_text("_BASE_: ../Base.yaml\nINPUT: {MIN_SIZE_TEST: 640}\n")
    top = "_BASE_: sub/mid.yaml\nINPUT: {MAX_SIZE_TEST: 1000}\nMODEL: {RETINANET: {NUM_CLASSES: 3}}\n"
    cfg = load_d2_yaml(top, base_dir=str(tmp_path))
    assert cfg["MODEL"]["RETINANET"]["NUM_CLASSES"] == 3
    assert cfg["MODEL"]["RETINANET"]["NUM_CONVS"] == 4  # inherited
    assert d2_input_config(top, base_dir=str(tmp_path))["min_size_test"] == 640
    assert d2_input_config(top, base_dir=str(tmp_path))["max_size_test"] == 1000
    node = d2_config_to_lazy(top, base_dir=str(tmp_path))
    assert node.num_classes == 3 and node.head.num_classes == 3 and node.head.num_anchors == 9
    with pytest.raises(ValueError, match="pass base_dir"):
        d2_config_to_lazy(top)
    with pytest.raises(FileNotFoundError, match="_BASE_ file .*nothere.yaml not found"):
        d2_config_to_lazy("_BASE_: nothere.yaml\n", base_dir=str(tmp_path))


# A model-zoo style RetinaNet yaml written from scratch: every other key takes detectron2's default.
RETINANET_MINIMAL = textwrap.dedent("""\
    MODEL:
      META_ARCHITECTURE: RetinaNet
      BACKBONE: {NAME: build_retinanet_resnet_fpn_backbone}
      RESNETS: {OUT_FEATURES: [res3, res4, res5], DEPTH: 50, STEM_OUT_CHANNELS: 8, RES2_OUT_CHANNELS: 16,
                WIDTH_PER_GROUP: 4}
      FPN: {IN_FEATURES: [res3, res4, res5], OUT_CHANNELS: 8}
      ANCHOR_GENERATOR:
        SIZES: !!python/object/apply:eval ["[[x, x * 2**(1.0/3), x * 2**(2.0/3) ] for x in [32, 64, 128, 256, 512]]"]
      RETINANET: {NUM_CLASSES: 5}
    INPUT: {FORMAT: RGB}
    """)


def test_minimal_yaml_uses_detectron2_defaults():
    node = d2_config_to_lazy(RETINANET_MINIMAL)
    assert node.anchor_generator.sizes[1] == pytest.approx([64, 64 * 2 ** (1 / 3), 64 * 2 ** (2 / 3)])
    assert node.anchor_generator.strides == [8, 16, 32, 64, 128]
    assert node.test_score_thresh == 0.05 and node.smooth_l1_beta == 0.1 and node.input_format == "RGB"
    assert node.anchor_matcher.thresholds == [0.4, 0.5] and node.anchor_matcher.labels == [0, -1, 1]
    assert node.backbone.bottom_up.stride_in_1x1 is True and node.backbone.bottom_up.freeze_at == 2
    assert node.backbone.top_block.in_channels == 128  # C5 = 16 * 8 channels
    model = instantiate(node).eval()
    assert model.head.cls_score.out_channels == 9 * 5
    assert list(model.backbone.output_shape()) == ["p3", "p4", "p5", "p6", "p7"]
    with torch.no_grad():
        out = model([{"image": torch.zeros(3, 64, 64, dtype=torch.uint8)}])
    assert out[0]["instances"].image_size == (64, 64)


def test_frcnn_mapping_of_losses_and_topk():
    text = textwrap.dedent("""\
        MODEL:
          BACKBONE: {NAME: build_resnet_fpn_backbone}
          RESNETS: {OUT_FEATURES: [res2, res3, res4, res5]}
          FPN: {IN_FEATURES: [res2, res3, res4, res5]}
          ANCHOR_GENERATOR: {SIZES: [[32], [64], [128], [256], [512]]}
          RPN: {IN_FEATURES: [p2, p3, p4, p5, p6], LOSS_WEIGHT: 2.0, BBOX_REG_LOSS_WEIGHT: 0.5,
                PRE_NMS_TOPK_TRAIN: 2000, PRE_NMS_TOPK_TEST: 1000}
          ROI_HEADS: {NAME: StandardROIHeads, IN_FEATURES: [p2, p3, p4, p5], NUM_CLASSES: 7}
          ROI_BOX_HEAD: {NAME: FastRCNNConvFCHead, NUM_FC: 2, POOLER_RESOLUTION: 7, BBOX_REG_LOSS_WEIGHT: 3.0}
        TEST: {DETECTIONS_PER_IMAGE: 50}
        """)
    node = d2_config_to_lazy(text)
    rpn = node.proposal_generator
    assert rpn.loss_weight == {"loss_rpn_cls": 2.0, "loss_rpn_loc": 1.0}
    assert list(rpn.pre_nms_topk) == [2000, 1000] and list(rpn.post_nms_topk) == [2000, 1000]
    assert rpn.head.num_anchors == 3 and rpn.anchor_generator.strides == [4, 8, 16, 32, 64]
    assert rpn.anchor_matcher.allow_low_quality_matches is True
    roi = node.roi_heads
    assert roi.box_pooler.scales == [1 / 4, 1 / 8, 1 / 16, 1 / 32] and roi.box_pooler.pooler_type == "ROIAlignV2"
    assert roi.box_predictor.test_topk_per_image == 50 and roi.box_predictor.loss_weight == {"loss_box_reg": 3.0}
    assert roi.box_predictor.box2box_transform.weights == [10.0, 10.0, 5.0, 5.0]
    assert roi.proposal_matcher.allow_low_quality_matches is False and roi.num_classes == 7


@pytest.mark.parametrize(
    "override,message",
    [
        ("MODEL: {MASK_ON: true}", "MODEL.MASK_ON = True is not supported"),
        ("MODEL: {META_ARCHITECTURE: PanopticFPN}", "MODEL.META_ARCHITECTURE = 'PanopticFPN' is not supported"),
        ("MODEL: {ROI_HEADS: {NAME: CascadeROIHeads}}", "MODEL.ROI_HEADS.NAME = 'CascadeROIHeads' is not supported"),
        ("MODEL: {RESNETS: {DEFORM_ON_PER_STAGE: [false, true, true, true]}}", "DEFORM_ON_PER_STAGE"),
        ("MODEL: {RPN: {IN_FEATURES: [p9]}}", r"MODEL.RPN.IN_FEATURES = \['p9'\] names features the backbone does not"),
        (
            "MODEL: {BACKBONE: {NAME: build_vit_backbone}}",
            "MODEL.BACKBONE.NAME = 'build_vit_backbone' is not supported",
        ),
    ],
)
def test_unsupported_options_are_named(override, message):
    base = textwrap.dedent("""\
        MODEL:
          BACKBONE: {NAME: build_resnet_fpn_backbone}
          RESNETS: {OUT_FEATURES: [res2, res3, res4, res5]}
          FPN: {IN_FEATURES: [res2, res3, res4, res5]}
          RPN: {IN_FEATURES: [p2, p3, p4, p5, p6]}
          ROI_HEADS: {NAME: StandardROIHeads, IN_FEATURES: [p2, p3, p4, p5]}
          ROI_BOX_HEAD: {NAME: FastRCNNConvFCHead, NUM_FC: 2}
        """)
    merged = load_d2_yaml(base)
    import yaml

    from net_detr2.compat.d2_config import _merge

    text = yaml.safe_dump(_merge(merged, yaml.safe_load(override), ""))
    with pytest.raises(ValueError, match=message):
        d2_config_to_lazy(text, source="my.yaml")


def test_unsafe_yaml_is_refused():
    with pytest.raises(ValueError, match="uses Call"):
        load_d2_yaml("MODEL: {PIXEL_MEAN: !!python/object/apply:eval [\"__import__('os').getcwd()\"]}")
    with pytest.raises(ValueError, match="exponent 999 is larger than 64"):
        load_d2_yaml('A: !!python/object/apply:eval ["9 ** 999"]')
    with pytest.raises(ValueError, match="an exponent must be constant arithmetic"):
        load_d2_yaml('A: !!python/object/apply:eval ["2 ** 9 ** 9"]')
    with pytest.raises(ValueError, match="invalid YAML"):
        load_d2_yaml("MODEL: !!python/object/apply:os.system ['true']")


def test_convert_d2_config_cli_round_trip(reference_dir, tmp_path, capsys):
    tool = _tool("convert_d2_config")
    rec = _record(reference_dir, "frcnn_r50_fpn")
    src = tmp_path / "frcnn.yaml"
    src.write_text(rec["config"])
    for ext in ("py", "yaml"):
        out = tmp_path / f"converted.{ext}"
        tool.main([str(src), str(out)])
        cfg = LazyConfig.load(str(out))
        assert cfg.input.min_size_test == 800 and cfg.input.max_size_test == 1333
        with torch.device("meta"):
            model = instantiate(cfg.model)
        assert list(model.state_dict()) == list(rec["state_dict"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("MODEL: {MASK_ON: true, ROI_HEADS: {NAME: StandardROIHeads}}\n")
    with pytest.raises(SystemExit) as exc:
        tool.main([str(bad), str(tmp_path / "x.py")])
    assert exc.value.code == 2 and "MODEL.MASK_ON = True is not supported" in capsys.readouterr().err
    assert not (tmp_path / "x.py").exists()


def _randomise_bn(model):
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.uniform_(-0.2, 0.2, generator=g)
                m.running_mean.uniform_(-0.2, 0.2, generator=g)
                m.running_var.uniform_(0.5, 1.5, generator=g)


def test_torchvision_resnet50_conversion_reproduces_layer4():
    torch.manual_seed(0)
    tv = torchvision.models.resnet50(weights=None)
    _randomise_bn(tv)
    tv.eval()
    sd = convert_torchvision_resnet(tv.state_dict())
    assert "stem.conv1.weight" in sd and "res2.0.shortcut.norm.running_var" in sd
    assert "res5.2.conv3.norm.weight" in sd and not any("fc" in k or "num_batches" in k for k in sd)
    ours = build_resnet_backbone(depth=50, stride_in_1x1=False, norm="FrozenBN", out_features=["res2", "res5"]).eval()
    result = ours.load_state_dict(sd, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        ref = tv.layer4(tv.layer3(tv.layer2(tv.layer1(tv.maxpool(tv.relu(tv.bn1(tv.conv1(x))))))))
        out = ours(x)
    assert out["res5"].shape == ref.shape == (1, 2048, 3, 3)
    torch.testing.assert_close(out["res5"], ref, rtol=1e-4, atol=1e-4 * ref.abs().max().item())
    # to_bgr: the same network on the channel-reversed picture
    ours.load_state_dict(convert_torchvision_resnet(tv.state_dict(), to_bgr=True))
    with torch.no_grad():
        out_bgr = ours(x.flip(1))
    torch.testing.assert_close(out_bgr["res5"], ref, rtol=1e-4, atol=1e-4 * ref.abs().max().item())


def test_torchvision_conversion_options_and_errors(tmp_path):
    tv = torchvision.models.resnet18(weights=None).state_dict()
    with_fc = convert_torchvision_resnet(
        {"state_dict": {"module." + k: v for k, v in tv.items()}}, keep_fc=True, prefix="backbone.bottom_up."
    )
    assert with_fc["backbone.bottom_up.linear.weight"].shape == (1000, 512)
    assert "backbone.bottom_up.res3.0.shortcut.weight" in with_fc
    with pytest.raises(ValueError, match="unexpected key 'layer1.0.se.fc1.weight'"):
        convert_torchvision_resnet({**tv, "layer1.0.se.fc1.weight": torch.zeros(1)})
    assert TORCHVISION_PIXEL_MEAN[0] == pytest.approx(0.485 * 255) and TORCHVISION_PIXEL_STD[2] == pytest.approx(
        0.225 * 255
    )
    # command-line tool writes a checkpoint that loads into an FPN detector's bottom-up ResNet
    src, dst = tmp_path / "r18.pth", tmp_path / "r18_d2.pth"
    torch.save(tv, src)
    _tool("convert_torchvision_to_net_detr2").main([str(src), str(dst), "--prefix", ""])
    ckpt = torch.load(dst, weights_only=True)
    assert ckpt["matching_heuristics"] is False
    r18 = build_resnet_backbone(depth=18, res2_out_channels=64, stride_in_1x1=False, out_features=["res5"])
    r18.load_state_dict(ckpt["model"], strict=True)


@pytest.mark.parametrize(
    "arch,kwargs",
    [
        ("resnet101", dict(depth=101)),
        ("resnext50_32x4d", dict(depth=50, num_groups=32, width_per_group=4)),
    ],
)
def test_torchvision_conversion_names_and_shapes_for_resnet101_and_resnext(arch, kwargs):
    with torch.device("meta"):
        tv = getattr(torchvision.models, arch)(weights=None).state_dict()
        ours = build_resnet_backbone(stride_in_1x1=False, out_features=["res5"], **kwargs).state_dict()
    converted = convert_torchvision_resnet(tv)
    assert {k: tuple(v.shape) for k, v in converted.items()} == {k: tuple(v.shape) for k, v in ours.items()}


class _Detector(torch.nn.Module):
    """A ResNet-18 at ``backbone.bottom_up`` (as in an FPN detector) next to a head the checkpoint lacks."""

    def __init__(self, norm="FrozenBN"):
        super().__init__()
        self.backbone = torch.nn.Module()
        self.backbone.bottom_up = build_resnet_backbone(
            depth=18, res2_out_channels=64, stride_in_1x1=False, norm=norm, out_features=["res5"]
        )
        self.head = torch.nn.Linear(4, 2)


def test_init_checkpoint_converts_a_torchvision_resnet_on_load(tmp_path, caplog):
    from net_detr2.checkpoint import DetectionCheckpointer

    torch.manual_seed(0)
    tv = torchvision.models.resnet18(weights=None)
    _randomise_bn(tv)
    tv.eval()
    torch.save(tv.state_dict(), tmp_path / "resnet18.pth")
    model = _Detector().eval()
    with caplog.at_level(logging.INFO):
        DetectionCheckpointer(model).load(str(tmp_path / "resnet18.pth"))
    assert "a torchvision ResNet, loaded under 'backbone.bottom_up.'" in caplog.text
    torch.testing.assert_close(model.backbone.bottom_up.res3[0].shortcut.weight, tv.layer2[0].downsample[0].weight)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref = tv.layer4(tv.layer3(tv.layer2(tv.layer1(tv.maxpool(tv.relu(tv.bn1(tv.conv1(x))))))))
        out = model.backbone.bottom_up(x)["res5"]
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4 * ref.abs().max().item())


def _to_c2(sd: dict) -> dict:
    """Our ResNet names -> Caffe2 blob names as numpy arrays (the inverse of the conversion under test)."""
    branch = {"conv1": "branch2a", "conv2": "branch2b", "conv3": "branch2c", "shortcut": "branch1"}
    out = {}
    for k, v in sd.items():
        if k.endswith(("running_mean", "running_var", "num_batches_tracked")):
            continue
        kind = {"weight": "w", "norm.weight": "bn_s", "norm.bias": "bn_b"}
        if k.startswith("stem."):
            name = {
                "stem.conv1.weight": "conv1_w",
                "stem.conv1.norm.weight": "res_conv1_bn_s",
                "stem.conv1.norm.bias": "res_conv1_bn_b",
            }[k]
        else:
            stage, block, layer, rest = re.fullmatch(r"res(\d)\.(\d+)\.(\w+?)\.(.+)", k).groups()
            name = f"res{stage}_{block}_{branch[layer]}_{kind[rest]}"
        out[name] = v.numpy()
    out["fc1000_w"] = np.zeros((1000, 512), np.float32)
    return out


def test_init_checkpoint_converts_a_caffe2_resnet_pkl_on_load(tmp_path):
    import pickle

    from net_detr2.checkpoint import DetectionCheckpointer

    torch.manual_seed(0)
    source = build_resnet_backbone(depth=18, res2_out_channels=64, stride_in_1x1=False, out_features=["res5"])
    for m in source.modules():
        if isinstance(m, torch.nn.BatchNorm2d):  # Caffe2 BN is a folded affine: mean 0, var 1 - eps
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
            m.running_var.fill_(1 - m.eps)
    source.eval()
    with open(tmp_path / "R-18.pkl", "wb") as f:
        pickle.dump({"blobs": _to_c2(source.state_dict())}, f)
    model = _Detector().eval()
    DetectionCheckpointer(model).load(str(tmp_path / "R-18.pkl"))
    bn = model.backbone.bottom_up.res2[0].conv1.norm
    assert torch.equal(bn.running_mean, torch.zeros(64)) and torch.allclose(bn.running_var, torch.full((64,), 1 - 1e-5))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model.backbone.bottom_up(x)["res5"], source(x)["res5"], rtol=1e-4, atol=1e-4)

    with pytest.raises(ValueError, match="unexpected blob 'res2_0_branch3_w'"):
        convert_c2_resnet({"conv1_w": torch.zeros(1), "res2_0_branch3_w": torch.zeros(1)})


def test_backbone_checkpoint_without_prefix_and_models_without_a_resnet():
    r18 = build_resnet_backbone(depth=18, res2_out_channels=64, out_features=["res5"]).state_dict()
    model_keys = _Detector().state_dict().keys()
    renamed, what = adapt_backbone_checkpoint(dict(r18), model_keys)
    assert what == "a ResNet state dict, loaded under 'backbone.bottom_up.'"
    assert set(renamed) == {k for k in model_keys if k.startswith("backbone.bottom_up.")} | {
        k for k in renamed if k.endswith("num_batches_tracked")
    }
    # a detector checkpoint (names already match) passes through untouched
    full = _Detector().state_dict()
    assert adapt_backbone_checkpoint(full, model_keys) == (full, None)
    with pytest.raises(ValueError, match="torchvision ResNet.*the model has no ResNet"):
        adapt_backbone_checkpoint(torchvision.models.resnet18(weights=None).state_dict(), ["head.weight"])


def test_torchvision_vgg16_is_renamed_into_an_ssd_backbone():
    from net_detr2.modeling.backbone import VGG16

    with torch.device("meta"):  # names and shapes only: a real VGG-16 is 500 MB
        tv = torchvision.models.vgg16(weights=None).state_dict()
        model_keys = {"backbone.bottom_up." + k: v for k, v in VGG16().state_dict().items()}
    renamed, what = adapt_backbone_checkpoint(tv, model_keys)
    assert what == "a torchvision VGG-16 (BGR input), loaded under 'backbone.bottom_up.'"
    # everything but SSD's own L2Norm scale of conv4_3, which ImageNet does not train
    assert {k: tuple(v.shape) for k, v in renamed.items()} == {
        k: tuple(v.shape) for k, v in model_keys.items() if not k.endswith("conv4_3_norm.weight")
    }
