"""The IA configs: each differs from its baseline only by the ROI heads, and the small ones train/infer."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from net_detr2.config import LazyConfig, instantiate
from net_detr2.modeling import StandardROIHeads
from net_detr2.structures import Boxes, Instances
from net_detr2.utils.amp import autocast
from net_detr2_projects.InvertedAttention.inverted_attention import IAROIHeads
from net_detr2_projects.InvertedAttention.inverted_attention.config_utils import IA_DEFAULTS, use_inverted_attention

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
REPO = Path(__file__).resolve().parents[3]

PAIRS = [
    ("COCO/faster_rcnn_R50_FPN_1x.py", "COCO/ia_faster_rcnn_R50_FPN_1x.py"),
    ("COCO/faster_rcnn_R101_FPN_1x.py", "COCO/ia_faster_rcnn_R101_FPN_1x.py"),
    ("COCO/faster_rcnn_R101_FPN_2x.py", "COCO/ia_faster_rcnn_R101_FPN_2x.py"),
    ("VOC/faster_rcnn_VGG16_voc07.py", "VOC/ia_faster_rcnn_VGG16_voc07.py"),
    ("VOC/faster_rcnn_VGG16_voc0712.py", "VOC/ia_faster_rcnn_VGG16_voc0712.py"),
    ("VOC/faster_rcnn_R101_FPN_voc07.py", "VOC/ia_faster_rcnn_R101_FPN_voc07.py"),
    ("VOC/faster_rcnn_R101_FPN_voc0712.py", "VOC/ia_faster_rcnn_R101_FPN_voc0712.py"),
    (str(REPO / "configs/shapes/faster_rcnn_R18_FPN.py"), "shapes/ia_faster_rcnn_R18_FPN_shapes.py"),
]


def _plain(cfg):
    """The experiment's keys (a config file's helper variables such as ``rh`` are left out)."""
    keys = ("model", "dataloader", "optimizer", "lr_multiplier", "train")
    return {k: OmegaConf.to_container(cfg[k], resolve=False) for k in keys}


@pytest.mark.parametrize("baseline_file,ia_file", PAIRS)
def test_ia_config_is_its_baseline_with_ia_roi_heads(baseline_file, ia_file):
    base = LazyConfig.load(str(CONFIGS / baseline_file))
    ia = LazyConfig.load(str(CONFIGS / ia_file))
    assert base.model.roi_heads._target_ is StandardROIHeads
    assert ia.model.roi_heads._target_ is IAROIHeads
    for key, value in IA_DEFAULTS.items():
        assert ia.model.roi_heads[key] == value, key
    b, i = _plain(base), _plain(ia)
    assert i["train"].pop("output_dir") != b["train"].pop("output_dir")
    i_heads, b_heads = i["model"].pop("roi_heads"), b["model"].pop("roi_heads")
    assert i == b  # data, schedule, optimizer, backbone, RPN: all the baseline's
    for key in ["_target_", *IA_DEFAULTS]:
        i_heads.pop(key)
    b_heads.pop("_target_")
    assert i_heads == b_heads


def test_table6_and_table4_schedules():
    r50 = LazyConfig.load(str(CONFIGS / "COCO/ia_faster_rcnn_R50_FPN_1x.py"))
    r101_2x = LazyConfig.load(str(CONFIGS / "COCO/ia_faster_rcnn_R101_FPN_2x.py"))
    assert r50.model.backbone.bottom_up.depth == 50 and r50.train.max_iter == 90000
    assert r101_2x.model.backbone.bottom_up.depth == 101 and r101_2x.train.max_iter == 180000
    assert list(r101_2x.lr_multiplier.scheduler.milestones) == [120000, 160000]
    voc07 = LazyConfig.load(str(CONFIGS / "VOC/ia_faster_rcnn_VGG16_voc07.py"))
    voc0712 = LazyConfig.load(str(CONFIGS / "VOC/ia_faster_rcnn_VGG16_voc0712.py"))
    # 8 epochs at batch 2, LR x0.1 after 6 (5011 and 16551 training images).
    assert voc07.train.max_iter == 8 * 2506 and list(voc07.lr_multiplier.scheduler.milestones) == [6 * 2506]
    assert voc0712.train.max_iter == 8 * 8276 and list(voc0712.lr_multiplier.scheduler.milestones) == [6 * 8276]
    assert voc07.dataloader.train.dataset.names == "voc_2007_trainval"
    assert list(voc0712.dataloader.train.dataset.names) == ["voc_2007_trainval", "voc_2012_trainval"]
    assert voc07.optimizer.lr == 2e-3 and voc07.dataloader.train.total_batch_size == 2


def test_use_inverted_attention_rejects_unknown_options():
    cfg = LazyConfig.load(str(CONFIGS / "COCO/faster_rcnn_R50_FPN_1x.py"))
    with pytest.raises(KeyError, match="unknown option\\(s\\) \\['drop_rate'\\]"):
        use_inverted_attention(cfg.model.roi_heads, drop_rate=0.3)
    use_inverted_attention(cfg.model.roi_heads, orientation="spatial+channel")
    assert cfg.model.roi_heads.orientation == "spatial+channel"


def _batch(size=(96, 128), num_classes=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(2):
        boxes = torch.tensor([[10.0, 12.0, 50.0, 60.0], [60.0, 20.0, 120.0, 90.0]])
        inst = Instances(size, gt_boxes=Boxes(boxes), gt_classes=torch.tensor([1, num_classes - 1]))
        image = torch.randint(0, 256, (3, *size), generator=g, dtype=torch.uint8)
        out.append({"image": image, "height": size[0], "width": size[1], "instances": inst})
    return out


def _train_step_and_inference(model, batch, amp_dtype=None):
    model.train()
    with autocast("cpu", amp_dtype):
        losses = model(batch)
    assert {"loss_cls", "loss_box_reg", "loss_rpn_cls", "loss_rpn_loc"} <= set(losses)
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert model.roi_heads.box_head.fc1.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad(), autocast("cpu", amp_dtype):
        return model([{k: v for k, v in x.items() if k != "instances"} for x in batch])


def test_vgg16_single_level_faster_rcnn_trains_with_ia():
    cfg = LazyConfig.load(str(CONFIGS / "VOC/ia_faster_rcnn_VGG16_voc07.py"))
    # A narrow copy of the real wiring: conv5_3 (stride 16), one-level RPN with 9 anchors, 7x7 pooling.
    cfg.model.backbone.width_mult = 1 / 16
    cfg.model.proposal_generator.head.in_channels = 32
    cfg.model.roi_heads.box_head.input_shape.channels = 32
    cfg.model.roi_heads.box_head.fc_dims = [64, 64]
    cfg.model.roi_heads.box_predictor.input_shape.channels = 64
    torch.manual_seed(0)
    model = instantiate(cfg.model)
    assert isinstance(model.roi_heads, IAROIHeads)
    assert model.backbone.output_shape()["conv5_3"].stride == 16
    assert model.proposal_generator.anchor_generator.num_cell_anchors == [9]
    out = _train_step_and_inference(model, _batch(num_classes=20))
    assert len(out) == 2 and out[0]["instances"].pred_boxes.tensor.shape[1] == 4


# fp32, and bf16 autocast: the shapes recipe trains and evaluates in bf16 (train.amp.enabled=True)
@pytest.mark.parametrize("amp_dtype", [None, torch.bfloat16], ids=["fp32", "bf16"])
def test_shapes_ia_model_trains_and_infers_exactly_like_the_baseline(amp_dtype):
    ia_cfg = LazyConfig.load(str(CONFIGS / "shapes/ia_faster_rcnn_R18_FPN_shapes.py"))
    base_cfg = LazyConfig.load(str(REPO / "configs/shapes/faster_rcnn_R18_FPN.py"))
    torch.manual_seed(0)
    ia = instantiate(ia_cfg.model)
    base = instantiate(base_cfg.model)
    base.load_state_dict(ia.state_dict())
    batch = _batch()
    out_ia = _train_step_and_inference(ia, batch, amp_dtype)
    base.load_state_dict(ia.state_dict())  # BatchNorm statistics moved in the training step
    base.eval()
    with torch.no_grad(), autocast("cpu", amp_dtype):
        out_base = base([{k: v for k, v in x.items() if k != "instances"} for x in batch])
    for a, b in zip(out_ia, out_base):
        a, b = a["instances"], b["instances"]
        assert len(a) > 0  # the comparison is not vacuous
        assert torch.equal(a.pred_boxes.tensor, b.pred_boxes.tensor)
        assert torch.equal(a.scores, b.scores) and torch.equal(a.pred_classes, b.pred_classes)


def test_vgg16_converter_maps_classifier_to_box_head():
    from net_detr2.compat.vgg_weights import TORCHVISION_VGG16_CONV_INDICES
    from net_detr2_projects.InvertedAttention.tools.convert_vgg16_frcnn import convert

    sd = {}
    for idx in TORCHVISION_VGG16_CONV_INDICES.values():
        sd[f"features.{idx}.weight"] = torch.zeros(2, 2, 3, 3)
        sd[f"features.{idx}.bias"] = torch.zeros(2)
    with pytest.raises(KeyError, match="missing key 'classifier.0.weight'"):
        convert(sd)
    sd["classifier.0.weight"], sd["classifier.0.bias"] = torch.zeros(8, 4), torch.zeros(8)
    sd["classifier.3.weight"], sd["classifier.3.bias"] = torch.zeros(8, 8), torch.zeros(8)
    with pytest.raises(ValueError, match="expected \\(4096, 25088\\)"):
        convert(sd)
