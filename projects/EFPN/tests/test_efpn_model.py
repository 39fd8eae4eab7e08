"""EFPN Faster R-CNN end to end on a tiny model: routing, distillation, the stage schedule, outputs."""

from __future__ import annotations

import pytest
import torch

from net_detr2.modeling import ROIPooler
from net_detr2.solver import freeze_parameters
from net_detr2.structures import Boxes, Instances
from net_detr2_projects.EFPN.efpn import (
    STAGE2_TRAINABLE_PARAMS,
    STAGE3_TRAINABLE_PARAMS,
    boxes_to_feature_mask,
    fbb_loss,
    ohem_select,
    small_roi_mask,
)

from ._efpn_tiny import NUM_CLASSES, WIDTH, tiny_efpn_rcnn, tiny_inputs


def _snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _train_steps(model, patterns, steps=2, lr=0.05):
    freeze_parameters(model, patterns)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9)
    model.train()
    for i in range(steps):
        losses = model(tiny_inputs(seed=i))
        total = sum(losses.values())
        opt.zero_grad()
        total.backward()
        opt.step()
    return losses


def _changed(before, after):
    return {k for k in before if not torch.equal(before[k], after[k])}


def test_inference_output_contract():
    model = tiny_efpn_rcnn().eval()
    inputs = tiny_inputs()
    inputs[1]["height"], inputs[1]["width"] = 96, 128  # ask for a 2x output frame
    with torch.no_grad():
        out = model([{k: v for k, v in d.items() if k in ("image", "height", "width")} for d in inputs])
    assert len(out) == 2
    for d, (h, w) in zip(out, [(64, 64), (96, 128)]):
        assert set(d) == {"instances"}
        inst = d["instances"]
        assert isinstance(inst, Instances) and inst.image_size == (h, w)
        assert isinstance(inst.pred_boxes, Boxes) and inst.scores.dtype == torch.float32
        assert inst.pred_classes.dtype == torch.int64
        assert 0 < len(inst) <= 100
        assert set(inst.get_fields()) == {"pred_boxes", "scores", "pred_classes"}
        b = inst.pred_boxes.tensor
        assert (b[:, 0] >= 0).all() and (b[:, 2] <= w).all() and (b[:, 3] <= h).all()
        assert ((inst.pred_classes >= 0) & (inst.pred_classes < NUM_CLASSES)).all()


def _proposals():
    p = Instances((64, 64))
    # sqrt(area): 10, 23.9 (small, < 24) and 24, 40 (large)
    p.proposal_boxes = Boxes(
        torch.tensor(
            [[2.0, 2.0, 12.0, 12.0], [30.0, 30.0, 53.9, 53.9], [0.0, 0.0, 24.0, 24.0], [10.0, 10.0, 50.0, 50.0]]
        )
    )
    p.objectness_logits = torch.zeros(4)
    return [p]


def test_small_roi_mask_uses_sqrt_area():
    boxes = Boxes(torch.tensor([[0.0, 0.0, 10.0, 200.0], [0.0, 0.0, 111.0, 112.0], [0.0, 0.0, 112.0, 112.0]]))
    # 10x200 is thin but sqrt(2000) = 44.7 < 112; 112x112 is not small.
    assert small_roi_mask(boxes, 112.0).tolist() == [True, True, False]


@pytest.mark.parametrize("duplicate", [False, True])
def test_small_rois_go_to_p2_prime_and_its_head(duplicate):
    model = tiny_efpn_rcnn(roi_kwargs=dict(duplicate_small_rois=duplicate)).eval()
    heads = model.roi_heads
    seen = {}

    def record(name, fn):
        def hook(module, inputs, output):
            seen.setdefault(name, fn(inputs))  # returns None: the output stays untouched

        return hook

    hooks = [
        heads.p2_box_head.register_forward_hook(record("p2_head", lambda i: i[0].shape[0])),
        heads.box_head.register_forward_hook(record("base_head", lambda i: i[0].shape[0])),
        heads.p2_prime_pooler.register_forward_hook(record("p2_pooler", lambda i: (i[0], i[1]))),
        heads.box_pooler.register_forward_hook(record("base_pooler", lambda i: i[1])),
    ]
    images = model.preprocess_image(tiny_inputs()[:1])
    with torch.no_grad():
        features = model.backbone(images.tensor)
        heads(images, features, _proposals())
    for h in hooks:
        h.remove()
    feats, boxes = seen["p2_pooler"]
    assert len(feats) == 1 and feats[0] is features["p2_prime"]
    assert boxes[0].tensor.tolist() == _proposals()[0].proposal_boxes.tensor[:2].tolist()
    assert seen["p2_head"] == 2
    expected_base = [0, 1, 2, 3] if duplicate else [2, 3]
    assert seen["base_pooler"][0].tensor.tolist() == _proposals()[0].proposal_boxes.tensor[expected_base].tolist()
    assert seen["base_head"] == len(expected_base)


def test_detections_of_both_heads_are_merged():
    model = tiny_efpn_rcnn().eval()
    heads = model.roi_heads
    with torch.no_grad():
        # Zero box deltas; the P2' head always says class 2, the base head class 1.
        for predictor, cls in [(heads.p2_box_predictor, 2), (heads.box_predictor, 1)]:
            predictor.cls_score.weight.zero_()
            predictor.bbox_pred.weight.zero_()
            predictor.bbox_pred.bias.zero_()
            predictor.cls_score.bias.copy_(torch.full((NUM_CLASSES + 1,), -10.0))
            predictor.cls_score.bias[cls] = 10.0
        images = model.preprocess_image(tiny_inputs()[:1])
        features = model.backbone(images.tensor)
        heads.box_predictor.test_score_thresh = 0.5
        (inst,), _ = heads(images, features, _proposals())
    got = sorted(zip(inst.pred_classes.tolist(), inst.pred_boxes.tensor.tolist()), key=lambda t: (t[0], t[1][0]))
    boxes = _proposals()[0].proposal_boxes.tensor
    expected = sorted(
        [(2, boxes[0].tolist()), (2, boxes[1].tolist()), (1, boxes[2].tolist()), (1, boxes[3].tolist())],
        key=lambda t: (t[0], t[1][0]),
    )
    assert [c for c, _ in got] == [c for c, _ in expected]
    torch.testing.assert_close(torch.tensor([b for _, b in got]), torch.tensor([b for _, b in expected]))


def test_distillation_losses_match_hand_computation():
    model = tiny_efpn_rcnn(distillation=True, detection_losses=False).train()
    inputs = tiny_inputs()
    losses = model(inputs)
    assert set(losses) == {"loss_distill_p2", "loss_distill_p3"}
    with torch.no_grad():
        model.eval()
        student_images = model.preprocess_image(inputs)
        student = model.backbone(student_images.tensor)
        big = model.preprocess_image(inputs, key="image_2x").tensor
        assert big.shape[-2:] == (128, 128) and student_images.tensor.shape[-2:] == (64, 64)
        teacher, _ = model.backbone.forward_base(big)
    boxes = [d["instances"].gt_boxes.tensor for d in inputs]
    assert teacher["p2"].shape == student["p2_prime"].shape == (2, WIDTH, 32, 32)
    assert teacher["p3"].shape == student["p3_prime"].shape == (2, WIDTH, 16, 16)
    exp_p2 = fbb_loss(student["p2_prime"], teacher["p2"], boxes_to_feature_mask(boxes, 2, (32, 32)), 1.0)
    exp_p3 = fbb_loss(student["p3_prime"], teacher["p3"], boxes_to_feature_mask(boxes, 4, (16, 16)), 1.0)
    torch.testing.assert_close(losses["loss_distill_p2"], exp_p2)
    torch.testing.assert_close(losses["loss_distill_p3"], exp_p3)
    # Table IV switches: global-only, and no loss on the FTT output.
    model = tiny_efpn_rcnn(distillation=True, detection_losses=False, fbb_lambda=0.0, distill_p3=False).train()
    losses = model(inputs)
    assert set(losses) == {"loss_distill_p2"}
    torch.testing.assert_close(losses["loss_distill_p2"], fbb_loss(student["p2_prime"], teacher["p2"]))


def test_distillation_needs_the_2x_image():
    model = tiny_efpn_rcnn(distillation=True, detection_losses=False).train()
    with pytest.raises(KeyError, match="image_2x"):
        model(tiny_inputs(with_2x=False))
    bad = tiny_inputs()
    bad[0]["image_2x"] = bad[0]["image_2x"][:, :-2]
    with pytest.raises(ValueError, match="expected exactly twice"):
        model(bad)


def test_teacher_runs_in_eval_mode_without_grad():
    model = tiny_efpn_rcnn(distillation=True, detection_losses=False).train()
    modes = []

    def hook(module, inputs, output):
        modes.append((module.training, output.requires_grad))

    model.backbone.fpn_output2.register_forward_hook(hook)
    model(tiny_inputs())
    # student pass first (train mode, with grad), then the teacher's (eval mode, no grad)
    assert modes == [(True, True), (False, False)]
    assert all(m.training for m in model.modules())


def test_stage2_trains_only_the_extension():
    model = tiny_efpn_rcnn(distillation=True, detection_losses=False)
    before = _snapshot(model)
    losses = _train_steps(model, STAGE2_TRAINABLE_PARAMS)
    assert all(torch.isfinite(v) for v in losses.values())
    changed = _changed(before, _snapshot(model))
    extension = {
        k for k in before if k.startswith(("backbone.c2_prime_lateral.", "backbone.ftt.", "backbone.p2_prime_output."))
    }
    assert extension and changed == extension


def test_stage3_trains_only_the_p2_head_with_ohem():
    model = tiny_efpn_rcnn(
        train_rpn=False, roi_kwargs=dict(train_base_head=False, p2_ohem=True, ohem_batch_size_per_image=16)
    )
    before = _snapshot(model)
    losses = _train_steps(model, STAGE3_TRAINABLE_PARAMS)
    assert set(losses) == {"loss_cls_p2", "loss_box_reg_p2"}
    changed = _changed(before, _snapshot(model))
    p2_head = {k for k in before if k.startswith(("roi_heads.p2_box_head.", "roi_heads.p2_box_predictor."))}
    assert p2_head and changed == p2_head


def test_ohem_selection_hand_case():
    cls = torch.tensor([0.1, 0.9, 0.3, 2.0, 0.5, 0.05, 0.7, 1.5])
    box = torch.tensor([0.5, 0.0, 0.9, 0.0, 0.0, 0.0, 0.0, 0.0])
    fg = torch.tensor([True, False, True, False, False, True, False, False])
    # batch 4, 25% -> 1 positive: fg losses 0.6, 1.2, 0.05 -> index 2; then 3 negatives by cls: 3, 7, 1.
    assert ohem_select(cls, box, fg, 4, 0.25).nonzero().flatten().tolist() == [1, 2, 3, 7]
    # Fewer positives than allowed: negatives fill the rest.
    assert ohem_select(cls, box, torch.zeros(8, dtype=torch.bool), 3, 0.25).nonzero().flatten().tolist() == [1, 3, 7]


def test_ohem_labels_every_proposal_and_handles_images_without_gt():
    model = tiny_efpn_rcnn(roi_kwargs=dict(p2_ohem=True)).train()
    heads = model.roi_heads
    targets = [
        tiny_inputs()[0]["instances"],
        Instances((64, 64), gt_boxes=Boxes(torch.zeros(0, 4)), gt_classes=torch.zeros(0, dtype=torch.int64)),
    ]
    props = _proposals() + _proposals()
    labelled = heads.label_all_proposals(props, targets)
    assert len(labelled[0]) == 4 + 2 and len(labelled[1]) == 4  # + the appended GT boxes
    assert (labelled[1].gt_classes == NUM_CLASSES).all()
    assert labelled[0].gt_classes[-2:].tolist() == [0, 2]


def test_p2_head_initialised_from_base_head_on_load():
    model = tiny_efpn_rcnn()
    base_sd = {k: v for k, v in model.state_dict().items() if ".p2_box_" not in k}
    with torch.no_grad():
        for k in base_sd:
            if k.startswith("roi_heads.box_"):
                base_sd[k] = torch.randn_like(base_sd[k])
    result = model.load_state_dict(base_sd, strict=False)
    assert result.missing_keys == [] and result.unexpected_keys == []
    heads = model.roi_heads
    for a, b in [(heads.p2_box_head, heads.box_head), (heads.p2_box_predictor, heads.box_predictor)]:
        for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
            assert ka == kb and torch.equal(va, vb) and va.data_ptr() != vb.data_ptr()
    # A state dict that has the P2' head (a stage-2/3 checkpoint) keeps its own values.
    full = _snapshot(model)
    full["roi_heads.p2_box_predictor.cls_score.bias"] = torch.full((NUM_CLASSES + 1,), 3.0)
    model.load_state_dict(full)
    assert (heads.p2_box_predictor.cls_score.bias == 3.0).all()
    assert not (heads.box_predictor.cls_score.bias == 3.0).all()


def test_teacher_p2_as_the_extended_level_table3_oracle():
    """FPN-1x + P2-2x: P2' is the teacher's P2 on the 2x image, in training (stage-3 losses) and at test."""
    model = tiny_efpn_rcnn(teacher_outputs={"p2": "p2_prime"}).eval()
    inputs = tiny_inputs()
    with torch.no_grad():
        images = model.preprocess_image(inputs)
        features = model.extract_features(inputs, images)
        teacher, _ = model.backbone.forward_base(model.preprocess_image(inputs, key="image_2x").tensor)
        plain = model.backbone(images.tensor)
    torch.testing.assert_close(features["p2_prime"], teacher["p2"])
    assert not torch.allclose(plain["p2_prime"], teacher["p2"])
    torch.testing.assert_close(features["p3_prime"], plain["p3_prime"])  # only the named map is replaced
    with torch.no_grad():
        out = model(inputs)
    assert len(out) == 2 and all(len(o["instances"]) > 0 for o in out)
    with pytest.raises(KeyError, match="image_2x"):
        model(tiny_inputs(with_2x=False))
    with pytest.raises(ValueError, match="distil the teacher into itself"):
        tiny_efpn_rcnn(teacher_outputs={"p2": "p2_prime"}, distillation=True)
    with pytest.raises(ValueError, match="p4"):
        tiny_efpn_rcnn(teacher_outputs={"p4": "p4_2x"})


@pytest.mark.parametrize("layer, stride", [("p3_prime", 4), ("p3", 8), ("p3_2x", 4)])
def test_detection_on_a_single_layer_table5(layer, stride):
    """Every RoI pooled from one map (P3, P3', the teacher's P3) through the base head."""
    pooler = ROIPooler(7, (1.0 / stride,), 0, "ROIAlignV2")
    teacher = {"teacher_outputs": {"p3": "p3_2x"}} if layer == "p3_2x" else {}
    kwargs = dict(detection_layer=layer, detection_layer_pooler=pooler)
    model = tiny_efpn_rcnn(roi_kwargs=kwargs, **teacher).eval()
    heads = model.roi_heads
    inputs = tiny_inputs()[:1]
    with torch.no_grad():
        images = model.preprocess_image(inputs)
        features = model.extract_features(inputs, images)
        (inst,), _ = heads(images, features, _proposals())
        boxes = _proposals()[0].proposal_boxes
        scores, deltas = heads.box_predictor(heads.box_head(pooler([features[layer]], [boxes])))
    (expected,), _ = heads.box_predictor.inference((scores, deltas), _proposals())
    assert len(inst) == len(expected) > 0
    torch.testing.assert_close(inst.scores, expected.scores)
    torch.testing.assert_close(inst.pred_boxes.tensor, expected.pred_boxes.tensor)
    heads.detection_layer_pooler = ROIPooler(7, (1.0 / (2 * stride),), 0, "ROIAlignV2")  # the wrong scale
    with torch.no_grad(), pytest.raises(ValueError, match="pools at"):
        heads(images, features, _proposals())
    with pytest.raises(RuntimeError, match="inference-only"):
        heads.train()(images, features, _proposals(), [inputs[0]["instances"]])
