"""Pictures made from numbers: training curves, dataset statistics, precision-recall curves, confusion matrices.

Every function writes one PNG with matplotlib's non-interactive backend and returns its path. Colours come from
qualitative palettes (tab10 / tab20) so that lines in one panel are told apart, and plotted values carry labels.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "read_metrics",
    "merge_lr_history",
    "plot_metrics",
    "plot_dataset_statistics",
    "plot_pr_curves",
    "plot_confusion_matrix",
]

logger = logging.getLogger(__name__)

# Scalars of metrics.json that are timings, not curves.
_SKIP = {"iteration", "data_time", "time", "eta_seconds"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _colors(n: int) -> list:
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _save(fig, output_file: str) -> str:
    directory = os.path.dirname(os.path.abspath(output_file))
    os.makedirs(directory, exist_ok=True)
    fig.savefig(output_file, dpi=100)
    _pyplot().close(fig)
    return output_file


# ---------------------------------------------------------------------------- training curves
def read_metrics(metrics_file: str) -> dict[str, tuple[list[int], list[float]]]:
    """``{scalar: (iterations, values)}`` from a metrics.json (one JSON object per line; a broken line, such as
    the half-written last line of an interrupted run, is skipped). Non-finite values are left out."""
    series: dict[str, tuple[list[int], list[float]]] = {}
    with open(metrics_file, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            it = rec.get("iteration")
            if not isinstance(rec, dict) or it is None:
                continue
            for k, v in rec.items():
                if k in _SKIP or isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                    continue
                xs, ys = series.setdefault(k, ([], []))
                xs.append(int(it))
                ys.append(float(v))
    return series


def merge_lr_history(
    logged: tuple[list[int], list[float]], lr_history: Sequence[tuple[float, int]]
) -> tuple[list[int], list[float]]:
    """The LR at every iteration of ``lr_history`` (``(lr, iteration)`` pairs of the event storage), and the
    logged values of metrics.json for earlier iterations (a resumed run's storage starts at its resume point)."""
    merged = dict(zip(*logged))
    merged.update({int(it): float(v) for v, it in lr_history})
    pairs = sorted(merged.items())
    return [it for it, _ in pairs], [v for _, v in pairs]


def _metric_family(key: str) -> str:
    """``bbox/AP50`` -> ``bbox: AP, AP50, AP75``; ``bbox/APs`` -> ``bbox: AP by object size``; ``bbox/AP-cat`` ->
    ``bbox: AP per class``; other keys group by their prefix."""
    task, _, name = key.rpartition("/")
    prefix = f"{task}: " if task else ""
    if re.fullmatch(r"AP[sml]", name):
        return prefix + "AP by object size (s < 32², m < 96² px)"
    if name.startswith("AP-"):
        return prefix + "AP per class"
    if re.fullmatch(r"AP\d*|mAP\d*", name):
        return prefix + "AP (IoU .50:.95, .50, .75)"
    return prefix + "other metrics" if task else "other metrics"


def _metric_order(key: str) -> tuple:
    """AP, AP50, AP75 and APs, APm, APl in the usual order; others alphabetically after them."""
    name = key.rpartition("/")[2]
    usual = ["AP", "AP50", "AP75", "APs", "APm", "APl"]
    return (usual.index(name), "") if name in usual else (len(usual), name)


def _label(key: str) -> str:
    return key.rpartition("/")[2].removeprefix("AP-") or key


def _bars(ax, names: list[str], values: list[float], color=None) -> None:
    """Horizontal bars with their values written at their ends."""
    y = np.arange(len(names))
    colors = color if color is not None else _colors(len(names))
    ax.barh(y, values, color=colors)
    ax.set_yticks(y, names, fontsize=8)
    ax.invert_yaxis()
    top = max([v for v in values if math.isfinite(v)] + [1e-9])
    fmt = ".1f" if top >= 1 else ".3g"
    for yi, v in zip(y, values):
        ax.text(v + top * 0.01, yi, f"{v:{fmt}}", va="center", fontsize=8)
    ax.set_xlim(0, top * 1.15)
    ax.grid(axis="x", alpha=0.3)


def _lines(ax, data: dict[str, tuple[list[int], list[float]]], log: bool = False) -> None:
    """One line per series in distinct colours, the last value written at the end of each line."""
    for color, (k, (xs, ys)) in zip(_colors(len(data)), sorted(data.items(), key=lambda kv: _metric_order(kv[0]))):
        ax.plot(xs, ys, color=color, marker="o" if len(xs) < 20 else None, markersize=3, label=_label(k), lw=1.4)
        ax.annotate(
            f"{ys[-1]:.3g}", (xs[-1], ys[-1]), textcoords="offset points", xytext=(4, 0), fontsize=7, color=color
        )
    ax.margins(x=0.08)  # room for the value labels
    if log and all(y > 0 for _, ys in data.values() for y in ys):
        ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2 if len(data) > 4 else 1, loc="best")


def plot_metrics(
    metrics_file: str, output_file: str, lr_history: Sequence[tuple[float, int]] | None = None
) -> str | None:
    """Plot a metrics.json into ``output_file``: losses, the learning rate per iteration, other training
    statistics, and one panel per family of evaluation metrics (AP / AP by size / AP per class ...).

    Args:
        lr_history: ``(lr, iteration)`` of every iteration (the trainer's event storage); metrics.json only
            holds the LR every ``log_period`` iterations, so without it the LR is drawn at those points.

    Returns the path, or None when there is nothing to plot.
    """
    if not os.path.isfile(metrics_file):
        logger.warning(f"plot_metrics: {metrics_file} does not exist; nothing to plot")
        return None
    series = read_metrics(metrics_file)
    if lr_history:
        series["lr"] = merge_lr_history(series.get("lr", ([], [])), lr_history)
    if not series:
        return None
    # Evaluation metrics are put a few times per run; training scalars at (nearly) every log period.
    n_train = max((len(xs) for k, (xs, _) in series.items() if "loss" in k), default=0)
    losses = {k: v for k, v in series.items() if "loss" in k}
    lr = {k: v for k, v in series.items() if k == "lr"}
    rest = {k: v for k, v in series.items() if k not in losses and k not in lr}
    stats = {k: v for k, v in rest.items() if len(v[0]) > 2 and len(v[0]) >= n_train / 2 and "/" in k}
    families: dict[str, dict] = {}
    for k, v in rest.items():
        if k not in stats:
            families.setdefault(_metric_family(k), {})[k] = v
    panels: list[tuple[str, Any]] = []
    if losses:
        panels.append(("losses (log scale)", lambda ax: _lines(ax, losses, log=True)))
    if lr:
        xs, ys = lr["lr"]

        def draw_lr(ax, xs=xs, ys=ys):
            ax.plot(xs, ys, color="tab:blue", lw=1.4, drawstyle="steps-post" if len(xs) > 50 else "default")
            ax.annotate(f"{ys[-1]:.3g}", (xs[-1], ys[-1]), textcoords="offset points", xytext=(4, 0), fontsize=7)
            ax.set_xlabel("iteration")
            ax.grid(alpha=0.3)
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))

        panels.append((f"learning rate ({'every iteration' if lr_history else 'at logged iterations'})", draw_lr))
    if stats:
        panels.append(("training statistics", lambda ax: _lines(ax, stats)))
    for family, data in sorted(families.items()):
        single = all(len(xs) == 1 for xs, _ in data.values())
        if single:
            it = next(iter(data.values()))[0][0]
            if "per class" in family:
                items = sorted(data.items(), key=lambda kv: -kv[1][1][0])  # best class first
            else:
                items = sorted(data.items(), key=lambda kv: _metric_order(kv[0]))

            def draw_bars(ax, items=items):
                _bars(ax, [_label(k) for k, _ in items], [v[1][0] for _, v in items])

            panels.append((f"{family} at iteration {it}", draw_bars))
        else:
            panels.append((family, lambda ax, data=data: _lines(ax, data)))

    plt = _pyplot()
    cols = 2 if len(panels) > 1 else 1
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(7.5 * cols, 3.8 * rows), squeeze=False)
    for ax, (title, draw) in zip(axes.flat, panels):
        draw(ax)
        ax.set_title(title, fontsize=10)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.tight_layout()
    return _save(fig, output_file)


# ---------------------------------------------------------------------------- dataset statistics
def plot_dataset_statistics(stats, output_file: str, title: str = "") -> str:
    """Boxes per class split into small / medium / large, and the histogram of box sizes (sqrt of area)
    with COCO's 32 and 96 px bounds. ``stats``: a `net_detr2.data.statistics.DatasetStatistics`."""
    plt = _pyplot()
    k = len(stats.class_names)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, max(3.8, 0.32 * k + 1.5)))
    y = np.arange(k)
    left = np.zeros(k)
    size_colors = ["tab:red", "tab:orange", "tab:green"]
    for j, (name, color) in enumerate(zip(("small", "medium", "large"), size_colors)):
        ax1.barh(y, stats.sizes[:, j], left=left, color=color, label=name)
        left += stats.sizes[:, j]
    top = max(left.max(), 1)
    for yi, n, img in zip(y, stats.instances, stats.images_with_class):
        ax1.text(n + top * 0.01, yi, f"{int(n)} ({int(img)} img)", va="center", fontsize=8)
    ax1.set_yticks(y, stats.class_names, fontsize=8)
    ax1.invert_yaxis()
    ax1.set_xlim(0, top * 1.25)
    ax1.set_xlabel("boxes")
    ax1.legend(fontsize=8, loc="lower right")
    shares = stats.size_shares() * 100
    ax1.set_title(
        f"{stats.total_instances} boxes in {stats.num_images} images: "
        f"{shares[0]:.0f}% small, {shares[1]:.0f}% medium, {shares[2]:.0f}% large",
        fontsize=10,
    )
    ax1.grid(axis="x", alpha=0.3)
    sizes = stats.box_sqrt_areas
    if len(sizes):
        bins = np.linspace(0, max(sizes.max(), 100.0) * 1.02, 40)
        ax2.hist(sizes, bins=bins, color="tab:blue", alpha=0.8)
        for bound in (32, 96):
            ax2.axvline(bound, color="k", ls="--", lw=1)
            ax2.text(bound, ax2.get_ylim()[1] * 0.95, f" {bound}px", fontsize=8)
    ax2.set_xlabel("box size: sqrt(width x height) in pixels")
    ax2.set_ylabel("boxes")
    ax2.set_title("box sizes", fontsize=10)
    ax2.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return _save(fig, output_file)


# ---------------------------------------------------------------------------- evaluation pictures
def plot_pr_curves(
    recall: np.ndarray,
    precisions: dict[str, np.ndarray],
    aps: dict[str, float],
    output_file: str,
    title: str,
    highlight: str | None = None,
) -> str:
    """Precision against recall, one line per entry of ``precisions`` (labelled with its AP from ``aps``).

    ``highlight`` (e.g. "all classes") is drawn thick and black; the others in distinct colours.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 6))
    others = [k for k in precisions if k != highlight]
    for color, name in zip(_colors(len(others)), others):
        ax.plot(recall, precisions[name], color=color, lw=1.3, label=f"{name} (AP {aps[name]:.1f})")
    if highlight in precisions:
        ax.plot(recall, precisions[highlight], color="k", lw=2.5, label=f"{highlight} (AP {aps[highlight]:.1f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left", ncol=2 if len(precisions) > 12 else 1)
    fig.tight_layout()
    return _save(fig, output_file)


def plot_confusion_matrix(matrix: np.ndarray, labels: Sequence[str], output_file: str, title: str) -> str:
    """A confusion matrix (rows: ground truth, columns: prediction) with counts in the cells and colours
    by row share, so that rare classes are as readable as frequent ones."""
    plt = _pyplot()
    n = len(labels)
    size = max(5.0, 0.55 * n + 2)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    row_sum = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, row_sum, out=np.zeros(matrix.shape, dtype=float), where=row_sum > 0)
    im = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            if matrix[i, j]:
                ax.text(
                    j,
                    i,
                    str(int(matrix[i, j])),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if shares[i, j] > 0.6 else "black",
                )
    ax.set_xticks(range(n), labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("ground truth")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of the row")
    fig.tight_layout()
    return _save(fig, output_file)
