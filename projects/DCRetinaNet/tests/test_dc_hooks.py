"""DC-RetinaNet's components are RetinaNet's public extension points: the IoU-classification-aware assignment
is an anchor matcher any RetinaNet takes, and the switch only swaps that matcher."""

from __future__ import annotations

from pathlib import Path

import torch

from net_detr2.config import LazyConfig, instantiate
from net_detr2.modeling import RetinaNet
from net_detr2.structures import Boxes, Instances
from net_detr2_projects.DCRetinaNet.dc_retinanet import IoUClassificationAwareMatcher, use_dc_retinanet

REPO = Path(__file__).resolve().parents[3]


def _inputs():
    g = torch.Generator().manual_seed(0)
    out = []
    for h, w, boxes, cls in [(64, 96, [[10.0, 10.0, 40.0, 30.0]], [0]), (72, 64, [[5.0, 20.0, 30.0, 55.0]], [2])]:
        inst = Instances((h, w), gt_boxes=Boxes(torch.tensor(boxes)), gt_classes=torch.tensor(cls))
        out.append({"image": torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8), "instances": inst})
    return out


def test_retinanet_with_the_iac_matcher_trains_as_dc_retinanet_with_iac():
    cfg = LazyConfig.load(str(REPO / "configs" / "shapes" / "retinanet_R18_FPN.py"))
    torch.manual_seed(0)
    plain = instantiate(cfg.model)
    assert type(plain) is RetinaNet
    use_dc_retinanet(cfg.model, iac_assignment=True, dc_loss=False, cl_nms=False, iac_score_threshold=0.3)
    dc = instantiate(cfg.model)
    dc.load_state_dict(plain.state_dict())
    assert isinstance(dc.anchor_matcher, IoUClassificationAwareMatcher) and dc.iac_assignment
    iou_losses = plain(_inputs())
    plain.anchor_matcher = IoUClassificationAwareMatcher(plain.anchor_matcher, alpha=0.5, score_threshold=0.3)
    plain.loss_normalizer = 100.0  # the EMA restarts, as in the fresh `dc`
    losses = [m(_inputs()) for m in (plain, dc)]
    assert losses[0].keys() == losses[1].keys() == iou_losses.keys()
    assert all(torch.equal(losses[0][k], losses[1][k]) for k in losses[0])
    # a low threshold with a fresh head promotes anchors: the assignment rule did change the loss
    assert not torch.equal(losses[0]["loss_box_reg"], iou_losses["loss_box_reg"])
    # the switch swaps the matcher, keeping its settings
    dc.iac_assignment = False
    assert dc.anchor_matcher is dc.iac_matcher.iou_matcher and dc.iac_score_threshold == 0.3
