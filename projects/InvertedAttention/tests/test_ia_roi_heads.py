"""IAROIHeads: the probe gradient, which RoIs are masked, the training step and bit-identical inference."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from net_detr2.layers import ShapeSpec
from net_detr2.modeling import (
    ROI_HEADS_REGISTRY,
    Box2BoxTransform,
    FastRCNNConvFCHead,
    FastRCNNOutputLayers,
    Matcher,
    ROIPooler,
    StandardROIHeads,
)
from net_detr2.structures import Boxes, ImageList, Instances
from net_detr2_projects.InvertedAttention.inverted_attention import IAROIHeads
from net_detr2_projects.InvertedAttention.inverted_attention.attention import (
    gradient_attention,
    inverted_attention_mask,
    num_to_drop,
)

NUM_CLASSES = 3
CHANNELS = 8
POOL = 5  # 25 positions: the soft mask zeroes ceil(25 / 3) = 9
IMAGE = (64, 80)


def _heads(cls=IAROIHeads, box_head=None, seed=0, **ia_options):
    torch.manual_seed(seed)
    if box_head is None:
        box_head = FastRCNNConvFCHead(ShapeSpec(channels=CHANNELS, height=POOL, width=POOL), conv_dims=[], fc_dims=[32])
    predictor = FastRCNNOutputLayers(
        box_head.output_shape if hasattr(box_head, "output_shape") else CHANNELS * POOL * POOL,
        box2box_transform=Box2BoxTransform(weights=(10.0, 10.0, 5.0, 5.0)),
        num_classes=NUM_CLASSES,
        test_score_thresh=0.0,
    )
    # Larger weights than the default init so probabilities move and the test is sensitive.
    nn.init.normal_(predictor.cls_score.weight, std=0.3)
    return cls(
        num_classes=NUM_CLASSES,
        batch_size_per_image=64,
        positive_fraction=0.5,
        proposal_matcher=Matcher([0.5], [0, 1], allow_low_quality_matches=False),
        box_in_features=["p3"],
        box_pooler=ROIPooler(output_size=POOL, scales=(1.0 / 8,), sampling_ratio=0, pooler_type="ROIAlignV2"),
        box_head=box_head,
        box_predictor=predictor,
        **ia_options,
    )


def _inputs(seed=1):
    """Features of 2 images, 40 random proposals each, 3 ground-truth boxes each."""
    g = torch.Generator().manual_seed(seed)
    h, w = IMAGE
    features = {"p3": torch.randn(2, CHANNELS, h // 8, w // 8, generator=g)}
    proposals, targets = [], []
    for _ in range(2):
        xy = torch.rand(40, 2, generator=g) * torch.tensor([w - 20.0, h - 20.0])
        wh = 8 + torch.rand(40, 2, generator=g) * 30
        boxes = torch.cat([xy, (xy + wh).clamp(max=torch.tensor([w - 1.0, h - 1.0]))], dim=1)
        p = Instances(IMAGE, proposal_boxes=Boxes(boxes), objectness_logits=torch.randn(40, generator=g))
        proposals.append(p)
        t = Instances(IMAGE, gt_boxes=Boxes(boxes[:3] + 1.5), gt_classes=torch.tensor([0, 1, 2]))
        targets.append(t)
    return features, proposals, targets


def _sampled(heads, proposals, targets, seed=2):
    torch.manual_seed(seed)
    return heads.label_and_sample_proposals(proposals, targets)


def test_registered_and_rejects_unknown_variants():
    assert ROI_HEADS_REGISTRY.get("IAROIHeads") is IAROIHeads
    with pytest.raises(ValueError, match="IAROIHeads: inversion_strategy='median' is not one of"):
        _heads(inversion_strategy="median")
    with pytest.raises(ValueError, match="IAROIHeads: orientation='temporal' is not one of"):
        _heads(orientation="temporal")
    with pytest.raises(ValueError, match="IAROIHeads: fg_fraction=1.5 must lie in \\[0, 1\\]"):
        _heads(fg_fraction=1.5)


class _LinearHead(nn.Module):
    """Flatten + dropout: logits are linear in the features, so d logit_k / dF = W_k exactly."""

    def __init__(self):
        super().__init__()
        self.dropout = nn.Dropout(0.5)

    def forward(self, x):
        return self.dropout(x.flatten(1))

    @property
    def output_shape(self):
        return ShapeSpec(channels=CHANNELS * POOL * POOL)


def test_probe_gradient_is_the_ground_truth_logit_gradient_in_eval_mode():
    heads = _heads(box_head=_LinearHead())
    heads.train()
    features = torch.randn(6, CHANNELS, POOL, POOL)
    gt_classes = torch.tensor([0, 3, 1, 2, 3, 0])  # 3 = background
    grads, logits = heads.attention_gradient(features, gt_classes)
    weight = heads.box_predictor.cls_score.weight
    # Hand gradient of a linear classifier: the ground-truth row of W (background: row K).
    expected = weight[gt_classes].view(6, CHANNELS, POOL, POOL)
    assert torch.allclose(grads, expected, atol=1e-7)
    # Same with a manual autograd of each RoI's ground-truth logit.
    with torch.enable_grad():
        heads.eval()
        for r in range(6):
            f = features[r : r + 1].clone().requires_grad_(True)
            (g,) = torch.autograd.grad(heads.box_predictor(heads.box_head(f))[0][0, gt_classes[r]], f)
            assert torch.allclose(grads[r], g[0], atol=1e-7)
        heads.train()
    assert torch.allclose(logits, heads.box_predictor.cls_score(features.flatten(1)).detach(), atol=1e-6)
    # The probe leaves parameter gradients and the train/eval flags alone.
    assert all(p.grad is None for p in heads.parameters())
    assert heads.training and heads.box_head.dropout.training


def _is_masked(mask: torch.Tensor) -> torch.Tensor:
    """(R,) bool: RoIs whose mask differs from all-ones."""
    return (mask.flatten(1) != 1).any(dim=1)


def test_probability_drop_selection_masks_the_chosen_share_only():
    heads = _heads()
    heads.train()
    features, proposals, targets = _inputs()
    sampled = _sampled(heads, proposals, targets)
    gt_classes = torch.cat([p.gt_classes for p in sampled])
    pooled = heads._pool_box_features(features, sampled)
    mask = heads.inverted_attention(pooled, gt_classes)
    assert mask.shape == (pooled.shape[0], 1, POOL, POOL)
    is_fg = gt_classes < NUM_CLASSES
    n_fg, n_bg = int(is_fg.sum()), int((~is_fg).sum())
    assert n_fg >= 5 and n_bg >= 30  # the test data must exercise both groups
    masked = _is_masked(mask)
    assert int(masked[is_fg].sum()) == round(n_fg / 5)
    assert int(masked[~is_fg].sum()) == round(n_bg / 30)
    # Every masked RoI has exactly the soft-threshold share of positions zeroed, on all channels.
    zeros = (mask[masked] == 0).flatten(1).sum(1)
    assert torch.equal(zeros, torch.full_like(zeros, num_to_drop(1 / 3, POOL * POOL)))
    # The chosen RoIs are, per group, those whose ground-truth probability the mask lowers most.
    grads, logits = heads.attention_gradient(pooled, gt_classes)
    attention, weights = gradient_attention(pooled, grads)
    every_roi_mask = inverted_attention_mask(attention, weights)  # soft, spatial, applied to all RoIs
    with torch.no_grad():
        heads.eval()
        after = heads._class_logits(pooled * every_roi_mask)
        heads.train()
    drop = (logits.softmax(1) - after.softmax(1)).gather(1, gt_classes[:, None])[:, 0]
    for group in (is_fg, ~is_fg):
        assert drop[group & masked].min() > drop[group & ~masked].max()


def test_random_roi_selection_masks_twenty_percent():
    heads = _heads(roi_selection="random")
    heads.train()
    features, proposals, targets = _inputs()
    sampled = _sampled(heads, proposals, targets)
    gt_classes = torch.cat([p.gt_classes for p in sampled])
    pooled = heads._pool_box_features(features, sampled)
    mask = heads.inverted_attention(pooled, gt_classes)
    assert int(_is_masked(mask).sum()) == round(0.2 * pooled.shape[0])


class _MaskedPooler(nn.Module):
    """A baseline pooler whose output is multiplied by a fixed mask."""

    def __init__(self, pooler, mask):
        super().__init__()
        self.pooler, self.mask = pooler, mask

    def forward(self, features, boxes):
        return self.pooler(features, boxes) * self.mask


@pytest.mark.parametrize("orientation", ["spatial", "spatial+channel"])
def test_ia_step_equals_a_baseline_step_on_the_masked_features(orientation):
    ia = _heads(orientation=orientation)
    ia.train()
    features, proposals, targets = _inputs()
    sampled = _sampled(ia, proposals, targets)
    gt_classes = torch.cat([p.gt_classes for p in sampled])
    # The default variant is deterministic, so the mask can be recomputed outside the step.
    mask = ia.inverted_attention(ia._pool_box_features(features, sampled), gt_classes)
    assert _is_masked(mask).any()

    def step(heads):
        heads.zero_grad()
        feats = {"p3": features["p3"].clone().requires_grad_(True)}
        losses = heads._forward_box(feats, copy.deepcopy(sampled))
        sum(losses.values()).backward()
        return losses, feats["p3"].grad, {n: p.grad.clone() for n, p in heads.named_parameters()}

    ia_losses, ia_feat_grad, ia_grads = step(ia)

    baseline = _heads(cls=StandardROIHeads)
    baseline.load_state_dict(ia.state_dict())
    baseline.box_pooler = _MaskedPooler(baseline.box_pooler, mask)
    baseline.train()
    b_losses, b_feat_grad, b_grads = step(baseline)
    assert ia_grads.keys() == b_grads.keys()
    for k in ia_losses:
        assert torch.allclose(ia_losses[k], b_losses[k], rtol=1e-6, atol=1e-7), k
    for name in ia_grads:
        assert torch.allclose(ia_grads[name], b_grads[name], rtol=1e-5, atol=1e-8), name
    # Gradients flow back to the features through the mask (zero where masked).
    assert torch.allclose(ia_feat_grad, b_feat_grad, rtol=1e-5, atol=1e-8)

    # ... and they are not those of an unmasked baseline step (the test can fail).
    plain = _heads(cls=StandardROIHeads)
    plain.load_state_dict(ia.state_dict())
    plain.train()
    _, _, p_grads = step(plain)
    assert not torch.allclose(ia_grads["box_head.fc1.weight"], p_grads["box_head.fc1.weight"])


@pytest.mark.parametrize("strategy", ["random", "overturn", "hard", "soft"])
@pytest.mark.parametrize("orientation", ["spatial", "channel", "spatial+channel"])
@pytest.mark.parametrize("roi_selection", ["probability_drop", "random"])
def test_every_variant_trains(strategy, orientation, roi_selection):
    heads = _heads(
        inversion_strategy=strategy, orientation=orientation, roi_selection=roi_selection, channel_fraction=0.5
    )
    heads.train()
    features, proposals, targets = _inputs()
    feats = {"p3": features["p3"].clone().requires_grad_(True)}
    sampled, losses = heads(None, feats, proposals, targets)
    assert set(losses) == {"loss_cls", "loss_box_reg"}
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert heads.box_head.fc1.weight.grad.abs().sum() > 0 and feats["p3"].grad.abs().sum() > 0
    gt_classes = torch.cat([p.gt_classes for p in sampled])
    mask = heads.inverted_attention(heads._pool_box_features(features, sampled), gt_classes)
    masked = _is_masked(mask)
    if roi_selection == "random":
        assert int(masked.sum()) == round(0.2 * len(gt_classes))
    else:
        is_fg = gt_classes < NUM_CLASSES
        assert int(masked[is_fg].sum()) <= round(int(is_fg.sum()) / 5)
        assert int(masked[~is_fg].sum()) <= round(int((~is_fg).sum()) / 30)
        assert masked.any()
    if orientation == "channel":
        # Whole channels: ceil(0.5 * 8) = 4 dropped per masked RoI.
        assert mask.shape == (len(gt_classes), CHANNELS, 1, 1)
        assert torch.equal((mask[masked] == 0).flatten(1).sum(1), torch.full((int(masked.sum()),), 4))


def test_eval_outputs_are_bit_identical_to_standard_roi_heads():
    ia = _heads()
    baseline = _heads(cls=StandardROIHeads, seed=5)
    baseline.load_state_dict(ia.state_dict())
    ia.eval()
    baseline.eval()
    features, proposals, _ = _inputs()
    images = ImageList(torch.zeros(2, 3, *IMAGE), [IMAGE, IMAGE])
    with torch.no_grad():
        out_ia, extra_ia = ia(images, features, proposals)
        out_b, extra_b = baseline(images, features, proposals)
    assert extra_ia == extra_b == {}
    assert sum(len(x) for x in out_ia) > 0
    for a, b in zip(out_ia, out_b):
        assert torch.equal(a.pred_boxes.tensor, b.pred_boxes.tensor)
        assert torch.equal(a.scores, b.scores)
        assert torch.equal(a.pred_classes, b.pred_classes)
