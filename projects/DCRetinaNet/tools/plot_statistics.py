#!/usr/bin/env python
"""Curves of DC-RetinaNet's training statistics (``log_statistics``) from the ``metrics.json`` of one or more runs.

Panels, over training iterations: anchors each reading of Eq. 4-5 promotes per ground truth (log scale), the
mean size ratio sqrt(area(anchor) / area(gt)) of the promoted anchors, the share of them smaller than half
the ground truth's side, their mean p^ (probability of the gt's class), and lambda' (Eq. 2: min, mean, max).
Each run is one line style; each reading one colour. In a run the readings it does not train with are
what they *would* promote with that run's classifier.

    python projects/DCRetinaNet/tools/plot_statistics.py --output docs.png \\
        "RetinaNet:output/sweeps/dc_probes_shapes/retinanet/seed0" \\
        "IAC positive_first/min_area:output/sweeps/dc_probes_shapes/iac_pos_min/seed0"

``--table`` also prints the same statistics as a markdown table: per run and reading, the mean of the logged
values in each quarter of training (``most`` is the largest count for one ground truth in that quarter).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

READINGS = ("positive_first.min_area", "negative_first.min_area", "positive_first.iou", "negative_first.iou")
COLOURS = dict(zip(READINGS, ("tab:red", "tab:blue", "tab:orange", "tab:green")))
STYLES = ("-", "--", ":", "-.")
PANELS = (
    ("promoted_per_gt", "anchors promoted per ground truth", True),
    ("size_ratio", "size ratio sqrt(area anchor / area gt) of the promoted", False),
    ("smaller_half", "share of promoted anchors < half the gt's side", False),
    ("p_hat", "p^ of the gt's class at the promoted anchors", False),
)


def read_series(metrics_file: Path) -> dict[str, tuple[list[int], list[float]]]:
    """``{scalar: (iterations, values)}`` from a metrics.json (one JSON object per line)."""
    series: dict[str, tuple[list[int], list[float]]] = {}
    for line in metrics_file.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a half-written last line
        iteration = record.get("iteration")
        for key, value in record.items():
            if key.startswith(("iac.", "dc/")) and isinstance(value, (int, float)):
                xs, ys = series.setdefault(key, ([], []))
                xs.append(iteration)
                ys.append(value)
    return series


def plot(runs: list[tuple[str, Path]], output: Path) -> None:
    fig, axes = plt.subplots(1, len(PANELS) + 1, figsize=(4.2 * (len(PANELS) + 1), 3.8))
    for (label, folder), style in zip(runs, STYLES):
        metrics = folder / "metrics.json"
        if not metrics.is_file():
            raise FileNotFoundError(f"plot_statistics: {metrics} not found (a run folder of DCRetinaNet?)")
        series = read_series(metrics)
        for ax, (name, title, log) in zip(axes, PANELS):
            for reading in READINGS:
                xs, ys = series.get(f"iac.{reading}/{name}", ([], []))
                if xs:
                    ax.plot(xs, ys, style, color=COLOURS[reading], label=f"{label}: {reading}")
            ax.set_title(title, fontsize=9)
            if log:
                ax.set_yscale("symlog", linthresh=0.1)
        ax = axes[-1]
        for stat, colour in (
            ("lambda_norm_min", "tab:blue"),
            ("lambda_norm_mean", "k"),
            ("lambda_norm_max", "tab:red"),
        ):
            xs, ys = series.get(f"dc/{stat}", ([], []))
            if xs:
                ax.plot(xs, ys, style, color=colour, label=f"{label}: {stat}")
        ax.set_title("lambda' over the positives (Eq. 2)", fontsize=9)
    for ax in axes:
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=6)
    axes[-1].legend(fontsize=6)
    fig.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=90)
    plt.close(fig)


TABLE_COLUMNS = (
    ("promoted_per_gt", "promoted / gt", "mean"),
    ("most_for_one_gt", "most for one gt", "max"),
    ("size_ratio", "size ratio", "mean"),
    ("smaller_half", "< half side", "mean"),
    ("larger_double", "> double side", "mean"),
    ("p_hat", "p^", "mean"),
    ("iou", "IoU", "mean"),
)


def _window_value(xs: list[int], ys: list[float], low: float, high: float, how: str) -> str:
    values = [y for x, y in zip(xs, ys) if low <= x < high]
    if not values:
        return "–"
    return f"{max(values) if how == 'max' else sum(values) / len(values):.2f}"


def table(runs: list[tuple[str, Path]], windows: int = 4) -> str:
    """Markdown table of the assignment statistics and lambda' per run, reading and training window."""
    lines = [
        "| run | reading | iterations | "
        + " | ".join(title for _, title, _ in TABLE_COLUMNS)
        + " | lambda' min / mean / max |",
        "|---|---|---|" + "---|" * (len(TABLE_COLUMNS) + 1),
    ]
    for label, folder in runs:
        series = read_series(folder / "metrics.json")
        last = max((max(xs) for xs, _ in series.values() if xs), default=0) + 1
        edges = [round(last * k / windows) for k in range(windows + 1)]
        for reading in READINGS:
            for low, high in zip(edges[:-1], edges[1:]):
                cells = [
                    _window_value(*series.get(f"iac.{reading}/{name}", ([], [])), low, high, how)
                    for name, _, how in TABLE_COLUMNS
                ]
                lam = " / ".join(
                    _window_value(*series.get(f"dc/lambda_norm_{s}", ([], [])), low, high, "mean")
                    for s in ("min", "mean", "max")
                )
                lines.append(f"| {label} | {reading} | {low}–{high - 1} | " + " | ".join(cells) + f" | {lam} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", metavar="LABEL:FOLDER", help="a run's output folder, with a legend label")
    ap.add_argument("--output", required=True, help="the picture to write (png)")
    ap.add_argument("--table", action="store_true", help="also print the statistics as a markdown table")
    args = ap.parse_args(argv)
    runs = []
    for spec in args.runs:
        label, sep, folder = spec.rpartition(":")
        runs.append((label if sep else Path(folder).name, Path(folder)))
    if len(runs) > len(STYLES):
        raise SystemExit(f"plot_statistics: at most {len(STYLES)} runs in one picture, got {len(runs)}")
    plot(runs, Path(args.output))
    print(args.output)
    if args.table:
        print(table(runs))


if __name__ == "__main__":
    main()
