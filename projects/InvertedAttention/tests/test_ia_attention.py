"""Inverted Attention maps and masks on fixed, hand-checked tensors."""

from __future__ import annotations

import pytest
import torch

from net_detr2_projects.InvertedAttention.inverted_attention.attention import (
    channel_inversion_mask,
    gradient_attention,
    gt_probability,
    inverted_attention_mask,
    normalize_attention,
    num_to_drop,
    select_random,
    select_top_per_group,
    spatial_inversion_mask,
)


def test_num_to_drop_rounds_up_like_the_authors_code():
    assert num_to_drop(1 / 3, 49) == 17  # a third of a 7x7 map
    assert num_to_drop(1 / 3, 9) == 3
    assert num_to_drop(0.8, 10) == 8
    assert num_to_drop(0.7, 10) == 7  # 0.7 * 10 is 7.000000000000001 in floating point
    assert num_to_drop(0.8, 512) == 410
    assert num_to_drop(0.0, 49) == 0
    with pytest.raises(ValueError, match="drop fraction must lie in \\[0, 1\\], got 1.5"):
        num_to_drop(1.5, 10)


def test_gradient_attention_matches_hand_computation():
    # One RoI, 2 channels, 2x2 map.
    features = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [0.0, -1.0]]]])
    grads = torch.tensor([[[[1.0, 1.0], [1.0, 1.0]], [[4.0, 0.0], [0.0, -8.0]]]])
    attention, weights = gradient_attention(features, grads)
    # w = spatial means = [1, -1]; M = 1*F0 - 1*F1.
    assert torch.equal(weights, torch.tensor([[1.0, -1.0]]))
    assert torch.equal(attention, torch.tensor([[[1.0, 1.0], [3.0, 5.0]]]))
    with pytest.raises(ValueError, match="must both be \\(R, C, H, W\\)"):
        gradient_attention(features, grads[0])


def _permuted_maps(num_rois: int, side: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randperm(side * side, generator=g).float() for _ in range(num_rois)]).view(
        num_rois, side, side
    )


def test_soft_threshold_zeros_exactly_the_top_third_positions():
    attention = _permuted_maps(4, 7)
    mask = spatial_inversion_mask(attention, "soft", drop_fraction=1 / 3)
    assert mask.shape == (4, 7, 7)
    # Values are a permutation of 0..48: the 17 largest are 32..48.
    assert torch.equal(mask, (attention < 32).float())
    assert torch.equal((mask == 0).flatten(1).sum(1), torch.full((4,), 17))


def test_hard_threshold_and_overturn_use_min_max_normalised_attention():
    attention = torch.tensor([[[2.0, 4.0, 6.0, 8.0, 10.0]]])  # normalised: 0, .25, .5, .75, 1
    assert torch.allclose(normalize_attention(attention), torch.tensor([[[0.0, 0.25, 0.5, 0.75, 1.0]]]))
    hard = spatial_inversion_mask(attention, "hard", hard_threshold=0.5)
    assert torch.equal(hard, torch.tensor([[[1.0, 1.0, 1.0, 0.0, 0.0]]]))
    overturn = spatial_inversion_mask(attention, "overturn")
    assert torch.allclose(overturn, torch.tensor([[[1.0, 0.75, 0.5, 0.25, 0.0]]]))
    # A constant map has no attended part: nothing is dropped by "hard".
    assert torch.equal(spatial_inversion_mask(torch.ones(1, 2, 2), "hard"), torch.ones(1, 2, 2))


def test_random_strategy_drops_the_same_count_at_seeded_random_positions():
    attention = _permuted_maps(3, 7)
    m1 = spatial_inversion_mask(attention, "random", generator=torch.Generator().manual_seed(3))
    m2 = spatial_inversion_mask(attention, "random", generator=torch.Generator().manual_seed(3))
    assert torch.equal(m1, m2)
    assert torch.equal((m1 == 0).flatten(1).sum(1), torch.full((3,), 17))
    assert not torch.equal(m1, (attention < 32).float())  # not the attention-ranked positions
    with pytest.raises(ValueError, match="Unknown inversion strategy 'bogus'"):
        spatial_inversion_mask(attention, "bogus")


def test_channel_mask_drops_the_most_sensitive_channels_by_weight():
    weights = torch.tensor([[0.1, -2.0, 3.0, 0.5, 0.2], [5.0, 4.0, -1.0, 0.0, 2.0]])
    mask = channel_inversion_mask(weights, fraction=0.4)  # ceil(0.4 * 5) = 2 channels
    assert torch.equal(mask, torch.tensor([[1.0, 1.0, 0.0, 0.0, 1.0], [0.0, 0.0, 1.0, 1.0, 1.0]]))


def test_orientations_combine_spatial_and_channel_masks_per_eq4():
    attention = torch.tensor([[[4.0, 1.0, 3.0], [0.0, 2.0, 5.0], [8.0, 7.0, 6.0]]])  # top 3: 8, 7, 6
    weights = torch.tensor([[0.3, -0.1, 0.9, 0.2]])  # top 2 (fraction 0.5): channels 2, 0
    expected_spatial = torch.tensor([[[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]])
    spatial = inverted_attention_mask(attention, weights, "soft", "spatial", 1 / 3, 0.5)
    assert spatial.shape == (1, 1, 3, 3)
    assert torch.equal(spatial[:, 0], expected_spatial)

    channel = inverted_attention_mask(attention, weights, "soft", "channel", 1 / 3, 0.5)
    assert channel.shape == (1, 4, 1, 1)
    assert torch.equal(channel.flatten(), torch.tensor([0.0, 1.0, 0.0, 1.0]))

    both = inverted_attention_mask(attention, weights, "soft", "spatial+channel", 1 / 3, 0.5)
    assert both.shape == (1, 4, 3, 3)
    for c, sensitive in enumerate([True, False, True, False]):
        assert torch.equal(both[0, c], expected_spatial[0] if sensitive else torch.ones(3, 3)), c

    with pytest.raises(ValueError, match="Unknown inversion orientation 'diagonal'"):
        inverted_attention_mask(attention, weights, "soft", "diagonal")


def test_select_top_per_group_takes_the_largest_drops_of_each_group():
    drop = torch.tensor([0.9, 0.1, 0.5, 0.8, 0.3, 0.7, 0.2, 0.6, 0.4, 0.05])
    is_fg = torch.tensor([True, True, True, True, True, False, False, False, False, False])
    # fg: round(5 * 0.4) = 2 -> drops 0.9, 0.8; bg: round(5 * 0.2) = 1 -> drop 0.7.
    chosen = select_top_per_group(drop, is_fg, fg_fraction=0.4, bg_fraction=0.2)
    assert chosen.tolist() == [True, False, False, True, False, True, False, False, False, False]
    # Defaults of the public code on a 512-RoI batch with 128 foreground: 26 + 13 chosen.
    drop = torch.rand(512, generator=torch.Generator().manual_seed(0))
    is_fg = torch.arange(512) < 128
    chosen = select_top_per_group(drop, is_fg, 1 / 5, 1 / 30)
    assert int(chosen[is_fg].sum()) == 26 and int(chosen[~is_fg].sum()) == 13
    assert drop[is_fg][chosen[is_fg]].min() > drop[is_fg][~chosen[is_fg]].max()
    assert drop[~is_fg][chosen[~is_fg]].min() > drop[~is_fg][~chosen[~is_fg]].max()


def test_select_random_chooses_a_fixed_share():
    chosen = select_random(50, 0.2, generator=torch.Generator().manual_seed(1))
    assert chosen.dtype == torch.bool and int(chosen.sum()) == 10
    other = select_random(50, 0.2, generator=torch.Generator().manual_seed(2))
    assert not torch.equal(chosen, other)


def test_gt_probability_reads_the_ground_truth_column():
    logits = torch.tensor([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0]])
    p = gt_probability(logits, torch.tensor([2, 0]))
    e2 = torch.exp(torch.tensor(2.0))
    assert torch.allclose(p, torch.stack([torch.tensor(1 / 3), e2 / (e2 + 2)]))
