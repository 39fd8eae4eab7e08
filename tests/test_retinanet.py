"""RetinaNet: focal loss and box loss on hand cases, anchor labelling, a tiny training step and inference."""

from __future__ import annotations

import math

import pytest
import torch

from net_detr2.layers import ShapeSpec
from net_detr2.modeling import (
    Box2BoxTransform,
    DefaultAnchorGenerator,
    Matcher,
    RetinaNet,
    RetinaNetHead,
    build_retinanet_resnet_fpn_backbone,
)
from net_detr2.modeling.meta_arch.retinanet import sigmoid_focal_loss
from net_detr2.modeling.registry import META_ARCH_REGISTRY
from net_detr2.structures import Boxes, Instances


def _sig(x):
    return 1 / (1 + math.exp(-x))


def test_sigmoid_focal_loss_hand_values():
    logits = torch.tensor([0.0, 2.0])
    targets = torch.tensor([1.0, 0.0])
    loss = sigmoid_focal_loss(logits, targets, alpha=0.25, gamma=2.0)
    # positive: p = 0.5, -0.25 * 0.5^2 * log 0.5; negative: p = s(2), -0.75 * p^2 * log(1 - p)
    p = _sig(2.0)
    expected = [0.25 * 0.25 * math.log(2), 0.75 * p * p * -math.log(1 - p)]
    torch.testing.assert_close(loss, torch.tensor(expected))


def tiny_retinanet(num_classes=3, channels=8):
    backbone = build_retinanet_resnet_fpn_backbone(
        depth=18, stem_out_channels=8, res2_out_channels=64, norm="BN", out_channels=channels, freeze_at=0
    )
    return RetinaNet(
        backbone=backbone,
        head=RetinaNetHead(
            input_shape=[ShapeSpec(channels=channels)] * 5,
            num_classes=num_classes,
            num_anchors=3,
            conv_dims=[channels, channels],
        ),
        head_in_features=["p3", "p4", "p5", "p6", "p7"],
        anchor_generator=DefaultAnchorGenerator(
            sizes=[[16], [32], [64], [128], [256]], aspect_ratios=[0.5, 1.0, 2.0], strides=[8, 16, 32, 64, 128]
        ),
        box2box_transform=Box2BoxTransform((1.0, 1.0, 1.0, 1.0)),
        anchor_matcher=Matcher([0.4, 0.5], [0, -1, 1], allow_low_quality_matches=True),
        num_classes=num_classes,
        pixel_mean=[100.0, 110.0, 120.0],
        pixel_std=[50.0, 50.0, 50.0],
        test_score_thresh=0.0,
    )


def test_label_anchors_hand_case():
    model = tiny_retinanet()
    anchors = [
        Boxes(
            torch.tensor(
                [[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 22.0], [50.0, 50.0, 60.0, 60.0], [0.0, 0.0, 10.0, 15.0]]
            )
        )
    ]
    gt = Instances((64, 64), gt_boxes=Boxes(torch.tensor([[0.0, 0.0, 10.0, 20.0]])), gt_classes=torch.tensor([2]))
    labels, boxes = model.label_anchors(anchors, [gt])
    # IoUs 0.5 (positive), 20/22 (positive), 0 (background = 3), 0.75 (positive)
    assert labels[0].tolist() == [2, 2, 3, 2]
    anchors2 = [Boxes(torch.tensor([[0.0, 0.0, 10.0, 9.0], [0.0, 0.0, 10.0, 40.0], [50.0, 50.0, 60.0, 60.0]]))]
    labels2, _ = model.label_anchors(anchors2, [gt])
    # IoU 0.45 -> ignored, 0.5 -> positive, 0 -> background
    assert labels2[0].tolist() == [-1, 2, 3]


def test_retinanet_losses_hand_case():
    model = tiny_retinanet(num_classes=2)
    anchors = [Boxes(torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0], [40.0, 40.0, 50.0, 50.0]]))]
    gt_labels = [torch.tensor([1, 2, -1])]  # positive of class 1, background, ignored
    gt_boxes = [torch.tensor([[0.0, 0.0, 10.0, 20.0], [0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]])]
    logits = [torch.tensor([[[0.0, 1.0], [-1.0, 0.5], [5.0, 5.0]]])]
    deltas = [torch.tensor([[[0.0, 0.55, 0.0, 0.7], [3.0, 3.0, 3.0, 3.0], [3.0, 3.0, 3.0, 3.0]]])]
    losses = model.losses(anchors, logits, gt_labels, deltas, gt_boxes)
    fl = sigmoid_focal_loss(torch.tensor([0.0, 1.0, -1.0, 0.5]), torch.tensor([0.0, 1.0, 0.0, 0.0]), 0.25, 2.0).sum()
    normalizer = 0.9 * 100 + 0.1 * 1  # EMA of the foreground count from its initial 100
    assert losses["loss_cls"].item() == pytest.approx(fl.item() / normalizer, rel=1e-5)
    # target (0, 0.5, 0, log 2); smooth L1 with beta 0.1: 0.5 * 0.05^2 / 0.1 + (0.7 - log 2 < 0.1 -> quadratic)
    d = 0.7 - math.log(2)
    expected_box = 0.5 * 0.05**2 / 0.1 + 0.5 * d * d / 0.1
    assert losses["loss_box_reg"].item() == pytest.approx(expected_box / normalizer, rel=1e-4)
    # the normaliser keeps its EMA across calls, as a tensor
    model.losses(anchors, logits, gt_labels, deltas, gt_boxes)
    assert float(model.loss_normalizer) == pytest.approx(0.9 * normalizer + 0.1, rel=1e-6)


def _inputs():
    g = torch.Generator().manual_seed(0)
    out = []
    for h, w, boxes, cls in [(64, 96, [[10.0, 10.0, 40.0, 30.0]], [0]), (60, 80, [[5.0, 20.0, 30.0, 55.0]], [2])]:
        inst = Instances((h, w), gt_boxes=Boxes(torch.tensor(boxes)), gt_classes=torch.tensor(cls))
        out.append({"image": torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8), "instances": inst})
    return out


def test_retinanet_training_step_and_inference():
    torch.manual_seed(0)
    model = tiny_retinanet()
    model.train()
    losses = model(_inputs())
    assert set(losses) == {"loss_cls", "loss_box_reg"}
    sum(losses.values()).backward()
    params = dict(model.named_parameters())
    for name in [
        "head.cls_score.weight",
        "head.bbox_pred.weight",
        "head.cls_subnet.0.weight",
        "backbone.fpn_output3.weight",
    ]:
        assert params[name].grad is not None and params[name].grad.abs().sum() > 0, name
    model.eval()
    inputs = [{"image": x["image"], "height": 30, "width": 40} for x in _inputs()]
    with torch.no_grad():
        out = model(inputs)
    for o in out:
        inst = o["instances"]
        assert inst.image_size == (30, 40)
        assert 0 < len(inst) <= 100
        assert (inst.scores[:-1] >= inst.scores[1:]).all()
    assert META_ARCH_REGISTRY.get("RetinaNet") is RetinaNet


def test_retinanet_head_prior_and_shape_check():
    head = RetinaNetHead(
        input_shape=[ShapeSpec(channels=4)] * 2, num_classes=5, num_anchors=2, conv_dims=[4], prior_prob=0.01
    )
    logits, deltas = head([torch.zeros(1, 4, 3, 3), torch.zeros(1, 4, 2, 2)])
    assert logits[0].shape == (1, 10, 3, 3) and deltas[1].shape == (1, 8, 2, 2)
    torch.testing.assert_close(torch.sigmoid(head.cls_score.bias), torch.full((10,), 0.01))
    with pytest.raises(ValueError, match="same channels"):
        RetinaNetHead(
            input_shape=[ShapeSpec(channels=4), ShapeSpec(channels=8)], num_classes=5, num_anchors=2, conv_dims=[4]
        )


def test_shapes_retinanet_config_predicts_on_p2_to_p6_and_trains_a_step():
    from pathlib import Path

    from net_detr2.config import LazyConfig, instantiate

    cfg = LazyConfig.load(str(Path(__file__).resolve().parents[1] / "configs/shapes/retinanet_R18_FPN.py"))
    torch.manual_seed(0)
    model = instantiate(cfg.model).train()
    strides = {k: s.stride for k, s in model.backbone.output_shape().items()}
    assert [strides[f] for f in model.head_in_features] == [4, 8, 16, 32, 64]
    assert model.anchor_generator.strides == [4, 8, 16, 32, 64]
    # anchors twice the stride, two per location, as many as the head predicts
    assert model.anchor_generator.num_anchors == [2] * 5
    assert model.head.cls_score.out_channels == 2 * 6
    assert [float(a[:, 2].sub(a[:, 0]).min()) for a in model.anchor_generator.cell_anchors] == [8, 16, 32, 64, 128]
    losses = model(_inputs())
    sum(losses.values()).backward()
    assert model.head.cls_score.weight.grad.abs().sum() > 0
    assert model.backbone.fpn_output2.weight.grad.abs().sum() > 0


def test_classification_loss_weights_hook_weighs_each_anchor():
    """The per-anchor weight hook: a weight of 3 on the positive anchor, 1 elsewhere, triples only its share."""

    def three_on_positives(per_anchor_loss, gt_labels, anchors, pred_anchor_deltas, gt_boxes):
        assert per_anchor_loss.shape == (2,)  # the two anchors that are not ignored
        return torch.where(gt_labels[gt_labels >= 0] != 2, 3.0, 1.0)

    plain = tiny_retinanet(num_classes=2)
    weighted = tiny_retinanet(num_classes=2)
    weighted.classification_loss_weights = three_on_positives
    anchors = [Boxes(torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0], [40.0, 40.0, 50.0, 50.0]]))]
    gt_labels = [torch.tensor([1, 2, -1])]  # positive of class 1, background, ignored
    gt_boxes = [torch.tensor([[0.0, 0.0, 10.0, 20.0], [0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]])]
    logits = [torch.tensor([[[0.0, 1.0], [-1.0, 0.5], [5.0, 5.0]]])]
    deltas = [torch.zeros(1, 3, 4)]
    pos = sigmoid_focal_loss(torch.tensor([0.0, 1.0]), torch.tensor([0.0, 1.0]), 0.25, 2.0).sum()
    neg = sigmoid_focal_loss(torch.tensor([-1.0, 0.5]), torch.tensor([0.0, 0.0]), 0.25, 2.0).sum()
    normalizer = 0.9 * 100 + 0.1 * 1
    for model, pos_weight in ((plain, 1.0), (weighted, 3.0)):
        losses = model.losses(anchors, logits, gt_labels, deltas, gt_boxes)
        expected = (pos_weight * pos + neg) / normalizer
        assert losses["loss_cls"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_anchor_matcher_is_swappable():
    """RetinaNet assigns through ``anchor_matcher.match_anchors(anchors, gt, pred_logits)``: a matcher that reads
    the predictions gets this image's per-level logits."""

    class MostConfidentMatcher:
        """Positive: the anchor with the highest logit of the ground truth's class; every other anchor negative."""

        def match_anchors(self, anchors, gt_instances, pred_logits):
            logits = torch.cat(pred_logits)[:, gt_instances.gt_classes[0]]
            labels = torch.zeros(len(anchors), dtype=torch.int8)
            labels[logits.argmax()] = 1
            return torch.zeros(len(anchors), dtype=torch.int64), labels

    model = tiny_retinanet()
    anchors = [Boxes(torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 22.0]])), Boxes(torch.zeros(2, 4))]
    gt = Instances((64, 64), gt_boxes=Boxes(torch.tensor([[0.0, 0.0, 10.0, 20.0]])), gt_classes=torch.tensor([2]))
    logits = [torch.zeros(2, 2, 3), torch.zeros(2, 2, 3)]
    logits[1][1, 0, 2] = 4.0  # image 1, level 1, anchor 0, class 2
    labels, boxes = model.label_anchors(anchors, [gt, gt], logits, matcher=MostConfidentMatcher())
    assert labels[1].tolist() == [3, 3, 2, 3] and labels[0].tolist() == [2, 3, 3, 3]
    torch.testing.assert_close(boxes[1][2], gt.gt_boxes.tensor[0])
    # the model's own matcher (IoU) is what training uses unless told otherwise
    model.anchor_matcher = MostConfidentMatcher()
    assert model.label_anchors(anchors, [gt], [x[1:] for x in logits])[0][0].tolist() == [3, 3, 2, 3]


def test_vis_period_puts_gt_and_detections_into_the_event_storage():
    from net_detr2.utils.events import EventStorage

    torch.manual_seed(0)
    model = tiny_retinanet()  # test_score_thresh 0: a fresh head has detections to draw
    model.vis_period = 3
    model.train()
    inputs = _inputs()
    with EventStorage() as storage:
        for it in range(4):
            storage.iter = it
            losses = model(inputs)
        assert [(name, step, image.shape) for name, image, step in storage._vis_data] == [
            ("Left: GT bounding boxes;  Right: Predicted boxes", 0, (3, 64, 192)),
            ("Left: GT bounding boxes;  Right: Predicted boxes", 3, (3, 64, 192)),
        ]
        rgb = inputs[0]["image"].flip(0).numpy()
        image = storage._vis_data[1][1]
        assert (image[:, :, :96] != rgb).any() and (image[:, :, 96:] != rgb).any(axis=0).sum() > 100
    assert set(losses) == {"loss_cls", "loss_box_reg"}  # training itself is unchanged
