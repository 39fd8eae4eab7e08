from __future__ import annotations

import math

import torch
from torchvision.ops import batched_nms

from net_detr2.structures import Boxes
from net_detr2_projects.DCRetinaNet.dc_retinanet.assignment import iou_classification_aware_score, promote_by_score
from net_detr2_projects.DCRetinaNet.dc_retinanet.cl_balanced_nms import cl_balanced_nms
from net_detr2_projects.DCRetinaNet.dc_retinanet.dynamic_coefficient import dynamic_coefficient, normalized_coefficient


def _sigmoid(x):
    return 1 / (1 + math.exp(-x))


def test_dynamic_coefficient_by_hand():
    gt = torch.tensor([[0.0, 0.0, 10.0, 20.0], [0.0, 0.0, 10.0, 10.0]])
    pred = torch.tensor(
        [
            [0.0, 0.0, 10.0, 20.0],  # perfect: sigmoid(0) + tanh(0) = 0.5 -> lambda = 2
            [5.0, 10.0, 15.0, 20.0],  # centre moved by (5, 5) = (0.5 w, 0.5 h); aspect 1 vs 1
        ]
    )
    lam = dynamic_coefficient(pred, gt)
    assert abs(lam[0].item() - 1 / (0.5 + 1e-6)) < 1e-4
    # second: gt (0,0,10,10), pred centre (10,15) vs gt centre (5,5): offset (0.5, 1.0) -> squared 1.25;
    # aspect 10/10 vs 10/10 -> 0
    expected = 1 / (_sigmoid(1.25) + math.tanh(0.0) + 1e-6)
    assert abs(lam[1].item() - expected) < 1e-5
    # aspect ratio difference: gt w/h = 0.5, pred w/h = 2 at the same centre
    lam_aspect = dynamic_coefficient(torch.tensor([[-5.0, 5.0, 15.0, 15.0]]), gt[:1])
    assert abs(lam_aspect.item() - 1 / (0.5 + math.tanh(1.5) + 1e-6)) < 1e-5
    assert ((lam > 0.5) & (lam <= 2.0 + 1e-3)).all()


def test_normalized_coefficient_keeps_total_loss():
    lam = torch.tensor([2.0, 1.0, 0.6])
    loss = torch.tensor([0.3, 1.2, 0.5])
    lam_n = normalized_coefficient(lam, loss)
    scale = loss.sum() / (lam * loss).sum()
    torch.testing.assert_close(lam_n, lam * scale)
    torch.testing.assert_close((lam_n * loss).sum(), loss.sum())
    # zero loss: weights fall back to 1 instead of nan
    assert normalized_coefficient(lam, torch.zeros(3)).tolist() == [1.0, 1.0, 1.0]


def test_iou_classification_aware_score_and_promotion():
    gt = Boxes(torch.tensor([[0.0, 0.0, 10.0, 10.0]]))
    anchors = Boxes(
        torch.tensor([[0.0, 0.0, 10.0, 10.0], [2.0, 2.0, 6.0, 6.0], [5.0, 0.0, 25.0, 10.0], [50.0, 50.0, 60, 60]])
    )
    prob = torch.tensor([[0.1, 0.9, 0.2, 0.99]])
    s = iou_classification_aware_score(gt, anchors, prob, alpha=0.5)
    # intersection / min area: 1, 16/16, 50/100, 0
    torch.testing.assert_close(s, torch.tensor([[0.55, 0.95, 0.35, 0.495]]))
    matched = torch.tensor([0, 0, 0, 0])
    labels = torch.tensor([1, 0, -1, 0])  # IoU labels: anchor 1 has IoU 0.16 (negative), anchor 2 IoU 1/3 (ignored)
    m2, l2 = promote_by_score(matched, labels, s, score_threshold=0.6)
    assert l2.tolist() == [1, 1, -1, 0]  # only the small anchor inside the object with high p^ flips
    # threshold above 1: the plain IoU assignment
    m3, l3 = promote_by_score(matched, labels, s, score_threshold=1.01)
    assert l3.tolist() == labels.tolist() and m3.tolist() == matched.tolist()
    # p^ = 0 with alpha = 1: s = 0, nothing flips
    s0 = iou_classification_aware_score(gt, anchors, torch.zeros(1, 4), alpha=1.0)
    assert promote_by_score(matched, labels, s0, 0.6)[1].tolist() == labels.tolist()


def test_cl_nms_equals_nms_when_centres_coincide():
    g = torch.Generator().manual_seed(0)
    n = 300
    centres = torch.rand(n, 2, generator=g) * 200
    # boxes share centres in groups so each cluster's centres coincide
    centres = centres[torch.randint(0, 40, (n,), generator=g)]
    wh = 10 + torch.rand(n, 2, generator=g) * 2
    boxes = torch.cat([centres - wh / 2, centres + wh / 2], dim=1)
    scores = torch.rand(n, generator=g)
    classes = torch.randint(0, 3, (n,), generator=g)
    keep, kept_scores = cl_balanced_nms(boxes, scores, classes, 0.5)
    ref = batched_nms(boxes, scores, classes, 0.5)
    assert keep.tolist() == ref.tolist()
    torch.testing.assert_close(kept_scores, scores[ref])


def test_cl_nms_picks_centred_box_on_hand_made_cluster():
    boxes = torch.tensor(
        [
            [0.0, 0.0, 10.0, 10.0],  # leader, p 0.9, centre (5, 5)
            [2.0, 0.0, 12.0, 10.0],  # p 0.85, centre (7, 5)
            [1.0, 0.0, 11.0, 10.0],  # p 0.8, centre (6, 5): nearest the consensus
            [100.0, 100.0, 110.0, 110.0],  # its own cluster
        ]
    )
    scores = torch.tensor([0.9, 0.85, 0.8, 0.7])
    logits = torch.tensor([0.0, 0.0, 0.0, 0.0])  # equal weights: consensus centre = mean = (6, 5)
    keep, kept_scores = cl_balanced_nms(boxes, scores, torch.zeros(4, dtype=torch.long), 0.5, logits=logits)
    # dis: box0 1 - 1/7.071 = 0.8586 -> s 1.7586; box1 the same -> 1.7086; box2 dis 1 -> s 1.8
    assert keep.tolist() == [2, 3]
    torch.testing.assert_close(kept_scores, torch.tensor([0.9, 0.7]))
    # with beta = 0 it is plain NMS
    keep0, _ = cl_balanced_nms(boxes, scores, torch.zeros(4, dtype=torch.long), 0.5, beta=0.0, logits=logits)
    assert keep0.tolist() == [0, 3]
    # other classes never join a cluster: box 1 stands alone; the cluster {0, 2} has consensus (5.5, 5),
    # both half a unit from it, so the more confident box 0 wins
    keep_c, _ = cl_balanced_nms(boxes, scores, torch.tensor([0, 1, 0, 0]), 0.5, logits=logits)
    assert keep_c.tolist() == [0, 1, 3]
