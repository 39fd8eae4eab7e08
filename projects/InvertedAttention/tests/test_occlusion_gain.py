"""tools/occlusion_gain.py: the difference of a variant's gains on two slices, against hand-computed values."""

from __future__ import annotations

import json

import pytest

from net_detr2_projects.InvertedAttention.tools.occlusion_gain import main, occlusion_gain


def _runs():
    # seed -> (occluded, visible) metric values
    base = {"0": (10.0, 40.0), "1": (12.0, 41.0), "2": (11.0, 39.0)}
    ia = {"0": (13.0, 41.0), "1": (14.0, 41.0), "2": (15.0, 40.0), "3": (99.0, 0.0)}  # seed 3: no baseline pair
    return {
        name: {s: {"ARvis0_60": o, "ARvis90_100": v} for s, (o, v) in runs.items()}
        for name, runs in (("frcnn", base), ("ia", ia))
    }


def test_difference_of_gains_and_t_interval_by_hand():
    seeds, diffs, ci = occlusion_gain(_runs(), "frcnn", "ia", "ARvis0_60", "ARvis90_100")
    # gains on occluded 3, 2, 4; on visible 1, 0, 1 -> differences 2, 2, 3
    assert seeds == [0, 1, 2]
    assert diffs == pytest.approx([2.0, 2.0, 3.0])
    # mean 7/3, sd sqrt(1/3), t(0.975, 2) = 4.302653 -> half width 4.302653 / 3
    assert ci.estimate == pytest.approx(7 / 3)
    assert ci.low == pytest.approx(7 / 3 - 4.302653 / 3, abs=1e-5)
    assert ci.high == pytest.approx(7 / 3 + 4.302653 / 3, abs=1e-5)


def test_missing_metric_or_run_is_named(tmp_path):
    with pytest.raises(KeyError, match="frcnn/seed0 has no metric 'APvis0_60'"):
        occlusion_gain(_runs(), "frcnn", "ia", "APvis0_60", "ARvis90_100")
    with pytest.raises(KeyError, match="no runs named 'ia_random'"):
        occlusion_gain(_runs(), "frcnn", "ia_random", "ARvis0_60", "ARvis90_100")


def test_command_line_table(tmp_path, capsys):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"baseline": "frcnn", "runs": _runs()}))
    assert main([str(path), "--variant", "ia", "--pairs", "ARvis0_60:ARvis90_100"]) == 0
    out = capsys.readouterr().out
    assert (
        "| ARvis0_60 | ARvis90_100 | +2.3 | [+0.9, +3.8] | +2.0, +2.0, +3.0 (seeds 0 1 2) | more under occlusion |"
        in out
    )
