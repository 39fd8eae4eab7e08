"""SSD's training targets, loss and decoding against torchvision's SSD on identical inputs.

torchvision (installed) is the oracle: its `SSDMatcher`, `BoxCoder` and the `SSD.compute_loss` /
`SSD.postprocess_detections` methods are run at test time on the same default boxes, ground truths and
raw head outputs as ours. The two class conventions differ: torchvision's background is class 0 and its
foreground classes are 1..K; ours are 0..K-1 with background K (detectron2's). The tests translate.

Default boxes as sets are compared in `test_ssd.py` (`test_ssd300_default_boxes_equal_torchvision`).
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torchvision.models.detection import _utils as tv_utils
from torchvision.models.detection.ssd import SSD as TorchvisionSSD

from net_detr2.modeling.anchor_generator import DefaultBoxGenerator, ssd_default_box_sizes
from net_detr2.modeling.box_regression import Box2BoxTransform
from net_detr2.modeling.matcher import match_default_boxes
from net_detr2.modeling.meta_arch.ssd import multibox_loss
from net_detr2.structures import Boxes, Instances, pairwise_iou
from net_detr2.utils.testing import tiny_ssd

SHAPES_300 = [(38, 38), (19, 19), (10, 10), (5, 5), (3, 3), (1, 1)]
K = 3  # foreground classes


def _priors() -> torch.Tensor:
    return DefaultBoxGenerator(**ssd_default_box_sizes(300, "voc"))(SHAPES_300, (300, 300))


def _random_gt(g: torch.Generator, n: int, size: float = 300.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` boxes with sides log-uniform in [6, 250] px inside a ``size`` square, and classes 0..K-1."""
    side = torch.exp(torch.empty(n, 2).uniform_(1.8, 5.5, generator=g))
    side = side.clamp(max=size - 1)
    x0 = torch.rand(n, generator=g) * (size - side[:, 0])
    y0 = torch.rand(n, generator=g) * (size - side[:, 1])
    boxes = torch.stack([x0, y0, x0 + side[:, 0], y0 + side[:, 1]], dim=1)
    return boxes, torch.randint(0, K, (n,), generator=g)


def _to_torchvision_logits(cls_logits: torch.Tensor) -> torch.Tensor:
    """(N, P, K+1) with background last -> background first (torchvision's class 0)."""
    return torch.cat([cls_logits[..., -1:], cls_logits[..., :-1]], dim=-1)


def _tv_matches(gt_boxes: torch.Tensor, priors: torch.Tensor) -> torch.Tensor:
    """torchvision's SSD matching: (P,) ground-truth index per prior, -1 = background."""
    iou = pairwise_iou(Boxes(gt_boxes), Boxes(priors))
    return tv_utils.SSDMatcher(0.5)(iou)


def _our_targets(priors, gt_boxes, gt_classes):
    """Our per-prior labels (N, P) and deltas (N, P, 4), through the detector's own `label_default_boxes`."""
    model = tiny_ssd(num_classes=K)
    instances = []
    for boxes, classes in zip(gt_boxes, gt_classes):
        inst = Instances((300, 300))
        inst.gt_boxes = Boxes(boxes)
        inst.gt_classes = classes
        instances.append(inst)
    return model.label_default_boxes(priors, instances)


# ----------------------------------------------------------------------------- matching and targets
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matched_labels_equal_torchvision(seed):
    """Same ground truths and priors -> the same foreground priors with the same classes. Both keep SSD's
    rule that every ground truth also claims its single best prior whatever the IoU (torchvision's
    `SSDMatcher` does it too), and a prior that is the best one of several ground truths goes to the
    highest ground-truth index in both (torchvision's indexed assignment writes the last one)."""
    g = torch.Generator().manual_seed(seed)
    priors = _priors()
    boxes, classes = _random_gt(g, 12)
    # two identical ground truths share their best prior: the later index must win
    boxes = torch.cat([boxes, boxes[:1]])
    classes = torch.cat([classes, (classes[:1] + 1) % K])
    tv = _tv_matches(boxes, priors)
    matched, is_fg = match_default_boxes(pairwise_iou(Boxes(boxes), Boxes(priors)), 0.5)
    assert torch.equal(is_fg, tv >= 0)
    assert torch.equal(matched[is_fg], tv[tv >= 0])
    assert is_fg.sum() > len(boxes)  # IoU >= 0.5 matches exist besides the forced ones
    # torchvision labels: 0 = background, c + 1 = our class c; ours: K = background
    labels, _ = _our_targets(priors, [boxes], [classes])
    tv_labels = torch.where(tv >= 0, classes[tv.clamp(min=0)] + 1, torch.zeros_like(tv))
    assert torch.equal(torch.where(labels[0] == K, torch.zeros_like(tv), labels[0] + 1), tv_labels)


def test_tiny_ground_truth_gets_its_best_prior_in_both():
    """A 6-px object overlaps the smallest (30-px) default box with IoU 0.04 < 0.5: only the
    best-prior-per-ground-truth rule makes it a positive, in torchvision and here alike."""
    priors = _priors()
    boxes = torch.tensor([[100.0, 100.0, 106.0, 106.0]])
    tv = _tv_matches(boxes, priors)
    matched, is_fg = match_default_boxes(pairwise_iou(Boxes(boxes), Boxes(priors)), 0.5)
    assert is_fg.sum() == 1 and torch.equal(is_fg, tv >= 0)
    assert pairwise_iou(Boxes(boxes), Boxes(priors[is_fg])).item() < 0.05


@pytest.mark.parametrize("seed", [0, 1])
def test_encoded_targets_equal_torchvision_box_coder(seed):
    """Regression targets at the positives equal torchvision's `BoxCoder((10, 10, 5, 5)).encode_single`,
    and decoding (ours: `apply_deltas`; torchvision: `decode_single`) gives the same boxes back."""
    g = torch.Generator().manual_seed(seed)
    priors = _priors()
    boxes, classes = _random_gt(g, 10)
    labels, deltas = _our_targets(priors, [boxes], [classes])
    fg = labels[0] != K
    tv = _tv_matches(boxes, priors)
    coder = tv_utils.BoxCoder(weights=(10.0, 10.0, 5.0, 5.0))
    expected = coder.encode_single(boxes[tv[fg]], priors[fg])
    torch.testing.assert_close(deltas[0][fg], expected, rtol=1e-5, atol=1e-4)
    ours = Box2BoxTransform(weights=(10.0, 10.0, 5.0, 5.0)).apply_deltas(deltas[0][fg], priors[fg])
    torch.testing.assert_close(ours, coder.decode_single(expected, priors[fg]), rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(ours, boxes[tv[fg]], rtol=1e-5, atol=1e-3)


# ----------------------------------------------------------------------------- loss
def _tv_loss(priors, gt_boxes, gt_classes, cls_logits, box_deltas):
    """torchvision's `SSD.compute_loss` on our head outputs (its ``self`` only needs the coder and ratio)."""
    tv_self = SimpleNamespace(box_coder=tv_utils.BoxCoder(weights=(10.0, 10.0, 5.0, 5.0)), neg_to_pos_ratio=3)
    targets = [{"boxes": b, "labels": c + 1} for b, c in zip(gt_boxes, gt_classes)]
    matches = [_tv_matches(b, priors) for b in gt_boxes]
    head = {"cls_logits": _to_torchvision_logits(cls_logits), "bbox_regression": box_deltas}
    return TorchvisionSSD.compute_loss(tv_self, targets, head, [priors] * len(gt_boxes), matches)


def test_multibox_loss_equals_torchvision_compute_loss():
    """Same predictions and ground truths -> the same classification loss (positives + the 3 x num_pos
    hardest negatives per image) and smooth-L1 box loss, both divided by the batch's positives."""
    g = torch.Generator().manual_seed(0)
    priors = _priors()
    gts = [_random_gt(g, n) for n in (3, 9)]
    gt_boxes, gt_classes = [b for b, _ in gts], [c for _, c in gts]
    P = priors.shape[0]
    cls_logits = torch.randn(2, P, K + 1, generator=g) * 2
    box_deltas = torch.randn(2, P, 4, generator=g)
    labels, deltas = _our_targets(priors, gt_boxes, gt_classes)
    ours = multibox_loss(cls_logits, box_deltas, labels, deltas)
    tv = _tv_loss(priors, gt_boxes, gt_classes, cls_logits, box_deltas)
    torch.testing.assert_close(ours["loss_cls"], tv["classification"], rtol=1e-5, atol=0)
    torch.testing.assert_close(ours["loss_box_reg"], tv["bbox_regression"], rtol=1e-5, atol=0)
    # and the gradients of the two agree
    cls_a = cls_logits.clone().requires_grad_(True)
    cls_b = cls_logits.clone().requires_grad_(True)
    multibox_loss(cls_a, box_deltas, labels, deltas)["loss_cls"].backward()
    _tv_loss(priors, gt_boxes, gt_classes, cls_b, box_deltas)["classification"].backward()
    torch.testing.assert_close(cls_a.grad, cls_b.grad, rtol=1e-5, atol=1e-7)


def test_multibox_loss_caps_negatives_where_torchvision_double_counts():
    """Documented difference: with fewer negatives than 3 x num_pos in an image, we take all of them;
    torchvision's rank test then also selects the positives (their mining loss is -inf, ranked last) and
    adds their cross-entropy a second time. Away from that corner the two agree (test above)."""
    priors = torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 0.0, 30.0, 10.0], [0.0, 20.0, 10.0, 30.0]])
    gt_boxes = [torch.tensor([[0.0, 0.0, 10.0, 10.0]])]
    gt_classes = [torch.tensor([1])]
    cls_logits = torch.tensor([[[0.5, 1.0, 0.0, -1.0], [2.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]]])
    box_deltas = torch.zeros(1, 3, 4)
    labels = torch.tensor([[1, K, K]])
    deltas = torch.zeros(1, 3, 4)
    ours = multibox_loss(cls_logits, box_deltas, labels, deltas)["loss_cls"]
    ce = torch.nn.functional.cross_entropy(cls_logits[0], labels[0], reduction="none")
    torch.testing.assert_close(ours, ce.sum())  # 1 positive, 2 negatives (3 asked for), normaliser 1
    tv = _tv_loss(priors, gt_boxes, gt_classes, cls_logits, box_deltas)["classification"]
    torch.testing.assert_close(tv, ce.sum() + ce[0])


# ----------------------------------------------------------------------------- decoding
def test_inference_equals_torchvision_postprocess_detections():
    """Same raw head outputs and default boxes -> the same detections: softmax, per class score > 0.01 and
    the top 400, class-wise NMS at 0.45, the best 200 per image."""
    g = torch.Generator().manual_seed(0)
    model = tiny_ssd(num_classes=K)
    priors = _priors()
    P = priors.shape[0]
    # confident, well separated scores on a few hundred priors; the rest below the threshold
    cls_logits = torch.randn(2, P, K + 1, generator=g)
    cls_logits[..., K] += 6.0
    hot = torch.randint(0, P, (2, 600), generator=g)
    cls_logits[torch.arange(2)[:, None], hot, torch.randint(0, K, (2, 600), generator=g)] += 9.0
    box_deltas = torch.randn(2, P, 4, generator=g) * 0.5
    ours = model.inference(priors, cls_logits, box_deltas, [(300, 300)] * 2)
    tv_self = SimpleNamespace(
        box_coder=tv_utils.BoxCoder(weights=(10.0, 10.0, 5.0, 5.0)),
        score_thresh=0.01,
        topk_candidates=400,
        nms_thresh=0.45,
        detections_per_img=200,
    )
    head = {"cls_logits": _to_torchvision_logits(cls_logits), "bbox_regression": box_deltas}
    tv = TorchvisionSSD.postprocess_detections(tv_self, head, [priors, priors], [(300, 300)] * 2)
    for o, t in zip(ours, tv):
        assert len(o) == len(t["scores"]) == 200
        # both come out sorted by score; compare in that order
        torch.testing.assert_close(o.scores, t["scores"])
        assert torch.equal(o.pred_classes + 1, t["labels"])
        torch.testing.assert_close(o.pred_boxes.tensor, t["boxes"], rtol=1e-5, atol=1e-3)
