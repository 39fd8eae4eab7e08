"""SSD core: default boxes, matching, multibox loss (hand-computed) and the meta-architecture."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from net_detr2.modeling.anchor_generator import DefaultBoxGenerator, ssd_default_box_sizes
from net_detr2.modeling.matcher import match_default_boxes
from net_detr2.modeling.meta_arch.ssd import SSD, multibox_loss
from net_detr2.modeling.registry import META_ARCH_REGISTRY
from net_detr2.utils.testing import ssd_training_inputs as _inputs
from net_detr2.utils.testing import tiny_ssd

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


# ----------------------------------------------------------------------------- meta-architecture
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


def test_matching_threshold_is_inclusive():
    # A prior whose best IoU equals the threshold is foreground; a hair below it is not. Column 0 is the
    # ground truth's best prior (matched whatever its IoU), so the threshold decides columns 1 and 2 only.
    iou = torch.tensor([[0.9, 0.5, 0.5 - 1e-6]])
    matched, fg = match_default_boxes(iou, 0.5)
    assert fg.tolist() == [True, True, False]
    assert matched.tolist() == [0, 0, 0]


def test_ssd300_default_boxes_equal_torchvision():
    """Our COCO SSD300 priors are torchvision's `ssd300_vgg16` priors (scales 0.07..1.05 of 300), in the same
    order. Compared unclipped: torchvision's ``clip`` clamps each box's relative width and height to 1 while
    ours clips the corners to the image, so only the unclipped boxes are the same set."""
    from torchvision.models.detection.anchor_utils import DefaultBoxGenerator as TorchvisionDefaultBoxes
    from torchvision.models.detection.image_list import ImageList as TorchvisionImageList

    tv = TorchvisionDefaultBoxes(
        [[2], [2, 3], [2, 3], [2, 3], [2], [2]],
        scales=[0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05],
        steps=[8, 16, 32, 64, 100, 300],
        clip=False,
    )
    images = TorchvisionImageList(torch.zeros(1, 3, 300, 300), [(300, 300)])
    expected = tv(images, [torch.zeros(1, 1, h, w) for h, w in SHAPES_300])[0]
    ours = DefaultBoxGenerator(**ssd_default_box_sizes(300, "coco"), clip=False)(SHAPES_300, (300, 300))
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-4)


def test_ssd_rejects_images_without_the_model_channels():
    model = tiny_ssd()
    x = _inputs(1)
    x[0]["image"] = x[0]["image"][:1]  # one channel would broadcast against the 3-channel mean
    with pytest.raises(ValueError, match=r"input 0 'image' must be \[3, H, W\], got \(1, 300, 300\)"):
        model(x)
    with pytest.raises(KeyError, match="training input 0 has no 'instances'"):
        model([{"image": _inputs(1)[0]["image"]}])
