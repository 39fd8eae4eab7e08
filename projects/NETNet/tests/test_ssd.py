"""SSD core: default boxes, matching, multibox loss (hand-computed), VGG16 backbone and the meta-architecture."""

import math

import pytest
import torch
import torch.nn.functional as F

from net_detr2.modeling.backbone import VGG16
from net_detr2.modeling.meta_arch.ssd import (
    SSD,
    DefaultBoxGenerator,
    SSDBackbone,
    SSDHead,
    match_default_boxes,
    multibox_loss,
    ssd_default_box_sizes,
    ssd_extra_layers,
)
from net_detr2.modeling.registry import BACKBONE_REGISTRY, META_ARCH_REGISTRY
from net_detr2.structures import Boxes, Instances

SHAPES_300 = [(38, 38), (19, 19), (10, 10), (5, 5), (3, 3), (1, 1)]
SHAPES_512 = [(64, 64), (32, 32), (16, 16), (8, 8), (4, 4), (2, 2), (1, 1)]


# ----------------------------------------------------------------------------- default boxes
def test_default_box_counts():
    for ds in ("coco", "voc"):
        assert DefaultBoxGenerator(**ssd_default_box_sizes(300, ds))(SHAPES_300, (300, 300)).shape == (8732, 4)
        assert DefaultBoxGenerator(**ssd_default_box_sizes(512, ds))(SHAPES_512, (512, 512)).shape == (24564, 4)
    assert DefaultBoxGenerator(**ssd_default_box_sizes(300, "coco")).num_anchors == [4, 6, 6, 6, 4, 4]


def test_default_boxes_hand_checked_voc300():
    gen = DefaultBoxGenerator(**ssd_default_box_sizes(300, "voc"))
    boxes = gen(SHAPES_300, (300, 300))
    s = math.sqrt(30 * 60) / 2  # 21.213
    r = math.sqrt(2)
    # First location of level 0: centre (4, 4); min square 30, sqrt(30*60) square, ratio 2 and 1/2, clipped.
    expected0 = torch.tensor(
        [
            [0, 0, 19, 19],
            [0, 0, 4 + s, 4 + s],
            [0, 0, 4 + 15 * r, 4 + 15 / r],
            [0, 0, 4 + 15 / r, 4 + 15 * r],
        ]
    )
    torch.testing.assert_close(boxes[:4], expected0.float())
    # Second location of level 0 (row 0, column 1): centre (12, 4).
    torch.testing.assert_close(boxes[4], torch.tensor([0.0, 0.0, 27.0, 19.0]))
    # Level 1 starts after 38*38*4 boxes: centre (8, 8), min 60.
    torch.testing.assert_close(boxes[5776], torch.tensor([0.0, 0.0, 38.0, 38.0]))
    # The single location of the last level: centre (150, 150), min 264, max 315, ratio 2 (clipped in x).
    last = boxes[-4:]
    m = math.sqrt(264 * 315) / 2
    expected_last = torch.tensor(
        [
            [18, 18, 282, 282],
            [150 - m, 150 - m, 150 + m, 150 + m],
            [0, 150 - 132 / r, 300, 150 + 132 / r],
            [150 - 132 / r, 0, 150 + 132 / r, 300],
        ]
    )
    torch.testing.assert_close(last, expected_last.float())
    assert boxes.min() >= 0 and boxes.max() <= 300


def test_default_boxes_unclipped_and_bad_config():
    gen = DefaultBoxGenerator(min_sizes=[10], max_sizes=[20], aspect_ratios=[[]], steps=[8], clip=False)
    torch.testing.assert_close(gen([(1, 2)], (16, 16))[0], torch.tensor([-1.0, -1.0, 9.0, 9.0]))
    with pytest.raises(ValueError, match="one entry per level"):
        DefaultBoxGenerator(min_sizes=[10, 20], max_sizes=[20], aspect_ratios=[[2]])
    with pytest.raises(ValueError, match="min_size <= max_size"):
        DefaultBoxGenerator(min_sizes=[30], max_sizes=[20], aspect_ratios=[[2]])
    with pytest.raises(ValueError, match="no preset for input_size=320"):
        ssd_default_box_sizes(320, "coco")


# ----------------------------------------------------------------------------- matching
def test_match_best_prior_per_gt_overrides_threshold():
    # 2 ground truths x 4 priors. GT 1's best IoU is only 0.3 but its best prior (3) must still match it;
    # prior 1 has IoU 0.6 with GT 0 and 0.25 with GT 1 -> GT 0. Prior 2 (0.4) stays background.
    iou = torch.tensor([[0.7, 0.6, 0.4, 0.1], [0.0, 0.25, 0.2, 0.3]])
    matched, fg = match_default_boxes(iou, 0.5)
    assert fg.tolist() == [True, True, False, True]
    assert matched[fg].tolist() == [0, 0, 1]
    # Best prior of a GT wins even against a higher IoU of another GT at that prior.
    iou = torch.tensor([[0.9, 0.8], [0.6, 0.1]])  # GT 1's best prior is 0, where GT 0 has 0.9
    matched, fg = match_default_boxes(iou, 0.5)
    assert matched.tolist() == [1, 0] and fg.tolist() == [True, True]
    matched, fg = match_default_boxes(torch.zeros(0, 3), 0.5)
    assert fg.tolist() == [False] * 3


# ----------------------------------------------------------------------------- multibox loss
def _ce(logits, label):
    return math.log(sum(math.exp(v) for v in logits)) - logits[label]


def test_multibox_loss_hand_computed_with_hard_negative_mining():
    # Image 0: 6 priors, K = 2 classes (background index 2), 1 positive -> 3 hardest of 5 negatives.
    # Image 1: 6 priors, no positive -> no negatives either.
    logits0 = [[2.0, 0.0, 0.0], [0.0, 0.0, 3.0], [1.0, 2.0, 0.5], [0.0, 0.0, 0.0], [0.0, 3.0, 1.0], [2.5, 0.0, 1.0]]
    labels0 = [0, 2, 2, 2, 2, 2]
    logits = torch.tensor([logits0, [[5.0, 0.0, 0.0]] * 6])
    labels = torch.tensor([labels0, [2] * 6])
    deltas = torch.zeros(2, 6, 4)
    deltas[0, 0] = torch.tensor([0.5, -2.0, 0.0, 1.0])
    deltas[1] = 7.0  # ignored: no positives there
    gt_deltas = torch.zeros(2, 6, 4)
    gt_deltas[0, 0] = torch.tensor([0.0, 0.0, 0.2, 0.0])
    out = multibox_loss(logits, deltas, labels, gt_deltas)
    neg_losses = {i: _ce(logits0[i], 2) for i in range(1, 6)}
    hardest = sorted(neg_losses, key=neg_losses.get, reverse=True)[:3]
    assert sorted(hardest) == [2, 4, 5]  # prior 1 (bg logit 3) and prior 3 (uniform) are the easiest
    expected_cls = _ce(logits0[0], 0) + sum(neg_losses[i] for i in hardest)
    # smooth L1 (beta 1): |0.5| -> 0.125, |2| -> 1.5, |0.2| -> 0.02, |1| -> 0.5
    expected_box = 0.125 + 1.5 + 0.02 + 0.5
    assert out["loss_cls"].item() == pytest.approx(expected_cls, rel=1e-5)
    assert out["loss_box_reg"].item() == pytest.approx(expected_box, rel=1e-5)


def test_multibox_loss_caps_negatives_and_normalises_by_positives():
    # 2 positives among 4 priors: 3:1 would ask for 6 negatives, only 2 exist -> all priors count.
    logits = torch.randn(1, 4, 3)
    labels = torch.tensor([[0, 1, 2, 2]])
    out = multibox_loss(logits, torch.zeros(1, 4, 4), labels, torch.zeros(1, 4, 4))
    expected = F.cross_entropy(logits[0], labels[0], reduction="sum") / 2
    assert out["loss_cls"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert out["loss_box_reg"].item() == 0.0
    # No positives in the batch: normaliser 1, loss 0, and still differentiable.
    logits.requires_grad_(True)
    out = multibox_loss(logits, torch.zeros(1, 4, 4), torch.full((1, 4), 2), torch.zeros(1, 4, 4))
    assert out["loss_cls"].item() == 0.0
    out["loss_cls"].backward()


# ----------------------------------------------------------------------------- VGG16
def test_vgg16_single_level_conv5_3_for_faster_rcnn():
    vgg = VGG16(out_features=["conv5_3"], width_mult=0.0625)
    assert BACKBONE_REGISTRY.get("VGG16") is VGG16
    shape = vgg.output_shape()
    assert list(shape) == ["conv5_3"] and shape["conv5_3"].stride == 16 and shape["conv5_3"].channels == 32
    assert not hasattr(vgg, "fc6") and vgg.conv4_3_norm is None
    out = vgg(torch.randn(1, 3, 64, 80))
    assert out["conv5_3"].shape == (1, 32, 4, 5)


def test_vgg16_ssd_levels_l2norm_and_freeze():
    vgg = VGG16(out_features=["conv4_3", "conv7"], width_mult=0.0625, l2norm_scale=20.0, freeze_at=2)
    out = vgg(torch.randn(2, 3, 300, 300))
    assert out["conv4_3"].shape == (2, 32, 38, 38) and out["fc7"].shape == (2, 64, 19, 19)
    # L2Norm: every pixel of conv4_3 has norm 20 (the initial scale) unless all-zero.
    norms = out["conv4_3"].norm(dim=1)
    nonzero = norms > 1e-3
    torch.testing.assert_close(norms[nonzero], torch.full_like(norms[nonzero], 20.0), rtol=1e-4, atol=1e-4)
    assert not vgg.conv2_2.weight.requires_grad and vgg.conv3_1.weight.requires_grad
    with pytest.raises(ValueError, match="unknown out_feature 'pool5'"):
        VGG16(out_features=["pool5"])


def test_convert_torchvision_vgg16():
    import torchvision

    from net_detr2.compat.vgg_weights import convert_torchvision_vgg16_to_ssd

    tv = torchvision.models.vgg16(weights=None).state_dict()
    sd = convert_torchvision_vgg16_to_ssd(tv, prefix="")
    vgg = VGG16(out_features=["conv4_3", "fc7"])
    missing, unexpected = vgg.load_state_dict(sd, strict=False)
    assert unexpected == [] and missing == ["conv4_3_norm.weight"]
    assert vgg.fc6.weight.shape == (1024, 512, 3, 3) and vgg.fc7.weight.shape == (1024, 1024, 1, 1)
    fc6 = tv["classifier.0.weight"].reshape(4096, 512, 7, 7)
    torch.testing.assert_close(vgg.fc6.weight[5, 7, 1, 2], fc6[20, 7, 3, 6])  # output 4*5, taps 3*1, 3*2
    torch.testing.assert_close(vgg.fc7.weight[3, 9, 0, 0], tv["classifier.3.weight"][12, 36])
    torch.testing.assert_close(vgg.fc6.bias[5], tv["classifier.0.bias"][20])
    torch.testing.assert_close(vgg.conv1_1.weight[:, 0], tv["features.0.weight"][:, 2])  # BGR flip
    torch.testing.assert_close(vgg.conv5_3.weight, tv["features.28.weight"])
    # A conv-only backbone (Faster R-CNN conv5_3) loads the conv part strictly.
    conv_only = convert_torchvision_vgg16_to_ssd(tv, with_fc=False, to_bgr=False)
    VGG16(out_features=["conv5_3"], l2norm_scale=None).load_state_dict(conv_only, strict=True)
    with pytest.raises(KeyError, match="features.0.weight"):
        convert_torchvision_vgg16_to_ssd({})


# ----------------------------------------------------------------------------- meta-architecture
def tiny_ssd(num_classes=3, size=300):
    vgg = VGG16(out_features=["conv4_3", "fc7"], width_mult=0.0625, norm="BN")
    backbone = SSDBackbone(
        bottom_up=vgg, in_features=["conv4_3", "fc7"], extra_layers=ssd_extra_layers(size, 0.0625), norm="BN"
    )
    gen = DefaultBoxGenerator(**ssd_default_box_sizes(size, "voc"))
    channels = [s.channels for s in backbone.output_shape().values()]
    head = SSDHead(in_channels=channels, num_anchors=gen.num_anchors, num_classes=num_classes)
    return SSD(
        backbone=backbone,
        head=head,
        prior_generator=gen,
        num_classes=num_classes,
        pixel_mean=[104.0, 117.0, 123.0],
        pixel_std=[1.0, 1.0, 1.0],
    )


def _inputs(n=2, size=300):
    g = torch.Generator().manual_seed(0)
    out = []
    for i in range(n):
        inst = Instances((size, size))
        inst.gt_boxes = Boxes(torch.tensor([[10.0, 20.0, 60.0, 90.0], [120.0, 100.0, 280.0, 290.0]])[: i + 1])
        inst.gt_classes = torch.tensor([0, 2])[: i + 1]
        out.append({"image": torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=g), "instances": inst})
    return out


def test_ssd_train_step_and_inference_contract():
    torch.manual_seed(0)
    model = tiny_ssd()
    assert META_ARCH_REGISTRY.get("SSD") is SSD
    losses = model(_inputs())
    assert set(losses) == {"loss_cls", "loss_box_reg"} and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert model.head.cls_score[0].weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        out = model([{"image": _inputs(1)[0]["image"], "height": 600, "width": 450}])
    inst = out[0]["instances"]
    assert inst.image_size == (600, 450)
    assert 0 < len(inst) <= 200
    assert inst.scores.min() > 0.01 and (inst.scores[:-1] >= inst.scores[1:]).all()
    assert inst.pred_classes.max() < 3
    b = inst.pred_boxes.tensor
    assert b[:, 0::2].max() <= 450 and b[:, 1::2].max() <= 600


def test_ssd_labels_match_encoded_ground_truth():
    model = tiny_ssd()
    priors = model.prior_generator(SHAPES_300, (300, 300))
    inputs = _inputs()
    labels, deltas = model.label_default_boxes(priors, [x["instances"] for x in inputs])
    assert labels.shape == (2, 8732) and deltas.shape == (2, 8732, 4)
    fg = labels[1] != 3
    assert set(labels[1][fg].tolist()) == {0, 2}
    # Decoding a positive's target recovers its ground truth (variances 0.1/0.2 round trip).
    idx = fg.nonzero()[0, 0]
    decoded = model.box2box_transform.apply_deltas(deltas[1, idx][None], priors[idx][None])[0]
    gts = inputs[1]["instances"].gt_boxes.tensor
    assert torch.isclose(decoded[None], gts, atol=1e-3).all(dim=1).any()
    # Encoding check by hand for that prior: dx = (gcx - pcx) / (0.1 * pw).
    p = priors[idx]
    g = gts[labels[1, idx].item() // 2]  # class 0 -> gt 0, class 2 -> gt 1
    assert deltas[1, idx, 0].item() == pytest.approx(
        ((g[0] + g[2]) / 2 - (p[0] + p[2]) / 2).item() / (0.1 * (p[2] - p[0]).item()), rel=1e-4
    )


def test_ssd_rejects_mixed_sizes_and_bad_levels():
    model = tiny_ssd()
    x = _inputs()
    x[1]["image"] = torch.zeros(3, 200, 300, dtype=torch.uint8)
    with pytest.raises(ValueError, match="same size"):
        model(x)
    gen = DefaultBoxGenerator(min_sizes=[30], max_sizes=[60], aspect_ratios=[[2]])
    with pytest.raises(ValueError, match="6 feature levels"):
        SSD(
            backbone=model.backbone,
            head=model.head,
            prior_generator=gen,
            num_classes=3,
            pixel_mean=[0, 0, 0],
            pixel_std=[1, 1, 1],
        )
