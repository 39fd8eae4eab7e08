#!/usr/bin/env python
"""Does a variant gain more on occluded objects than on visible ones? (the claim "more under occlusion")

Reads a ``tools/compare.py`` sweep's ``results.json`` and, for each pair of slice metrics (occluded,
visible), takes per seed the variant's gain on the occluded slice minus its gain on the visible slice,

    (variant[occluded] - baseline[occluded]) - (variant[visible] - baseline[visible]),

and reports the mean with a 95% paired t-interval over seeds and the verdict (more / less / within noise).
Positive means the variant helps occluded objects more than visible ones.

    python projects/InvertedAttention/tools/occlusion_gain.py output/sweeps/ia_occluded/results.json \\
        --variant ia [--pairs ARvis0_60:ARvis90_100 APvis0_60:APvis90_100 ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))

from net_detr2.evaluation.statistics import Interval, paired_t_interval  # noqa: E402

DEFAULT_PAIRS = (
    ("ARvis0_60", "ARvis90_100"),
    ("AP50vis0_60", "AP50vis90_100"),
    ("APvis0_60", "APvis90_100"),
    ("ARvis60_90", "ARvis90_100"),
    ("AP50vis60_90", "AP50vis90_100"),
    ("APvis60_90", "APvis90_100"),
)


def occlusion_gain(
    runs: dict, baseline: str, variant: str, occluded: str, visible: str
) -> tuple[list[int], list[float], Interval]:
    """Per-seed ``(gain on occluded) - (gain on visible)`` and its paired t-interval.

    Args:
        runs: ``results.json["runs"]``: ``{name: {seed: {metric: value}}}``.
        baseline, variant: run names; the seeds both have are used.
        occluded, visible: metric names of the two slices.
    Returns:
        seeds, per-seed values, the interval of their mean.
    """
    for name in (baseline, variant):
        if name not in runs:
            raise KeyError(f"no runs named {name!r} in the results (have: {sorted(runs)})")
    seeds = sorted(set(runs[baseline]) & set(runs[variant]), key=int)
    for name in (baseline, variant):
        for seed in seeds:
            for metric in (occluded, visible):
                if metric not in runs[name][seed]:
                    raise KeyError(f"{name}/seed{seed} has no metric {metric!r}")
    # the slice gap (occluded - visible) of each run; its paired difference is the difference of the gains
    gap = {name: [runs[name][s][occluded] - runs[name][s][visible] for s in seeds] for name in (baseline, variant)}
    diffs, interval = paired_t_interval(gap[baseline], gap[variant])
    return [int(s) for s in seeds], diffs, interval


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path, help="results.json of a tools/compare.py sweep")
    parser.add_argument("--variant", required=True)
    parser.add_argument("--baseline", default=None, help="default: the sweep's baseline")
    parser.add_argument(
        "--pairs",
        nargs="+",
        default=[f"{a}:{b}" for a, b in DEFAULT_PAIRS],
        help="OCCLUDED:VISIBLE metric pairs",
    )
    args = parser.parse_args(argv)
    results = json.loads(args.results.read_text())
    baseline = args.baseline or results["baseline"]
    print(f"gain of {args.variant} over {baseline} on the occluded slice minus its gain on the visible slice")
    print("| occluded | visible | difference of gains | 95% interval | per seed | verdict |")
    print("|---|---|---|---|---|---|")
    for pair in args.pairs:
        occluded, sep, visible = pair.partition(":")
        if not sep:
            parser.error(f"--pairs: {pair!r} is not OCCLUDED:VISIBLE")
        seeds, diffs, ci = occlusion_gain(results["runs"], baseline, args.variant, occluded, visible)
        verdict = "within noise" if not ci.excludes_zero() else ("more" if ci.low > 0 else "less")
        per_seed = ", ".join(f"{d:+.1f}" for d in diffs)
        print(
            f"| {occluded} | {visible} | {ci.estimate:+.1f} | [{ci.low:+.1f}, {ci.high:+.1f}] "
            f"| {per_seed} (seeds {' '.join(map(str, seeds))}) | {verdict} under occlusion |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
