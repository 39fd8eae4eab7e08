"""Mixed precision on CPU (bf16 autocast), channels-last layout and BatchNorm folding, on every detector."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from net_detr2.config import LazyConfig, instantiate
from net_detr2.evaluation import DatasetEvaluator, inference_on_dataset
from net_detr2.layers import Conv2d, FrozenBatchNorm2d, ROIAlign, fuse_conv_bn, fuse_for_inference
from net_detr2.layers.fuse import foldable_norm
from net_detr2.layers.shape_spec import ShapeSpec
from net_detr2.modeling import RetinaNetHead
from net_detr2.structures import Boxes, Instances

REPO = Path(__file__).resolve().parents[1]

# Every detector, in its small `shapes` configuration.
CONFIGS = {
    "faster_rcnn": "configs/shapes/faster_rcnn_R18_FPN.py",
    "retinanet": "configs/shapes/retinanet_R18_FPN.py",
    "inverted_attention": "projects/InvertedAttention/configs/shapes/ia_faster_rcnn_R18_FPN_shapes.py",
    "dc_retinanet": "projects/DCRetinaNet/configs/shapes/dc_retinanet_R18_FPN_iac_dc_cl.py",
    "efpn_stage2": "projects/EFPN/configs/shapes_stage2_distill.py",
    "efpn_stage3": "projects/EFPN/configs/shapes_stage3_p2head.py",
    "ssd": "projects/NETNet/configs/ssd300_shapes.py",
    "netnet": "projects/NETNet/configs/netnet300_shapes.py",
}


def build(name: str, seed: int = 0) -> nn.Module:
    """The config's model in the contiguous (NCHW) layout (the SSD recipes train channels-last), so that the
    tests compare a channels-last copy against a contiguous original."""
    cfg = LazyConfig.load(str(REPO / CONFIGS[name]))
    cfg.model.channels_last = False
    torch.manual_seed(seed)
    model = instantiate(cfg.model)
    for m in model.modules():  # random weights score low: let every candidate through
        if hasattr(m, "test_score_thresh"):
            m.test_score_thresh = 0.0
    return model


def inputs(name: str, training: bool = True) -> list[dict]:
    """Two images with boxes (SSDs: 300x300, the others 96x128); EFPN's distillation also gets the 2x image."""
    g = torch.Generator().manual_seed(0)
    h, w = (300, 300) if name in ("ssd", "netnet") else (96, 128)
    out = []
    for boxes, classes in [
        ([[10.0, 12.0, 40.0, 30.0], [50.0, 40.0, 90.0, 88.0]], [0, 3]),
        ([[5.0, 20.0, 30.0, 55.0]], [2]),
    ]:
        big = torch.rand(3, 2 * h, 2 * w, generator=g) * 255
        d = {"image": F.avg_pool2d(big[None], 2)[0], "height": h, "width": w}
        if name == "efpn_stage2":
            d["image_2x"] = big
        if training:
            d["instances"] = Instances((h, w), gt_boxes=Boxes(torch.tensor(boxes)), gt_classes=torch.tensor(classes))
        out.append(d)
    return out


def randomize_norms(model: nn.Module, seed: int = 1) -> None:
    """Non-trivial BatchNorm statistics and affine parameters, so that folding them is really tested."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if foldable_norm(m):
                c = m.running_mean.numel()
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.randn(c, generator=g) * 0.1)


def first_conv(model: nn.Module) -> nn.Module:
    return next(m for m in model.backbone.modules() if isinstance(m, nn.Conv2d))


@pytest.mark.parametrize("name", list(CONFIGS))
def test_bf16_training_step_and_inference(name):
    model = build(name).train()
    conv_out = []
    first_conv(model).register_forward_hook(lambda m, i, o: conv_out.append(o.dtype))

    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = model(inputs(name))
    assert conv_out and set(conv_out) == {torch.bfloat16}  # the convolutions ran in bf16 ...
    assert losses and all(v.dtype == torch.float32 and torch.isfinite(v) for v in losses.values()), (
        losses
    )  # ... losses fp32
    sum(losses.values()).backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)
    assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights stay fp32
    assert sum(int(g.abs().sum() > 0) for g in grads) > len(grads) // 2
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert m.running_mean.dtype == torch.float32 and torch.isfinite(m.running_var).all()

    model.eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(inputs(name, training=False))
    for o, x in zip(out, inputs(name, training=False)):
        inst = o["instances"]
        assert len(inst) > 0 and inst.image_size == (x["height"], x["width"])
        boxes = inst.pred_boxes.tensor
        assert boxes.dtype == inst.scores.dtype == torch.float32
        assert torch.isfinite(boxes).all() and (inst.scores[:-1] >= inst.scores[1:]).all()
        assert boxes[:, 2].max() <= x["width"] and boxes[:, 3].max() <= x["height"]


def test_bf16_training_reduces_the_loss():
    model = build("faster_rcnn").train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batch = inputs("faster_rcnn")
    totals = []
    for step in range(8):
        torch.manual_seed(step)  # the same anchor / RoI samples in every run of the test
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = sum(model(batch).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        totals.append(loss.item())
    assert totals[-1] < 0.7 * totals[0], totals


def assert_same_detections(a: Instances, b: Instances) -> None:
    """Equal up to fp32 rounding, in any order among (near-)equal scores: every detection of ``a`` has one in
    ``b`` with the same class, score and box."""
    assert len(a) == len(b) > 0
    torch.testing.assert_close(a.scores, b.scores, rtol=1e-4, atol=1e-5)
    same = (a.pred_classes[:, None] == b.pred_classes[None]) & ((a.scores[:, None] - b.scores[None]).abs() < 1e-4)
    box_distance = torch.cdist(a.pred_boxes.tensor, b.pred_boxes.tensor, p=float("inf"))
    assert box_distance.masked_fill(~same, float("inf")).min(dim=1).values.max() < 1e-2


@pytest.mark.parametrize("name", list(CONFIGS))
def test_channels_last_gives_the_same_outputs(name):
    reference = build(name)
    randomize_norms(reference)
    outs = {}
    for channels_last in (False, True):
        model = copy.deepcopy(reference)  # a training pass changes BN statistics and loss normalisers
        model.channels_last = channels_last
        layouts = []
        first_conv(model).register_forward_hook(
            lambda m, i, o, seen=layouts: seen.append(o.is_contiguous(memory_format=torch.channels_last))
        )
        model.train()
        torch.manual_seed(0)
        losses = model(inputs(name))
        assert layouts[0] == channels_last  # the student; EFPN runs the backbone again for its teacher
        model.eval()
        with torch.no_grad():
            outs[channels_last] = (losses, model(inputs(name, training=False)))
    (loss_a, det_a), (loss_b, det_b) = outs[False], outs[True]
    assert loss_a.keys() == loss_b.keys()
    for k in loss_a:
        torch.testing.assert_close(loss_a[k], loss_b[k], rtol=1e-4, atol=1e-5)
    for a, b in zip(det_a, det_b):
        assert_same_detections(a["instances"], b["instances"])


@pytest.mark.parametrize("name", list(CONFIGS))
def test_folded_batchnorm_gives_the_same_outputs_and_keeps_the_checkpoint_layout(name):
    model = build(name).eval()
    randomize_norms(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fused = fuse_for_inference(model)
    x = inputs(name, training=False)
    with torch.no_grad():
        ref, out = model(x), fused(x)
    for a, b in zip(ref, out):
        assert_same_detections(a["instances"], b["instances"])
    # every BatchNorm of the copy is gone into a convolution; the original is untouched
    assert not any(foldable_norm(m) for m in fused.modules() if not isinstance(m, nn.Identity))
    assert any(foldable_norm(m) for m in model.modules())
    after = model.state_dict()
    assert list(after) == list(before) and all(torch.equal(after[k], before[k]) for k in before)
    with pytest.raises(RuntimeError, match="Save the original model"):
        fused.state_dict()
    with pytest.raises(RuntimeError, match="inference only"):
        fused.train()
    fused.eval()  # allowed


@pytest.mark.parametrize("name", ["faster_rcnn", "netnet"])
def test_fused_channels_last_copy_lays_out_its_weights_in_nhwc(name):
    model = build(name).eval()
    randomize_norms(model)
    fused = fuse_for_inference(model, channels_last=True)
    assert fused.channels_last and not model.channels_last
    convs = [m for m in fused.modules() if isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1)]
    assert convs and all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
    x = inputs(name, training=False)
    with torch.no_grad():
        for a, b in zip(model(x), fused(x)):
            assert_same_detections(a["instances"], b["instances"])
    with pytest.raises(ValueError, match="Sequential has no channels_last switch"):
        fuse_for_inference(nn.Sequential(nn.Conv2d(3, 4, 3)), channels_last=True)


def test_fuse_conv_bn_on_grouped_biased_conv_and_sequential_heads():
    g = torch.Generator().manual_seed(0)
    conv = nn.Conv2d(8, 6, 3, padding=1, groups=2, bias=True)
    bn = nn.BatchNorm2d(6).eval()
    randomize_norms(nn.Sequential(bn))
    x = torch.randn(2, 8, 9, 7, generator=g)
    ref = bn(conv(x))
    fuse_conv_bn(conv, bn)
    torch.testing.assert_close(conv(x), ref, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="GroupNorm does not fold"):
        fuse_conv_bn(conv, nn.GroupNorm(2, 6))

    # RetinaNetHead with norm="BN" keeps conv and BN as siblings in a Sequential
    head = RetinaNetHead(
        input_shape=[ShapeSpec(channels=8)] * 2, num_classes=3, num_anchors=2, conv_dims=[8, 8], norm="BN"
    )
    head.eval()
    randomize_norms(head)
    feats = [torch.randn(1, 8, 10, 12, generator=g), torch.randn(1, 8, 5, 6, generator=g)]
    fused = fuse_for_inference(head)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in fused.modules()) == 0
    for a, b in zip(head(feats), fused(feats)):
        for u, v in zip(a, b):
            torch.testing.assert_close(u, v, rtol=1e-4, atol=1e-5)

    # our Conv2d with a FrozenBN (folded on the fly before) gets the same weights once and for all
    frozen = FrozenBatchNorm2d(6)
    randomize_norms(nn.Sequential(frozen))
    c2 = Conv2d(8, 6, 1, bias=False, norm=frozen, activation=F.relu)
    fused = fuse_for_inference(nn.Sequential(c2))
    assert fused[0].norm is None and fused[0].bias is not None
    torch.testing.assert_close(fused(x), c2(x), rtol=1e-5, atol=1e-5)


def test_roi_align_keeps_box_coordinates_in_fp32_for_bf16_maps():
    # At x ~ 700 px bf16 has a 4 px grid: pooling with bf16 boxes would sample the wrong place.
    g = torch.Generator().manual_seed(0)
    features = torch.randn(1, 4, 64, 256, generator=g).bfloat16()
    rois = torch.tensor([[0.0, 701.0, 5.0, 733.0, 37.0]])
    pooler = ROIAlign((4, 4), spatial_scale=1 / 4, sampling_ratio=2, aligned=True)
    expected = pooler(features.float(), rois)
    for autocast in (False, True):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            out = pooler(features, rois)
        assert out.dtype == torch.bfloat16
        torch.testing.assert_close(out.float(), expected, rtol=0.01, atol=0.01)


class _DtypeRecorder(DatasetEvaluator):
    def reset(self):
        self.seen = []

    def process(self, inputs, outputs):
        self.seen.extend(outputs)

    def evaluate(self):
        return {"dtypes": self.seen}


def test_inference_on_dataset_runs_under_the_given_autocast_dtype():
    conv = nn.Conv2d(3, 2, 3)

    def model(batch):
        return [(torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None, conv(batch).dtype)]

    loader = [torch.randn(1, 3, 8, 8)] * 2
    assert inference_on_dataset(model, loader, _DtypeRecorder())["dtypes"] == [(None, torch.float32)] * 2
    bf16 = inference_on_dataset(model, loader, _DtypeRecorder(), amp_dtype=torch.bfloat16)["dtypes"]
    assert bf16 == [(torch.bfloat16, torch.bfloat16)] * 2
    assert not torch.is_autocast_enabled("cpu")


def test_demo_predictor_runs_fused_under_the_configs_amp(monkeypatch):
    import sys

    sys.path.insert(0, str(REPO))
    import demo
    from net_detr2.utils import amp

    monkeypatch.setattr(amp, "cpu_supports_bf16", lambda: True)
    cfg = demo.setup_cfg(str(REPO / CONFIGS["faster_rcnn"]), ["train.amp.enabled=True", "train.device=cpu"])
    predictor = demo.DemoPredictor(cfg)
    assert predictor.amp_dtype is torch.bfloat16
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in predictor.model.modules())
    conv_out = []
    first_conv(predictor.model).register_forward_hook(lambda m, i, o: conv_out.append(o.dtype))
    predictor.model.roi_heads.box_predictor.test_score_thresh = 0.0
    inst = predictor(np.zeros((60, 80, 3), np.uint8))
    assert conv_out == [torch.bfloat16]
    assert len(inst) > 0 and inst.scores.dtype == inst.pred_boxes.tensor.dtype == torch.float32
    assert inst.image_size == (60, 80)
