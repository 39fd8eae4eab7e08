"""DCRetinaNet inside the model: assignment, DC loss, exact RetinaNet parity with the switches off, every switch
combination, the configs, and CL-balanced NMS as drop-in post-processing of Faster R-CNN."""

from __future__ import annotations

import copy
import itertools
from pathlib import Path

import pytest
import torch

from net_detr2.config import LazyConfig, instantiate
from net_detr2.modeling import RetinaNet
from net_detr2.modeling.meta_arch.retinanet import sigmoid_focal_loss
from net_detr2.modeling.roi_heads import fast_rcnn_inference
from net_detr2.structures import Boxes, Instances
from net_detr2.utils.events import EventStorage
from net_detr2_projects.DCRetinaNet.dc_retinanet import (
    DC_DEFAULTS,
    CLBalancedNMS,
    DCRetinaNet,
    dynamic_coefficient,
    normalized_coefficient,
    use_cl_nms,
    use_dc_retinanet,
)

REPO = Path(__file__).resolve().parents[3]
CONFIGS = REPO / "projects" / "DCRetinaNet" / "configs"
SHAPES_BASELINE = CONFIGS / "shapes" / "retinanet_R18_FPN_baseline.py"


def _load(path):
    return LazyConfig.load(str(path))


def _shapes_model(**switches):
    """The shapes RetinaNet (narrow R18-FPN, 6 classes) as DCRetinaNet with the given switches."""
    cfg = _load(SHAPES_BASELINE)
    if switches:
        use_dc_retinanet(cfg.model, **switches)
    torch.manual_seed(0)
    return instantiate(cfg.model)


def _inputs(with_instances=True):
    g = torch.Generator().manual_seed(0)
    out = []
    for h, w, boxes, cls in [
        (64, 96, [[10.0, 10.0, 40.0, 30.0]], [0]),
        (72, 64, [[5.0, 20.0, 30.0, 55.0], [30, 2, 60, 20]], [2, 5]),
    ]:
        d = {"image": torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8)}
        if with_instances:
            d["instances"] = Instances((h, w), gt_boxes=Boxes(torch.tensor(boxes)), gt_classes=torch.tensor(cls))
        else:
            d.update(height=h // 2, width=w // 2)
        out.append(d)
    return out


def _one_level_logits(num_anchors, num_classes, value):
    return [torch.full((1, num_anchors, num_classes), float(value))]


# ------------------------------------------------------------------------------------------------ assignment
GT = Instances((64, 64), gt_boxes=Boxes(torch.tensor([[0.0, 0.0, 10.0, 20.0]])), gt_classes=torch.tensor([2]))
ANCHORS = [
    Boxes(
        torch.tensor(
            [
                [0.0, 0.0, 10.0, 9.0],  # IoU 0.45 -> ignored by the IoU rule; inside the gt: inter / min area = 1
                [0.0, 0.0, 10.0, 22.0],  # IoU 20/22 -> positive either way
                [50.0, 50.0, 60.0, 60.0],  # no overlap: background; s = alpha * p^ < 0.6 whatever p^
                [2.0, 2.0, 8.0, 8.0],  # IoU 36/200 -> background; inside the gt: inter / min area = 1
            ]
        )
    )
]


def test_iac_assignment_equals_iou_assignment_when_it_cannot_fire():
    model = _shapes_model(iac_assignment=True, dc_loss=False, cl_nms=False)
    plain_labels, plain_boxes = model.label_anchors(ANCHORS, [GT])
    assert plain_labels[0].tolist() == [-1, 2, 6, 6]
    random_logits = [torch.randn(1, 4, 6, generator=torch.Generator().manual_seed(1)) * 5]
    # score threshold above 1: s <= 1 never reaches it
    model.iac_score_threshold = 1.01
    labels, boxes = model.label_anchors_iac(ANCHORS, [GT], random_logits)
    assert torch.equal(labels[0], plain_labels[0]) and torch.equal(boxes[0], plain_boxes[0])
    # alpha = 1 and p^ = 0 (sigmoid(-1e4) == 0): s = 0
    model.iac_score_threshold, model.iac_alpha = 0.6, 1.0
    labels, boxes = model.label_anchors_iac(ANCHORS, [GT], _one_level_logits(4, 6, -1e4))
    assert torch.equal(labels[0], plain_labels[0]) and torch.equal(boxes[0], plain_boxes[0])
    # the default alpha = 0.5 with the prior p^ = 0.01 of a fresh head: 0.5 * 0.01 + 0.5 * 1 < 0.6, no change
    model.iac_alpha = 0.5
    labels, _ = model.label_anchors_iac(ANCHORS, [GT], _one_level_logits(4, 6, torch.logit(torch.tensor(0.01))))
    assert torch.equal(labels[0], plain_labels[0])
    # an image without ground truth: all background, as label_anchors
    empty = Instances((64, 64), gt_boxes=Boxes(torch.zeros(0, 4)), gt_classes=torch.zeros(0, dtype=torch.int64))
    labels, boxes = model.label_anchors_iac(ANCHORS, [empty], _one_level_logits(4, 6, 3.0))
    assert labels[0].tolist() == [6, 6, 6, 6] and boxes[0].abs().sum() == 0


def test_iac_assignment_flips_anchors_inside_the_object_when_p_is_high():
    model = _shapes_model(iac_assignment=True, dc_loss=False, cl_nms=False)
    logits = torch.full((1, 4, 6), -5.0)
    logits[0, :, 2] = torch.logit(torch.tensor(0.9))  # p^ of the gt class (2) is 0.9 everywhere
    # s = 0.45 + 0.5 * inter/min_area: anchors 0 and 3 (inside) 0.95, anchor 2 0.45 stays background.
    # The default reading promotes only the IoU-ignored anchor 0; anchor 3 (IoU 0.18) stays background
    assert model.iac_case_order == "negative_first"
    labels, boxes = model.label_anchors_iac(ANCHORS, [GT], [logits])
    assert labels[0].tolist() == [2, 2, 6, 6]
    torch.testing.assert_close(boxes[0][0], GT.gt_boxes.tensor[0])
    # letting Eq. 5's positive case win promotes anchor 3 too
    model.iac_case_order = "positive_first"
    labels, boxes = model.label_anchors_iac(ANCHORS, [GT], [logits])
    assert labels[0].tolist() == [2, 2, 6, 2]
    torch.testing.assert_close(boxes[0][[0, 3]], GT.gt_boxes.tensor.expand(2, 4))
    # a high probability of another class does not count
    logits = torch.full((1, 4, 6), -5.0)
    logits[0, :, 1] = 5.0
    assert model.label_anchors_iac(ANCHORS, [GT], [logits])[0][0].tolist() == [-1, 2, 6, 6]


# ------------------------------------------------------------------------------------------------ DC loss
def _loss_inputs():
    g = torch.Generator().manual_seed(2)
    anchors = [
        Boxes(
            torch.tensor(
                [
                    [0.0, 0.0, 10.0, 10.0],
                    [20.0, 20.0, 40.0, 30.0],
                    [5.0, 5.0, 25.0, 25.0],
                    [40.0, 40.0, 50.0, 50.0],
                    [0.0, 30.0, 8.0, 50.0],
                ]
            )
        )
    ]
    gt_labels = [torch.tensor([1, 0, 6, -1, 3])]  # three positives, one background, one ignored
    gt_boxes = [
        torch.tensor(
            [
                [0.0, 0.0, 12.0, 10.0],
                [18.0, 22.0, 40.0, 34.0],
                [0.0, 0.0, 1.0, 1.0],
                [0.0, 0.0, 1.0, 1.0],
                [1.0, 28.0, 9.0, 55.0],
            ]
        )
    ]
    logits = [(torch.randn(1, 5, 6, generator=g) * 2).requires_grad_()]
    deltas = [(torch.randn(1, 5, 4, generator=g) * 0.3).requires_grad_()]
    return anchors, logits, gt_labels, deltas, gt_boxes


def _losses_and_grads(model, dc):
    model.dc_loss = dc
    model.loss_normalizer = 100.0
    anchors, logits, gt_labels, deltas, gt_boxes = _loss_inputs()
    losses = model.losses(anchors, logits, gt_labels, deltas, gt_boxes)
    grads = torch.autograd.grad(losses["loss_cls"] + losses["loss_box_reg"], [logits[0], deltas[0]])
    return losses, grads


def test_dc_loss_redistributes_only_the_positives_classification_loss():
    model = _shapes_model(iac_assignment=False, dc_loss=True, cl_nms=False)
    plain, (g_logits, g_deltas) = _losses_and_grads(model, dc=False)
    dc, (g_logits_dc, g_deltas_dc) = _losses_and_grads(model, dc=True)
    # sum(lambda' L) == sum(L): the totals match; the box loss is untouched
    torch.testing.assert_close(dc["loss_cls"], plain["loss_cls"], rtol=1e-6, atol=0)
    assert torch.equal(dc["loss_box_reg"], plain["loss_box_reg"])
    assert torch.equal(g_deltas_dc, g_deltas)  # lambda' is detached: no gradient into the box branch
    # negatives (anchor 2) and ignored (anchor 3) get exactly the plain gradient
    assert torch.equal(g_logits_dc[0, 2], g_logits[0, 2]) and g_logits_dc[0, 3].abs().sum() == 0
    # positives: plain gradient x lambda', lambda' from the decoded boxes and the per-anchor focal losses
    anchors, logits, gt_labels, deltas, gt_boxes = _loss_inputs()
    pos = torch.tensor([0, 1, 4])
    pred = model.box2box_transform.apply_deltas(deltas[0][0, pos].detach(), anchors[0].tensor[pos])
    lam = dynamic_coefficient(pred, gt_boxes[0][pos])
    target = torch.nn.functional.one_hot(gt_labels[0][pos], 6).float()
    per_anchor = sigmoid_focal_loss(logits[0][0, pos].detach(), target, 0.25, 2.0).sum(dim=1)
    lam_n = normalized_coefficient(lam, per_anchor)
    assert not torch.allclose(lam_n, torch.ones(3))  # the test would not see a redistribution otherwise
    torch.testing.assert_close(g_logits_dc[0, pos], g_logits[0, pos] * lam_n[:, None], rtol=1e-5, atol=1e-8)


def test_dc_warmup_blends_lambda_in_and_keeps_the_total():
    model = _shapes_model(iac_assignment=False, dc_loss=True, cl_nms=False)
    anchors, logits, gt_labels, deltas, gt_boxes = _loss_inputs()
    valid = gt_labels[0] >= 0
    target = torch.nn.functional.one_hot(gt_labels[0][valid], 7)[:, :-1].float()
    per_anchor = sigmoid_focal_loss(logits[0][0][valid].detach(), target, 0.25, 2.0).sum(dim=1)
    args = (per_anchor, torch.stack(gt_labels), anchors, [d.detach() for d in deltas], gt_boxes)
    full = model.classification_loss_weights(*args)
    model.dc_warmup_iters = 100
    for iteration, share in [(0, 0.0), (50, 0.5), (100, 1.0), (300, 1.0)]:
        with EventStorage(start_iter=iteration):
            weights = model.classification_loss_weights(*args)
        torch.testing.assert_close(weights, 1 + share * (full - 1))
        torch.testing.assert_close((weights * per_anchor).sum(), per_anchor.sum())  # Eq. 2's total, at any share
    model.eval()  # outside training the warm-up is over
    torch.testing.assert_close(model.classification_loss_weights(*args), full)
    model.train()
    with pytest.raises(RuntimeError, match="dc_warmup_iters=100 needs the training iteration"):
        model.classification_loss_weights(*args)


def test_log_statistics_records_every_reading_and_lambda_without_changing_training():
    model = _shapes_model(iac_assignment=True, dc_loss=True, cl_nms=False).train()
    quiet = copy.deepcopy(model)
    quiet.log_statistics = 0
    assert model.log_statistics == 10  # the configs' default
    for iteration, logged in [(20, True), (25, False)]:
        with EventStorage(start_iter=iteration) as storage:
            losses = model(_inputs())
            reference = quiet(_inputs())
        for k in losses:
            assert torch.equal(losses[k], reference[k]), k
        names = set(storage.histories())
        expected = {
            f"iac.{o}.{v}/{stat}"
            for o in ("positive_first", "negative_first")
            for v in ("min_area", "iou")
            for stat in ("promoted_per_gt", "most_for_one_gt")
        }
        expected |= {"dc/lambda_mean", "dc/lambda_min", "dc/lambda_max", "dc/lambda_norm_mean", "dc/lambda_norm_std"}
        assert expected <= names if logged else not names
    # a fresh head (p^ = 0.01) promotes nothing under any reading; lambda in (0.5, 2], lambda' has mean ~1
    with EventStorage(start_iter=0) as storage:
        model(_inputs())
    latest = {k: v for k, (v, _) in storage.latest().items()}
    assert all(
        latest[f"iac.{o}.{v}/promoted_per_gt"] == 0
        for o in ("positive_first", "negative_first")
        for v in ("min_area", "iou")
    )
    assert 0.5 < latest["dc/lambda_min"] <= latest["dc/lambda_mean"] <= latest["dc/lambda_max"] <= 2.0


# ------------------------------------------------------------------------------------------------ parity
def test_all_switches_off_is_retinanet_bit_for_bit():
    cfg = _load(SHAPES_BASELINE)
    assert cfg.model._target_ is DCRetinaNet
    torch.manual_seed(0)
    dc = instantiate(cfg.model)
    reference = _load(REPO / "configs" / "shapes" / "retinanet_R18_FPN.py")
    assert reference.model._target_ is RetinaNet
    torch.manual_seed(1)
    base = instantiate(reference.model)
    base.load_state_dict(dc.state_dict())
    for model in (dc, base):
        model.train()
    losses = [m(_inputs()) for m in (dc, base)]
    assert set(losses[0]) == {"loss_cls", "loss_box_reg"}
    for k in losses[0]:
        assert torch.equal(losses[0][k], losses[1][k]), k
    grads = []
    for m, loss in zip((dc, base), losses):
        sum(loss.values()).backward()
        grads.append({n: p.grad for n, p in m.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and all(torch.equal(grads[0][n], grads[1][n]) for n in grads[0])
    outputs = []
    for m in (dc, base):
        m.eval()
        m.test_score_thresh = 0.0  # a fresh head predicts p = 0.01 < the default 0.05
        with torch.no_grad():
            outputs.append(m(_inputs(with_instances=False)))
    for a, b in zip(*outputs):
        a, b = a["instances"], b["instances"]
        assert len(a) > 0
        assert torch.equal(a.pred_boxes.tensor, b.pred_boxes.tensor)
        assert torch.equal(a.scores, b.scores) and torch.equal(a.pred_classes, b.pred_classes)


@pytest.mark.parametrize("switches", list(itertools.product([False, True], repeat=3)))
def test_every_switch_combination_trains_and_infers(switches):
    iac, dc, cl = switches
    model = _shapes_model(iac_assignment=iac, dc_loss=dc, cl_nms=cl)
    assert (model.iac_assignment, model.dc_loss, model.cl_nms) == switches
    model.train()
    losses = model(_inputs())
    assert set(losses) == {"loss_cls", "loss_box_reg"} and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert model.head.cls_score.weight.grad.abs().sum() > 0 and model.head.bbox_pred.weight.grad.abs().sum() > 0
    model.eval()
    model.test_score_thresh = 0.0  # a fresh head predicts p = 0.01 < the default 0.05
    with torch.no_grad():
        out = model(_inputs(with_instances=False))
    for o, (h, w) in zip(out, [(32, 48), (36, 32)]):
        inst = o["instances"]
        assert inst.image_size == (h, w) and 0 < len(inst) <= model.max_detections_per_image
        assert (inst.scores[:-1] >= inst.scores[1:]).all()


# ------------------------------------------------------------------------------------------------ configs
SHAPES_ROWS = {
    "retinanet_R18_FPN_baseline.py": (False, False, False),
    "dc_retinanet_R18_FPN_iac.py": (True, False, False),
    "dc_retinanet_R18_FPN_dc.py": (False, True, False),
    "dc_retinanet_R18_FPN_iac_dc.py": (True, True, False),
    "dc_retinanet_R18_FPN_iac_dc_cl.py": (True, True, True),
}
FULL_SIZE = {
    "COCO/retinanet_R50_FPN_1x_baseline.py": ((False, False, False), 80, 50),
    "COCO/dc_retinanet_R50_FPN_1x_iac.py": ((True, False, False), 80, 50),
    "COCO/dc_retinanet_R50_FPN_1x_iac_dc.py": ((True, True, False), 80, 50),
    "COCO/dc_retinanet_R50_FPN_1x_iac_dc_cl.py": ((True, True, True), 80, 50),
    "COCO/dc_retinanet_R101_FPN_1x.py": ((True, True, True), 80, 101),
    "COCO/dc_retinanet_X101_32x4d_FPN_1x.py": ((True, True, True), 80, 101),
    "VOC/retinanet_R50_FPN_voc0712_baseline.py": ((False, False, False), 20, 50),
    "VOC/dc_retinanet_R50_FPN_voc0712_iac.py": ((True, False, False), 20, 50),
    "VOC/dc_retinanet_R50_FPN_voc0712_iac_dc.py": ((True, True, False), 20, 50),
    "VOC/dc_retinanet_R50_FPN_voc0712_iac_dc_cl.py": ((True, True, True), 20, 50),
}


def test_every_config_is_listed_here():
    found = {str(p.relative_to(CONFIGS)) for p in CONFIGS.rglob("*.py")}
    listed = {f"shapes/{n}" for n in SHAPES_ROWS} | set(FULL_SIZE) | {"drop_in/faster_rcnn_R50_FPN_1x_cl_nms.py"}
    # the Aquarium config is built and stepped on photos by tests/test_aquarium.py
    listed |= {"aquarium/dc_retinanet_R18_FPN_aquarium.py"}
    assert found == listed


def test_aquarium_config_is_the_full_method_on_the_aquarium_retinanet():
    cfg = _load(CONFIGS / "aquarium" / "dc_retinanet_R18_FPN_aquarium.py")
    base = _load(REPO / "configs" / "aquarium" / "retinanet_R18_FPN.py")
    assert cfg.model._target_ is DCRetinaNet
    assert (cfg.model.iac_assignment, cfg.model.dc_loss, cfg.model.cl_nms) == (True, True, True)
    assert cfg.model.iac_score_threshold == 0.8
    assert cfg.train.max_iter == base.train.max_iter and cfg.optimizer == base.optimizer
    assert cfg.dataloader.train.dataset.names == base.dataloader.train.dataset.names == "aquarium_train"


@pytest.mark.parametrize("name", sorted(SHAPES_ROWS))
def test_shapes_configs_build_with_their_switches(name):
    cfg = _load(CONFIGS / "shapes" / name)
    model = instantiate(cfg.model)
    assert isinstance(model, DCRetinaNet)
    assert (model.iac_assignment, model.dc_loss, model.cl_nms) == SHAPES_ROWS[name]
    assert (model.iac_alpha, model.iac_score_threshold, model.cl_nms_beta) == (0.5, 0.6, 1.0)
    heads = _load(REPO / "configs" / "shapes" / "retinanet_R18_FPN.py")
    assert cfg.train.max_iter == heads.train.max_iter
    assert cfg.optimizer == heads.optimizer
    assert cfg.train.output_dir.startswith("./output/dc_retinanet/shapes_")
    instantiate(cfg.lr_multiplier)  # the schedule fits max_iter


@pytest.mark.parametrize("name", sorted(FULL_SIZE))
def test_full_size_configs_load(name):
    switches, num_classes, depth = FULL_SIZE[name]
    cfg = _load(CONFIGS / name)
    assert cfg.model._target_ is DCRetinaNet
    assert (cfg.model.iac_assignment, cfg.model.dc_loss, cfg.model.cl_nms) == switches
    assert cfg.model.num_classes == cfg.model.head.num_classes == num_classes
    assert cfg.model.backbone.bottom_up.depth == depth
    instantiate(cfg.lr_multiplier)


def test_coco_baseline_matches_the_heads_retinanet_recipe():
    ours = LazyConfig.to_plain(_load(CONFIGS / "COCO" / "retinanet_R50_FPN_1x_baseline.py"))
    theirs = LazyConfig.to_plain(_load(REPO / "configs" / "COCO-Detection" / "retinanet_R_50_FPN_1x.py"))
    for key in ("iac_assignment", "dc_loss", "cl_nms", *DC_DEFAULTS):
        ours["model"].pop(key)
    ours["model"].pop("_target_"), theirs["model"].pop("_target_")
    ours["train"].pop("output_dir"), theirs["train"].pop("output_dir")
    assert ours == theirs


def test_x101_config_builds_a_grouped_backbone():
    cfg = _load(CONFIGS / "COCO" / "dc_retinanet_X101_32x4d_FPN_1x.py")
    bottom_up = instantiate(cfg.model.backbone.bottom_up)
    conv2 = bottom_up.res2[0].conv2
    assert conv2.groups == 32 and conv2.out_channels == 128  # 32 groups x 4 channels
    assert len(bottom_up.res4) == 23  # ResNet-101


def test_use_dc_retinanet_rejects_unknown_option():
    cfg = _load(SHAPES_BASELINE)
    with pytest.raises(KeyError, match=r"unknown option\(s\) \['alpha'\]"):
        use_dc_retinanet(cfg.model, iac_assignment=True, dc_loss=True, cl_nms=True, alpha=0.3)


# ------------------------------------------------------------------------------------------------ drop-in NMS
def test_fast_rcnn_inference_with_cl_nms_hook_hand_case():
    # one class, three overlapping boxes: greedy keeps the most confident (off-centre) one; CL-balanced NMS keeps
    # the box at the consensus centre, reported with the cluster's highest score
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [2.0, 0.0, 12.0, 10.0], [1.0, 0.0, 11.0, 10.0]])
    scores = torch.tensor([[0.9, 0.05], [0.89, 0.05], [0.88, 0.05]])  # [R, K+1], K = 1
    (plain,), (kept,) = fast_rcnn_inference([boxes], [scores], [(20, 20)], 0.1, 0.5, 10)
    assert kept.tolist() == [0] and plain.scores.tolist() == pytest.approx([0.9])
    (cl,), (kept,) = fast_rcnn_inference([boxes], [scores], [(20, 20)], 0.1, 0.5, 10, nms=CLBalancedNMS(1.0))
    assert kept.tolist() == [2] and cl.scores.tolist() == pytest.approx([0.9])
    torch.testing.assert_close(cl.pred_boxes.tensor, boxes[2:3])


def _frcnn():
    cfg = _load(REPO / "configs" / "shapes" / "faster_rcnn_R18_FPN.py")
    torch.manual_seed(0)
    model = instantiate(cfg.model)
    model.roi_heads.box_predictor.test_score_thresh = 0.05
    return model.eval()


def test_faster_rcnn_with_cl_nms_beta0_gives_the_same_detections():
    model = _frcnn()
    with torch.no_grad():
        reference = model(_inputs(with_instances=False))
    cl_model = use_cl_nms(copy.deepcopy(model), beta=0.0)
    assert isinstance(cl_model.roi_heads.box_predictor.test_nms, CLBalancedNMS)
    calls = []
    inner = cl_model.roi_heads.box_predictor.test_nms
    cl_model.roi_heads.box_predictor.test_nms = lambda *a: calls.append(len(a[0])) or inner(*a)
    with torch.no_grad():
        out = cl_model(_inputs(with_instances=False))
    assert len(calls) == 2 and min(calls) > 10  # the hook ran on every image, on many boxes
    for a, b in zip(out, reference):
        a, b = a["instances"], b["instances"]
        assert len(a) > 0
        assert torch.equal(a.pred_boxes.tensor, b.pred_boxes.tensor)
        assert torch.equal(a.scores, b.scores) and torch.equal(a.pred_classes, b.pred_classes)


def test_use_cl_nms_on_retinanet_and_error():
    model = _shapes_model(iac_assignment=False, dc_loss=False, cl_nms=False)
    assert use_cl_nms(model, beta=0.5) is model and model.cl_nms and model.cl_nms_beta == 0.5
    plain = instantiate(_load(REPO / "configs" / "shapes" / "retinanet_R18_FPN.py").model)
    with pytest.raises(TypeError, match="RetinaNet has no module with a `test_nms` hook"):
        use_cl_nms(plain)


def test_drop_in_config_sets_the_hook():
    cfg = _load(CONFIGS / "drop_in" / "faster_rcnn_R50_FPN_1x_cl_nms.py")
    predictor = cfg.model.roi_heads.box_predictor
    assert predictor.test_nms._target_ is CLBalancedNMS and predictor.test_nms.beta == 1.0
    nms = instantiate(predictor.test_nms)
    assert isinstance(nms, CLBalancedNMS) and nms.beta == 1.0
