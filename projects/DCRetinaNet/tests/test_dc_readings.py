"""The readings of the summary paper's Eq. 1 and Eq. 4-5 on hand-made boxes where they differ, the warm-ups,
and the training statistics (what each reading promotes; lambda and lambda')."""

from __future__ import annotations

import json
import math

import pytest
import torch

from net_detr2.modeling.matcher import Matcher
from net_detr2.structures import Boxes, Instances
from net_detr2.utils.events import EventStorage
from net_detr2_projects.DCRetinaNet.dc_retinanet.assignment import IoUClassificationAwareMatcher, overlap_term
from net_detr2_projects.DCRetinaNet.dc_retinanet.dynamic_coefficient import dynamic_coefficient
from net_detr2_projects.DCRetinaNet.dc_retinanet.probes import READINGS, assignment_statistics

# One 100 x 100 ground truth of class 2 and anchors chosen so that the four readings of Eq. 4-5 disagree.
GT = Instances((300, 300), gt_boxes=Boxes(torch.tensor([[0.0, 0.0, 100.0, 100.0]])), gt_classes=torch.tensor([2]))
ANCHORS = Boxes(
    torch.tensor(
        [
            [0.0, 0.0, 100.0, 80.0],  # IoU 0.8: positive for the IoU rule
            [0.0, 0.0, 100.0, 45.0],  # IoU 0.45: ignored band; inside the gt (inter / min area = 1)
            [20.0, 20.0, 40.0, 40.0],  # IoU 0.04: negative; inside the gt, side 0.2x the gt's
            [-60.0, -60.0, 160.0, 160.0],  # IoU 100^2 / 220^2 = 0.207: negative; holds the gt, side 2.2x
            [200.0, 200.0, 220.0, 220.0],  # no overlap: negative
            [0.0, 55.0, 100.0, 100.0],  # IoU 0.45: ignored band, inside, but the classifier does not see it
        ]
    )
)
# p^ of the gt's class (2) per anchor: 0.9, except 1 (logit 30) on the large anchor and 0.01 on the last
P_HAT = torch.tensor([0.9, 0.9, 0.9, 1.0, 0.9, 0.01])
IOU_MATCHER = Matcher([0.4, 0.5], [0, -1, 1], allow_low_quality_matches=True)  # RetinaNet's rule


def _logits():
    logits = torch.full((6, 6), -8.0)
    logits[:, 2] = torch.where(P_HAT == 1.0, torch.tensor(30.0), torch.logit(P_HAT))
    return [logits[:3], logits[3:]]  # two "levels"


def _labels(case_order, overlap, **kwargs):
    matcher = IoUClassificationAwareMatcher(IOU_MATCHER, 0.5, 0.6, case_order, overlap, **kwargs)
    return matcher.match_anchors(ANCHORS, GT, _logits())


def test_overlap_terms_by_hand():
    torch.testing.assert_close(
        overlap_term(GT.gt_boxes, ANCHORS, "min_area"), torch.tensor([[1.0, 1.0, 1.0, 1.0, 0.0, 1.0]])
    )
    iou = torch.tensor([[0.8, 0.45, 0.04, 100**2 / 220**2, 0.0, 0.45]])
    torch.testing.assert_close(overlap_term(GT.gt_boxes, ANCHORS, "iou"), iou)


@pytest.mark.parametrize(
    "case_order, overlap, expected",
    [
        # s = 0.5 p^ + 0.5: every anchor inside the gt or holding it with p^ >= 0.2 (anchors 1, 2, 3)
        ("positive_first", "min_area", [1, 1, 1, 1, 0, -1]),
        # only the ignored band can be promoted (anchor 1); anchors 2 and 3 stay negative
        ("negative_first", "min_area", [1, 1, 0, 0, 0, -1]),
        # s = 0.5 p^ + 0.5 IoU: anchor 1: 0.675, anchor 2: 0.47, anchor 3: 0.603 -> 1 and 3
        ("positive_first", "iou", [1, 1, 0, 1, 0, -1]),
        ("negative_first", "iou", [1, 1, 0, 0, 0, -1]),
    ],
)
def test_the_readings_of_eq5_on_hand_made_anchors(case_order, overlap, expected):
    matched, labels = _labels(case_order, overlap)
    assert labels.tolist() == expected
    assert matched.tolist() == [0] * 6


def test_negative_first_reads_iou_and_score_of_the_same_pair():
    # anchor 2 lies in the ignored band of gt 0 (IoU 0.45) and holds the small gt 1 (IoU 0.09): under
    # "negative_first" it may be promoted for gt 0 only, not for gt 1 whatever its score there
    gts = Instances(
        (300, 300),
        gt_boxes=Boxes(torch.tensor([[0.0, 0.0, 100.0, 100.0], [10.0, 10.0, 30.0, 30.0]])),
        gt_classes=torch.tensor([2, 4]),
    )
    anchors = Boxes(torch.tensor([[0.0, 0.0, 100.0, 80.0], [10.0, 10.0, 30.0, 30.0], [0.0, 0.0, 100.0, 45.0]]))
    assert IOU_MATCHER.match_anchors(anchors, gts)[1].tolist() == [1, 1, -1]

    def labels(p_gt0, case_order):
        logits = torch.full((3, 6), -8.0)
        logits[2, 2], logits[2, 4] = torch.logit(torch.tensor(p_gt0)), torch.logit(torch.tensor(0.9))
        matcher = IoUClassificationAwareMatcher(IOU_MATCHER, 0.5, 0.6, case_order, "min_area")
        matched, labels = matcher.match_anchors(anchors, gts, [logits])
        return matched[2].item(), labels[2].item()

    # s(gt 0) = 0.5 p + 0.5 (inside gt 0), s(gt 1) = 0.45 + 0.5 (holds gt 1)
    assert labels(0.1, "positive_first") == (1, 1)  # the best score: gt 1
    assert labels(0.1, "negative_first")[1] == -1  # s(gt 0) = 0.55 < 0.6; gt 1 is not in the band
    assert labels(0.5, "negative_first") == (0, 1)  # s(gt 0) = 0.75: promoted, for gt 0


def test_promotion_waits_for_the_warmup():
    iou_labels = IOU_MATCHER.match_anchors(ANCHORS, GT)[1].tolist()
    assert iou_labels == [1, -1, 0, 0, 0, -1]
    with EventStorage(start_iter=99):
        assert _labels("positive_first", "min_area", warmup_iters=100)[1].tolist() == iou_labels
    with EventStorage(start_iter=100):
        assert _labels("positive_first", "min_area", warmup_iters=100)[1].tolist() == [1, 1, 1, 1, 0, -1]
    with pytest.raises(RuntimeError, match="warmup_iters=100 needs the training iteration"):
        _labels("positive_first", "min_area", warmup_iters=100)
    assert _labels("positive_first", "min_area")[1].tolist() == [1, 1, 1, 1, 0, -1]  # no warm-up, no storage


def test_unknown_readings_are_refused():
    with pytest.raises(ValueError, match="case_order must be one of .* got 'zero_first'"):
        IoUClassificationAwareMatcher(IOU_MATCHER, case_order="zero_first")
    with pytest.raises(ValueError, match="overlap must be one of .* got 'ioa'"):
        IoUClassificationAwareMatcher(IOU_MATCHER, overlap="ioa")
    with pytest.raises(ValueError, match="warmup_iters must be >= 0"):
        IoUClassificationAwareMatcher(IOU_MATCHER, warmup_iters=-1)


def test_assignment_statistics_by_hand():
    stats = assignment_statistics(ANCHORS, GT, _logits(), IOU_MATCHER, 0.5, 0.6)
    assert [r for r in READINGS] == [
        ("positive_first", "min_area"),
        ("positive_first", "iou"),
        ("negative_first", "min_area"),
        ("negative_first", "iou"),
    ]
    iou3 = 100**2 / 220**2
    # columns: promoted, sum sqrt(area ratio), ratio < 0.5, ratio > 2, sum p^, sum IoU, most for one gt
    expected = torch.tensor(
        [
            [3, math.sqrt(0.45) + 0.2 + 2.2, 1, 1, 0.9 + 0.9 + 1.0, 0.45 + 0.04 + iou3, 3],
            [2, math.sqrt(0.45) + 2.2, 0, 1, 0.9 + 1.0, 0.45 + iou3, 2],
            [1, math.sqrt(0.45), 0, 0, 0.9, 0.45, 1],
            [1, math.sqrt(0.45), 0, 0, 0.9, 0.45, 1],
        ]
    )
    torch.testing.assert_close(stats, expected, rtol=1e-5, atol=1e-5)
    empty = Instances((300, 300), gt_boxes=Boxes(torch.zeros(0, 4)), gt_classes=torch.zeros(0, dtype=torch.int64))
    assert assignment_statistics(ANCHORS, empty, _logits(), IOU_MATCHER, 0.5, 0.6).sum() == 0


def test_dynamic_coefficient_units_by_hand():
    gt = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 40.0, 20.0]])
    pred = torch.tensor([[1.0, 2.0, 11.0, 12.0], [4.0, 2.0, 44.0, 22.0]])  # centres moved by (1, 2) and (4, 2) px
    sigmoid = torch.sigmoid
    # in units of the gt's size: (0.1, 0.2) -> 0.05 and (0.1, 0.1) -> 0.02; aspects equal (1 = 1, 2 = 2)
    torch.testing.assert_close(
        dynamic_coefficient(pred, gt), 1 / (sigmoid(torch.tensor([0.05, 0.02])) + 1e-6), rtol=1e-6, atol=0
    )
    # in pixels: 1 + 4 = 5 and 16 + 4 = 20 -> sigmoid near 1: both about 1
    torch.testing.assert_close(
        dynamic_coefficient(pred, gt, offset_units="pixels"),
        1 / (sigmoid(torch.tensor([5.0, 20.0])) + 1e-6),
        rtol=1e-6,
        atol=0,
    )
    # the aspect term: a 2:1 prediction on a 1:1 gt, same centre -> 1 / (0.5 + tanh(1))
    torch.testing.assert_close(
        dynamic_coefficient(torch.tensor([[-5.0, 0.0, 15.0, 10.0]]), gt[:1]),
        torch.tensor([1 / (0.5 + math.tanh(1.0) + 1e-6)]),
    )
    with pytest.raises(ValueError, match="offset_units must be one of .* got 'stride'"):
        dynamic_coefficient(pred, gt, offset_units="stride")


def test_statistics_table_averages_each_quarter_of_training(tmp_path):
    from net_detr2_projects.DCRetinaNet.tools.plot_statistics import table

    key = "iac.negative_first.min_area/"
    records = [
        {"iteration": 0, key + "promoted_per_gt": 0.0, key + "most_for_one_gt": 0.0},
        {"iteration": 1, key + "promoted_per_gt": 1.0, key + "most_for_one_gt": 3.0, key + "p_hat": 0.4},
        {"iteration": 2, key + "promoted_per_gt": 2.0, key + "most_for_one_gt": 5.0, key + "p_hat": 0.6},
        {"iteration": 3, "dc/lambda_norm_min": 0.5, "dc/lambda_norm_mean": 1.0, "dc/lambda_norm_max": 1.5},
        {"iteration": 7, key + "promoted_per_gt": 4.0, "loss_cls": 0.3},
    ]
    (tmp_path / "metrics.json").write_text("\n".join(json.dumps(r) for r in records) + "\n{half a line")
    rows = {tuple(c.strip() for c in line.split("|")[2:4]): line for line in table([("run", tmp_path)]).splitlines()}
    # quarters of iterations 0-7: 0-1, 2-3, 4-5, 6-7; promoted/gt, most, size ratio, <half, >double, p^, IoU
    assert rows[("negative_first.min_area", "0–1")].split("|")[4:8] == [" 0.50 ", " 3.00 ", " – ", " – "]
    assert rows[("negative_first.min_area", "2–3")].split("|")[4:6] == [" 2.00 ", " 5.00 "]
    assert rows[("negative_first.min_area", "2–3")].split("|")[9] == " 0.60 "
    assert rows[("negative_first.min_area", "2–3")].split("|")[11] == " 0.50 / 1.00 / 1.50 "
    assert rows[("negative_first.min_area", "6–7")].split("|")[4] == " 4.00 "
    assert rows[("positive_first.iou", "4–5")].split("|")[4] == " – "
