"""RPN and Fast R-CNN losses on hand cases; proposal sampling; a tiny GeneralizedRCNN trains and predicts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from net_detr2.layers import ShapeSpec
from net_detr2.modeling import (
    RPN,
    Box2BoxTransform,
    DefaultAnchorGenerator,
    FastRCNNConvFCHead,
    FastRCNNOutputLayers,
    GeneralizedRCNN,
    Matcher,
    ROIPooler,
    StandardROIHeads,
    StandardRPNHead,
    build_resnet_fpn_backbone,
    fast_rcnn_inference,
)
from net_detr2.modeling.registry import META_ARCH_REGISTRY, PROPOSAL_GENERATOR_REGISTRY, ROI_HEADS_REGISTRY
from net_detr2.modeling.roi_heads import select_class_boxes
from net_detr2.structures import Boxes, Instances


def _softplus(x):
    return math.log1p(math.exp(x))


def _rpn(in_channels=4, batch_size_per_image=256, **kw):
    return RPN(
        in_features=["p2"],
        head=StandardRPNHead(in_channels=in_channels, num_anchors=1),
        anchor_generator=DefaultAnchorGenerator(sizes=[[8]], aspect_ratios=[1.0], strides=[4]),
        anchor_matcher=Matcher([0.3, 0.7], [0, -1, 1], allow_low_quality_matches=True),
        box2box_transform=Box2BoxTransform((1.0, 1.0, 1.0, 1.0)),
        batch_size_per_image=batch_size_per_image,
        positive_fraction=0.5,
        pre_nms_topk=(100, 50),
        post_nms_topk=(20, 10),
        **kw,
    )


def test_rpn_losses_hand_case():
    rpn = _rpn()
    anchors = [Boxes(torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]]))]
    gt = Instances((40, 40), gt_boxes=Boxes(torch.tensor([[0.0, 0.0, 10.0, 20.0]])), gt_classes=torch.tensor([0]))
    labels, matched = rpn.label_and_sample_anchors(anchors, [gt])
    # anchor 0: IoU 0.5 (ignored band) but the GT's best anchor -> positive; anchor 1: IoU 0 -> negative
    assert labels[0].tolist() == [1, 0]
    torch.testing.assert_close(matched[0], torch.tensor([[0.0, 0.0, 10.0, 20.0]] * 2))
    logits = [torch.tensor([[2.0, -1.0]], requires_grad=True)]
    deltas = [torch.tensor([[[0.1, 0.5, 0.0, 0.5], [9.0, 9.0, 9.0, 9.0]]], requires_grad=True)]
    losses = rpn.losses(anchors, logits, labels, deltas, matched)
    # target deltas of anchor 0: (0, 0.5, 0, log 2); L1 (beta 0) on the positive only; / (256 * 1 image)
    expected_cls = (_softplus(-2.0) + _softplus(-1.0)) / 256
    expected_loc = (0.1 + 0.0 + 0.0 + abs(0.5 - math.log(2))) / 256
    assert losses["loss_rpn_cls"].item() == pytest.approx(expected_cls, rel=1e-5)
    assert losses["loss_rpn_loc"].item() == pytest.approx(expected_loc, rel=1e-5)
    rpn_w = _rpn(loss_weight={"loss_rpn_cls": 2.0})
    assert rpn_w.losses(anchors, logits, labels, deltas, matched)["loss_rpn_cls"].item() == pytest.approx(
        2 * expected_cls, rel=1e-5
    )


def test_rpn_boundary_thresh_ignores_outside_anchors():
    rpn = _rpn(anchor_boundary_thresh=0)
    anchors = [Boxes(torch.tensor([[-5.0, 0.0, 5.0, 10.0], [20.0, 20.0, 30.0, 30.0]]))]
    gt = Instances((40, 40), gt_boxes=Boxes(torch.tensor([[0.0, 0.0, 10.0, 10.0]])), gt_classes=torch.tensor([0]))
    labels, _ = rpn.label_and_sample_anchors(anchors, [gt])
    assert labels[0].tolist() == [-1, 0]


def test_rpn_inference_proposals_sorted_clipped_and_capped():
    torch.manual_seed(0)
    rpn = _rpn().eval()
    feats = {"p2": torch.randn(2, 4, 6, 8)}
    from net_detr2.structures import ImageList

    images = ImageList(torch.zeros(2, 3, 24, 32), [(24, 32), (20, 30)])
    with torch.no_grad():
        props, losses = rpn(images, feats)
    assert losses == {}
    assert [len(p) for p in props] == [10, 10]
    for p, (h, w) in zip(props, images.image_sizes):
        b = p.proposal_boxes.tensor
        assert (b[:, 0] >= 0).all() and (b[:, 2] <= w).all() and (b[:, 3] <= h).all()
        assert (p.objectness_logits[:-1] >= p.objectness_logits[1:]).all()


def _predictor(num_classes=2):
    return FastRCNNOutputLayers(
        ShapeSpec(channels=4), box2box_transform=Box2BoxTransform((10, 10, 5, 5)), num_classes=num_classes
    )


def test_fast_rcnn_losses_hand_case():
    pred = _predictor()
    p = Instances((50, 50))
    p.proposal_boxes = Boxes(torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 40.0, 40.0]]))
    p.gt_classes = torch.tensor([1, 2])  # class 1 and background (= num_classes)
    p.gt_boxes = Boxes(torch.tensor([[0.0, 0.0, 10.0, 20.0], [0.0, 0.0, 1.0, 1.0]]))
    scores = torch.tensor([[0.0, 1.0, 0.0], [0.5, 0.0, 2.0]])
    deltas = torch.zeros(2, 8)
    deltas[0, 4:] = torch.tensor([1.0, 4.0, 0.0, 3.0])  # class 1's deltas of the foreground RoI
    deltas[1] = 7.0  # background RoI: ignored by the box loss
    losses = pred.losses((scores, deltas), [p])
    ce0 = -math.log(math.exp(1.0) / (2 + math.exp(1.0)))
    ce1 = -math.log(math.exp(2.0) / (1 + math.exp(0.5) + math.exp(2.0)))
    assert losses["loss_cls"].item() == pytest.approx((ce0 + ce1) / 2, rel=1e-5)
    # target (0, 10 * 5/10, 0, 5 log 2); L1 over the fg RoI, / 2 sampled RoIs
    expected_box = (1.0 + 1.0 + 0.0 + abs(3.0 - 5 * math.log(2))) / 2
    assert losses["loss_box_reg"].item() == pytest.approx(expected_box, rel=1e-5)


def test_fast_rcnn_per_roi_losses_sum_to_the_losses():
    pred = _predictor()
    p = Instances((50, 50))
    p.proposal_boxes = Boxes(torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 40.0, 40.0]]))
    p.gt_classes = torch.tensor([1, 2])
    p.gt_boxes = Boxes(torch.tensor([[0.0, 0.0, 10.0, 20.0], [0.0, 0.0, 0.0, 0.0]]))  # degenerate: log(0) target
    scores = torch.tensor([[0.0, 1.0, 0.0], [0.5, 0.0, 2.0]])
    deltas = torch.zeros(2, 8)
    deltas[0, 4:] = torch.tensor([1.0, 4.0, 0.0, 3.0])
    cls_loss, box_loss = pred.per_roi_losses((scores, deltas), [p])
    ce0 = -math.log(math.exp(1.0) / (2 + math.exp(1.0)))
    ce1 = -math.log(math.exp(2.0) / (1 + math.exp(0.5) + math.exp(2.0)))
    torch.testing.assert_close(cls_loss, torch.tensor([ce0, ce1]))
    # foreground: L1 (beta 0) of class 1's deltas; background: 0 although its target is not finite
    torch.testing.assert_close(box_loss, torch.tensor([2.0 + abs(3.0 - 5 * math.log(2)), 0.0]))
    p.gt_boxes = Boxes(torch.tensor([[0.0, 0.0, 10.0, 20.0], [0.0, 0.0, 1.0, 1.0]]))
    losses = pred.losses((scores, deltas), [p])
    torch.testing.assert_close(losses["loss_cls"], cls_loss.mean())
    torch.testing.assert_close(losses["loss_box_reg"], box_loss.sum() / 2)


def test_select_class_boxes():
    deltas = torch.arange(2 * 3 * 4, dtype=torch.float32).view(2, 12)
    torch.testing.assert_close(
        select_class_boxes(deltas, torch.tensor([2, 0])), torch.stack([deltas[0, 8:], deltas[1, :4]])
    )
    agnostic = deltas[:, :4]
    assert select_class_boxes(agnostic, torch.tensor([2, 0])) is agnostic


def test_fast_rcnn_inference_threshold_nms_topk():
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0] * 2, [1.0, 0.0, 11.0, 10.0] * 2, [0.0, 0.0, 10.0, 10.0] * 2])
    scores = torch.tensor([[0.9, 0.05, 0.05], [0.8, 0.1, 0.1], [0.01, 0.6, 0.39]])
    (res,), (kept,) = fast_rcnn_inference([boxes], [scores], [(8, 20)], 0.05, 0.5, 100)
    # class 0: box 1 overlaps box 0 (IoU 0.82) -> suppressed; class 1: boxes 1 (0.1) and 2 (0.6) overlap -> 2 kept
    assert res.pred_classes.tolist() == [0, 1]
    torch.testing.assert_close(res.scores, torch.tensor([0.9, 0.6]))
    assert kept.tolist() == [0, 2]
    assert res.pred_boxes.tensor[:, 3].max() <= 8  # clipped to the image height
    (res1,), _ = fast_rcnn_inference([boxes], [scores], [(8, 20)], 0.05, 0.5, 1)
    assert len(res1) == 1


def _roi_heads(num_classes=2, channels=8, batch_size_per_image=16):
    return StandardROIHeads(
        num_classes=num_classes,
        batch_size_per_image=batch_size_per_image,
        positive_fraction=0.25,
        proposal_matcher=Matcher([0.5], [0, 1]),
        box_in_features=["p2", "p3", "p4", "p5"],
        box_pooler=ROIPooler(7, (1 / 4, 1 / 8, 1 / 16, 1 / 32), 0, "ROIAlignV2"),
        box_head=FastRCNNConvFCHead(ShapeSpec(channels=channels, height=7, width=7), conv_dims=[], fc_dims=[32]),
        box_predictor=FastRCNNOutputLayers(
            32, box2box_transform=Box2BoxTransform((10, 10, 5, 5)), num_classes=num_classes, test_score_thresh=0.05
        ),
    )


def test_label_and_sample_proposals_appends_gt():
    heads = _roi_heads()
    p = Instances(
        (64, 64),
        proposal_boxes=Boxes(torch.tensor([[0.0, 0.0, 8.0, 8.0], [30.0, 30.0, 50.0, 52.0]])),
        objectness_logits=torch.tensor([1.0, 0.5]),
    )
    gt = Instances((64, 64), gt_boxes=Boxes(torch.tensor([[30.0, 30.0, 50.0, 50.0]])), gt_classes=torch.tensor([1]))
    (s,) = heads.label_and_sample_proposals([p], [gt])
    assert len(s) == 3  # 2 proposals + the appended GT
    order = torch.argsort(s.proposal_boxes.tensor[:, 0] * 100 + s.proposal_boxes.tensor[:, 3])
    assert s.gt_classes[order].tolist() == [2, 1, 1]  # IoU 0 -> background; 400/440 -> fg; GT itself -> fg
    torch.testing.assert_close(s.gt_boxes.tensor[s.gt_classes == 1], torch.tensor([[30.0, 30.0, 50.0, 50.0]] * 2))
    # an image without GT: every proposal is background and no gt_boxes field is made up
    empty = Instances((64, 64), gt_boxes=Boxes(torch.zeros(0, 4)), gt_classes=torch.zeros(0, dtype=torch.int64))
    (s2,) = heads.label_and_sample_proposals([p], [empty])
    assert s2.gt_classes.tolist() == [2, 2] and not s2.has("gt_boxes")


def tiny_rcnn(num_classes=3):
    backbone = build_resnet_fpn_backbone(
        depth=18, stem_out_channels=8, res2_out_channels=64, norm="BN", out_channels=8, freeze_at=0
    )
    return GeneralizedRCNN(
        backbone=backbone,
        proposal_generator=RPN(
            in_features=["p2", "p3", "p4", "p5", "p6"],
            head=StandardRPNHead(in_channels=8, num_anchors=3),
            anchor_generator=DefaultAnchorGenerator(
                sizes=[[8], [16], [32], [64], [128]], aspect_ratios=[0.5, 1.0, 2.0], strides=[4, 8, 16, 32, 64]
            ),
            anchor_matcher=Matcher([0.3, 0.7], [0, -1, 1], allow_low_quality_matches=True),
            box2box_transform=Box2BoxTransform((1.0, 1.0, 1.0, 1.0)),
            batch_size_per_image=64,
            positive_fraction=0.5,
            pre_nms_topk=(200, 100),
            post_nms_topk=(50, 30),
        ),
        roi_heads=_roi_heads(num_classes=num_classes),
        pixel_mean=[100.0, 110.0, 120.0],
        pixel_std=[50.0, 50.0, 50.0],
    )


def _inputs():
    g = torch.Generator().manual_seed(0)
    out = []
    for h, w, boxes, cls in [
        (64, 96, [[10.0, 10.0, 40.0, 30.0]], [0]),
        (60, 80, [[5.0, 20.0, 30.0, 55.0], [40, 5, 70, 30]], [2, 1]),
    ]:
        inst = Instances((h, w), gt_boxes=Boxes(torch.tensor(boxes)), gt_classes=torch.tensor(cls))
        out.append({"image": torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8), "instances": inst})
    return out


def test_generalized_rcnn_training_step_reaches_heads():
    torch.manual_seed(0)
    model = tiny_rcnn()
    model.train()
    losses = model(_inputs())
    assert set(losses) == {"loss_cls", "loss_box_reg", "loss_rpn_cls", "loss_rpn_loc"}
    assert all(torch.isfinite(v) and v.dim() == 0 for v in losses.values())
    sum(losses.values()).backward()
    for name in [
        "proposal_generator.rpn_head.objectness_logits.weight",
        "proposal_generator.rpn_head.anchor_deltas.weight",
        "roi_heads.box_predictor.cls_score.weight",
        "roi_heads.box_predictor.bbox_pred.weight",
        "roi_heads.box_head.fc1.weight",
        "backbone.fpn_output2.weight",
    ]:
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name
    # the input images must not be modified
    assert model.pixel_mean.shape == (3, 1, 1) and "pixel_mean" not in model.state_dict()


def test_generalized_rcnn_inference_output_frame():
    torch.manual_seed(0)
    model = tiny_rcnn().eval()
    for m in model.modules():  # make some detections pass the score threshold
        if isinstance(m, FastRCNNOutputLayers):
            m.test_score_thresh = 0.0
    inputs = [
        {"image": x["image"], "height": 2 * x["image"].shape[1], "width": 2 * x["image"].shape[2]} for x in _inputs()
    ]
    with torch.no_grad():
        out = model(inputs)
    assert len(out) == 2
    for o, x in zip(out, inputs):
        inst = o["instances"]
        assert inst.image_size == (x["height"], x["width"])
        assert len(inst) > 0 and inst.pred_boxes.tensor[:, 2].max() <= x["width"]
        assert inst.pred_classes.max() < 3 and inst.scores.min() >= 0


def test_registries():
    assert META_ARCH_REGISTRY.get("GeneralizedRCNN") is GeneralizedRCNN
    assert META_ARCH_REGISTRY.get("ProposalNetwork") is not None
    assert PROPOSAL_GENERATOR_REGISTRY.get("RPN") is RPN
    assert ROI_HEADS_REGISTRY.get("StandardROIHeads") is StandardROIHeads


REPO = __import__("pathlib").Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "path,max_iter,lr,steps",
    [
        ("configs/COCO-Detection/faster_rcnn_R_50_FPN_1x.py", 90000, 0.02, [60000, 80000]),
        ("configs/COCO-Detection/faster_rcnn_R_50_FPN_3x.py", 270000, 0.02, [210000, 250000]),
        ("configs/COCO-Detection/retinanet_R_50_FPN_1x.py", 90000, 0.01, [60000, 80000]),
        ("configs/COCO-Detection/retinanet_R_50_FPN_3x.py", 270000, 0.01, [210000, 250000]),
        ("configs/PascalVOC-Detection/faster_rcnn_R_50_FPN.py", 18000, 0.02, [12000, 16000]),
    ],
)
def test_detectron2_schedules(path, max_iter, lr, steps):
    from net_detr2.config import LazyConfig

    cfg = LazyConfig.load(str(REPO / path))
    assert cfg.train.max_iter == max_iter and cfg.optimizer.lr == lr
    assert list(cfg.lr_multiplier.scheduler.milestones) == steps
    assert cfg.dataloader.train.total_batch_size == 16
    assert cfg.train.init_checkpoint.endswith("R-50.pkl")
    if "PascalVOC" in path:
        assert cfg.model.roi_heads.num_classes == 20 and cfg.model.roi_heads.box_predictor.num_classes == 20


def test_shapes_faster_rcnn_config_builds_and_trains_a_step():
    from net_detr2.config import LazyConfig, instantiate

    cfg = LazyConfig.load(str(REPO / "configs/shapes/faster_rcnn_R18_FPN.py"))
    torch.manual_seed(0)
    model = instantiate(cfg.model).train()
    assert model.roi_heads.num_classes == 6 and model.proposal_generator.anchor_generator.num_anchors == [2] * 5
    losses = model(_inputs())
    sum(losses.values()).backward()
    assert model.roi_heads.box_predictor.cls_score.weight.grad.abs().sum() > 0


def test_vis_period_puts_gt_and_proposals_into_the_event_storage(tmp_path):
    """Every vis_period iterations the first training image goes to the storage (GT left, top proposals right)
    and the TensorBoard writer writes it."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from net_detr2.utils.events import EventStorage, TensorboardXWriter

    torch.manual_seed(0)
    model = tiny_rcnn()
    model.vis_period = 2
    model.train()
    inputs = _inputs()
    writer = TensorboardXWriter(str(tmp_path), window_size=1)
    with EventStorage() as storage:
        for it in range(3):
            storage.iter = it
            model(inputs)
            assert len(storage._vis_data) == (1 if it == 0 else it // 2 + 1)
            if it == 0:
                title, image, step = storage._vis_data[0]
                assert title == "Left: GT bounding boxes;  Right: Predicted proposals" and step == 0
                assert image.shape == (3, 64, 192) and image.dtype == np.uint8  # two 64 x 96 halves
                rgb = inputs[0]["image"].flip(0).numpy()  # the BGR input as RGB
                left, right = image[:, :, :96], image[:, :, 96:]
                drawn = (left != rgb).any(axis=0)
                assert drawn[10, 10:41].all() and drawn[10:31, 40].all()  # the GT box's top and right edges
                assert not drawn[15:26, 15:36].any()  # its inside is the picture
                assert (right != rgb).any(axis=0).sum() > drawn.sum()  # 20 proposals draw more than 1 box
        writer.write()
    writer.close()
    acc = EventAccumulator(str(tmp_path), size_guidance={"images": 0})
    acc.Reload()
    written = acc.Images("Left: GT bounding boxes;  Right: Predicted proposals")
    assert [(e.step, e.width, e.height) for e in written] == [(0, 192, 64), (2, 192, 64)]
    assert storage._vis_data == []  # the writer took them
    model.vis_period = 0
    model(inputs)  # no storage needed when visualisation is off
