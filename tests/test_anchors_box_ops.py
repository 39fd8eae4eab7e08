"""Anchors, box coding, matching, sampling, RoI pooling levels and detector_postprocess on hand cases."""

from __future__ import annotations

import math

import pytest
import torch

from net_detr2.modeling import (
    Box2BoxTransform,
    Box2BoxTransformLinear,
    DefaultAnchorGenerator,
    Matcher,
    ROIPooler,
    assign_boxes_to_levels,
    detector_postprocess,
    matched_classes,
    subsample_labels,
)
from net_detr2.structures import Boxes, Instances


def test_cell_anchors_hand_values_and_not_rounded():
    gen = DefaultAnchorGenerator(sizes=[[32]], aspect_ratios=[[0.5, 1.0, 2.0]], strides=[4])
    w_half = math.sqrt(1024 / 0.5) / 2  # 22.627..., h/w = 0.5
    expected = torch.tensor(
        [
            [-w_half, -w_half / 2, w_half, w_half / 2],
            [-16.0, -16.0, 16.0, 16.0],
            [-w_half / 2, -w_half, w_half / 2, w_half],
        ]
    )
    torch.testing.assert_close(gen.cell_anchors[0], expected)
    assert gen.cell_anchors[0][0, 0] != round(gen.cell_anchors[0][0, 0].item())
    # non-persistent: not in the state dict, but visible as named buffers
    assert gen.state_dict() == {}
    assert "cell_anchors.0" in dict(gen.named_buffers())


def test_anchor_sizes_broadcast_and_size_major_order():
    gen = DefaultAnchorGenerator(sizes=[8, 16], aspect_ratios=[1.0, 4.0], strides=[4, 8])
    assert gen.num_anchors == [4, 4]
    a = gen.cell_anchors[1]
    # size-major: (8, r=1), (8, r=4), (16, r=1), (16, r=4)
    torch.testing.assert_close(a[0], torch.tensor([-4.0, -4.0, 4.0, 4.0]))
    torch.testing.assert_close(a[1], torch.tensor([-2.0, -8.0, 2.0, 8.0]))
    torch.testing.assert_close(a[2], torch.tensor([-8.0, -8.0, 8.0, 8.0]))
    with pytest.raises(ValueError, match="sizes has 3 levels but there are 2 feature maps"):
        DefaultAnchorGenerator(sizes=[[8], [16], [32]], aspect_ratios=[1.0], strides=[4, 8])


def test_grid_anchor_order_y_x_a_and_offset():
    gen = DefaultAnchorGenerator(sizes=[[8, 16]], aspect_ratios=[1.0], strides=[4])
    (anchors,) = gen([torch.zeros(1, 3, 2, 3)])
    assert anchors.tensor.shape == (2 * 3 * 2, 4)
    # index (y, x, a) = (1, 2, 1): centre (x*4, y*4) = (8, 4), size 16
    torch.testing.assert_close(anchors.tensor[(1 * 3 + 2) * 2 + 1], torch.tensor([0.0, -4.0, 16.0, 12.0]))
    torch.testing.assert_close(anchors.tensor[1], torch.tensor([-8.0, -8.0, 8.0, 8.0]))
    gen_off = DefaultAnchorGenerator(sizes=[[8]], aspect_ratios=[1.0], strides=[4], offset=0.5)
    (a2,) = gen_off([torch.zeros(1, 3, 2, 3)])
    torch.testing.assert_close(a2.tensor[0], torch.tensor([-2.0, -2.0, 6.0, 6.0]))


def test_box2box_hand_deltas_and_round_trip():
    t = Box2BoxTransform(weights=(10, 10, 5, 5))
    src = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    tgt = torch.tensor([[5.0, 5.0, 25.0, 15.0]])
    # centres (5, 5) -> (15, 10); sizes 10x10 -> 20x10
    torch.testing.assert_close(t.get_deltas(src, tgt), torch.tensor([[10.0, 5.0, 5 * math.log(2), 0.0]]))
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(50, 2, generator=g) * 100
    src = torch.cat([xy, xy + 1 + torch.rand(50, 2, generator=g) * 50], dim=1)
    xy2 = torch.rand(50, 2, generator=g) * 100
    tgt = torch.cat([xy2, xy2 + 1 + torch.rand(50, 2, generator=g) * 50], dim=1)
    torch.testing.assert_close(t.apply_deltas(t.get_deltas(src, tgt), src), tgt, atol=1e-3, rtol=1e-5)
    # several classes per row decode independently: [R, 2*4]
    two = t.apply_deltas(torch.cat([t.get_deltas(src, tgt), torch.zeros(50, 4)], dim=1), src)
    torch.testing.assert_close(two[:, 4:], src)


def test_box2box_scale_clamp():
    t = Box2BoxTransform(weights=(1, 1, 1, 1))
    out = t.apply_deltas(torch.tensor([[0.0, 0.0, 10.0, 10.0]]), torch.tensor([[0.0, 0.0, 16.0, 16.0]]))
    # exp(dw) capped at 1000/16: a 16 px box grows to 1000 px, centred at 8
    torch.testing.assert_close(out, torch.tensor([[-492.0, -492.0, 508.0, 508.0]]))


def test_box2box_linear_round_trip():
    t = Box2BoxTransformLinear()
    src = torch.tensor([[0.0, 0.0, 10.0, 20.0]])
    tgt = torch.tensor([[-5.0, 2.0, 12.0, 30.0]])
    torch.testing.assert_close(t.get_deltas(src, tgt), torch.tensor([[1.0, 0.4, 0.7, 1.0]]))
    torch.testing.assert_close(t.apply_deltas(t.get_deltas(src, tgt), src), tgt)


def test_matcher_bands_and_low_quality():
    iou = torch.tensor([[0.8, 0.4, 0.1, 0.2], [0.1, 0.6, 0.25, 0.15]])
    m = Matcher([0.3, 0.7], [0, -1, 1], allow_low_quality_matches=False)
    matches, labels = m(iou)
    assert matches.tolist() == [0, 1, 1, 0]
    assert labels.tolist() == [1, -1, 0, 0]
    _, labels = Matcher([0.3, 0.7], [0, -1, 1], allow_low_quality_matches=True)(iou)
    assert labels.tolist() == [1, 1, 0, 0]  # pred 1 is gt 1's best
    matches, labels = m(torch.zeros(0, 3))
    assert matches.tolist() == [0, 0, 0] and labels.tolist() == [0, 0, 0]
    with pytest.raises(ValueError, match="need len"):
        Matcher([0.5], [0, -1, 1])


def test_subsample_labels_counts():
    labels = torch.full((200,), -1, dtype=torch.int64)
    labels[:10] = 1
    labels[50:150] = 0
    pos, neg = subsample_labels(labels, 20, 0.25, 0)
    assert len(pos) == 5 and len(neg) == 15
    assert (labels[pos] == 1).all() and (labels[neg] == 0).all()
    assert len(set(pos.tolist())) == 5 and len(set(neg.tolist())) == 15
    labels[2:10] = -1  # only 2 positives left: negatives fill the sample
    pos, neg = subsample_labels(labels, 20, 0.25, 0)
    assert len(pos) == 2 and len(neg) == 18
    # multi-class labels with a background id of 3
    pos, neg = subsample_labels(torch.tensor([0, 1, 2, 3, 3, -1]), 10, 0.5, 3)
    assert sorted(pos.tolist()) == [0, 1, 2] and sorted(neg.tolist()) == [3, 4]


def _square(side, x0=0.0):
    return [x0, 0.0, x0 + side, side]


def test_pooler_level_assignment_hand_levels():
    boxes = Boxes(torch.tensor([_square(224), _square(112), _square(50), _square(1000), _square(448), _square(223)]))
    # floor(4 + log2(side / 224)) clamped to [2, 5], minus 2
    levels = assign_boxes_to_levels([boxes], 2, 5, 224, 4)
    assert levels.tolist() == [2, 1, 0, 3, 3, 1]


def test_pooler_takes_each_box_from_its_level():
    pooler = ROIPooler(output_size=2, scales=(1 / 4, 1 / 8, 1 / 16, 1 / 32), sampling_ratio=0, pooler_type="ROIAlignV2")
    # level l is the constant l + 1 so the pooled value tells which level was used
    feats = [torch.full((2, 3, 640 // s, 640 // s), float(i + 1)) for i, s in enumerate([4, 8, 16, 32])]
    b0 = Boxes(torch.tensor([_square(40, 10), _square(224, 10)]))
    b1 = Boxes(torch.tensor([_square(120, 5), _square(500)]))
    out = pooler(feats, [b0, b1])
    assert out.shape == (4, 3, 2, 2)
    torch.testing.assert_close(out.mean(dim=(1, 2, 3)), torch.tensor([1.0, 3.0, 2.0, 4.0]))
    with pytest.raises(ValueError, match="unknown pooler_type"):
        ROIPooler(7, (1 / 4,), 0, "ROIAlignV3")


def test_detector_postprocess_scales_clips_and_drops_empty():
    r = Instances((100, 200))
    r.pred_boxes = Boxes(
        torch.tensor([[10.0, 10.0, 50.0, 50.0], [190.0, 90.0, 210.0, 110.0], [300.0, 0.0, 400.0, 10.0]])
    )
    r.scores = torch.tensor([0.9, 0.8, 0.7])
    out = detector_postprocess(r, 200, 400)
    assert out.image_size == (200, 400)
    torch.testing.assert_close(
        out.pred_boxes.tensor, torch.tensor([[20.0, 20.0, 100.0, 100.0], [380.0, 180.0, 400.0, 200.0]])
    )
    torch.testing.assert_close(out.scores, torch.tensor([0.9, 0.8]))


def test_matched_classes_labels_matches():
    gt_classes = torch.tensor([4, 7])
    matched = torch.tensor([1, 0, 1, 0])
    match_labels = torch.tensor([1, 1, 0, -1], dtype=torch.int8)
    assert matched_classes(gt_classes, matched, match_labels, background=9).tolist() == [7, 4, 9, -1]
    assert gt_classes.tolist() == [4, 7]  # not written to
    # no ground truth: every prediction is background, whatever the matcher said
    empty = torch.zeros(0, dtype=torch.int64)
    assert matched_classes(empty, matched, match_labels, background=9).tolist() == [9, 9, 9, 9]
