"""Comparing trained variants against a baseline over seeds: the numbers, the table and the picture.

Input: each run's final metrics, ``{variant: {seed: {metric: value}}}``. Output: per variant and metric the
mean +- std over seeds; per variant against the baseline the paired per-seed differences with a 95%
t-interval (or, when only one seed pair exists, an interval from a bootstrap over images supplied by the
caller, see ``coco_bootstrap.py``) and a verdict: "better" / "worse" when the interval excludes 0,
"within noise" otherwise. :func:`comparison_markdown`, :func:`comparison_json` and :func:`plot_comparison`
render it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from .statistics import Interval, Summary, paired_t_interval, student_t_quantile, summarize, verdict

__all__ = [
    "MetricDifference",
    "Comparison",
    "compare_runs",
    "default_metrics",
    "extra_iou_thresholds",
    "comparison_markdown",
    "comparison_json",
    "plot_comparison",
]

STANDARD_ORDER = ("AP", "AP50", "AP75", "APs", "APm", "APl")


@dataclass
class MetricDifference:
    """variant - baseline for one metric: per-seed differences (seed -> value), the interval, the verdict."""

    per_seed: dict[int, float]
    interval: Interval | None
    verdict: str


@dataclass
class Comparison:
    baseline: str
    variants: list[str]  # every variant, the baseline first
    metrics: list[str]
    values: dict[str, dict[int, dict[str, float]]]
    summaries: dict[str, dict[str, Summary | None]] = field(default_factory=dict)
    differences: dict[str, dict[str, MetricDifference]] = field(default_factory=dict)
    confidence: float = 0.95
    lower_is_better: frozenset = frozenset()


def default_metrics(values: Mapping[str, Mapping[int, Mapping[str, float]]], per_category: bool = False) -> list[str]:
    """Metrics found in every run: COCO's six first, then the others in the order they appear;
    per-category ones (``AP-<class>``) only with ``per_category``."""
    runs = [m for per_seed in values.values() for m in per_seed.values()]
    if not runs:
        return []
    common = [k for k in runs[0] if all(k in r for r in runs[1:])]
    if not per_category:
        common = [k for k in common if "-" not in k.split("/")[-1]]
    std = [k for k in STANDARD_ORDER if k in common]
    return std + [k for k in common if k not in std]


def _finite(x: float) -> bool:
    return x is not None and math.isfinite(x)


def compare_runs(
    values: Mapping[str, Mapping[int, Mapping[str, float]]],
    baseline: str,
    metrics: Sequence[str] | None = None,
    confidence: float = 0.95,
    bootstrap: Callable[[str, int], Mapping[str, Interval]] | None = None,
    lower_is_better: Sequence[str] = (),
) -> Comparison:
    """Summaries and paired differences of every variant against ``baseline``.

    Args:
        values: ``{variant: {seed: {metric: value}}}`` of finished runs (NaN values are left out).
        baseline: the variant the others are compared with.
        metrics: which metrics (default :func:`default_metrics`).
        bootstrap: ``bootstrap(variant, seed) -> {metric: Interval}`` for a variant that shares exactly one
            seed with the baseline (a t-interval needs two); without it such a difference gets no interval.
        lower_is_better: metrics where a decrease is the improvement.
    """
    if baseline not in values:
        raise ValueError(f"compare_runs: baseline {baseline!r} has no runs (variants: {sorted(values)})")
    metrics = list(metrics) if metrics is not None else default_metrics(values)
    names = [baseline] + [v for v in values if v != baseline]
    comp = Comparison(
        baseline,
        names,
        metrics,
        {k: dict(v) for k, v in values.items()},
        confidence=confidence,
        lower_is_better=frozenset(lower_is_better),
    )
    for name in names:
        comp.summaries[name] = {}
        for m in metrics:
            xs = [r[m] for r in values[name].values() if _finite(r.get(m))]
            comp.summaries[name][m] = summarize(xs) if xs else None
    base = values[baseline]
    for name in names[1:]:
        comp.differences[name] = {}
        seeds = sorted(set(base) & set(values[name]))
        boot = None
        for m in metrics:
            pairs = [(s, base[s].get(m), values[name][s].get(m)) for s in seeds]
            pairs = [(s, b, v) for s, b, v in pairs if _finite(b) and _finite(v)]
            per_seed = {s: v - b for s, b, v in pairs}
            interval = None
            if len(pairs) >= 2:
                _, interval = paired_t_interval([b for _, b, _ in pairs], [v for _, _, v in pairs], confidence)
            elif len(pairs) == 1 and bootstrap is not None:
                if boot is None:
                    boot = bootstrap(name, pairs[0][0])
                interval = boot.get(m)
            if not pairs:
                text = "no common seed"
            elif interval is None:
                text = f"no interval ({len(pairs)} seed{'s' if len(pairs) > 1 else ''})"
            else:
                text = verdict(interval, higher_is_better=m not in lower_is_better)
            comp.differences[name][m] = MetricDifference(per_seed, interval, text)
    return comp


# ----------------------------------------------------------------------------------------------- rendering
def _fmt(x: float | None, digits: int = 1, sign: bool = False) -> str:
    if x is None or not math.isfinite(x):
        return "–"
    s = f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"
    return s.replace("-", "−")


def _fmt_summary(s: Summary | None, digits: int = 1) -> str:
    if s is None:
        return "–"
    if s.n < 2:
        return f"{_fmt(s.mean, digits)} (1 run)"
    return f"{_fmt(s.mean, digits)} ± {_fmt(s.std, digits)}"


def _fmt_interval(iv: Interval | None, digits: int = 1) -> str:
    return "–" if iv is None else f"[{_fmt(iv.low, digits, True)}, {_fmt(iv.high, digits, True)}]"


def comparison_markdown(comp: Comparison, header: str = "", digits: int = 1) -> str:
    """Markdown: mean +- std per variant and metric, then per variant a table of differences and verdicts."""
    lines = [header.rstrip(), ""] if header else []
    seeds_of = {v: sorted(comp.values[v]) for v in comp.variants}
    lines.append(
        f"Mean ± sample standard deviation over seeds (runs per variant: "
        f"{', '.join(f'{v} {len(seeds_of[v])}' for v in comp.variants)})."
    )
    lines.append("")
    lines.append("| variant | seeds | " + " | ".join(comp.metrics) + " |")
    lines.append("|---|---|" + "---|" * len(comp.metrics))
    for v in comp.variants:
        cells = [_fmt_summary(comp.summaries[v][m], digits) for m in comp.metrics]
        lines.append(f"| {v} | {' '.join(map(str, seeds_of[v]))} | " + " | ".join(cells) + " |")
    pct = f"{100 * comp.confidence:g}%"
    for v in comp.variants[1:]:
        diffs = comp.differences[v]
        methods = sorted({d.interval.method for d in diffs.values() if d.interval is not None})
        lines += ["", f"**{v} − {comp.baseline}** (paired by seed; {pct} interval: {'; '.join(methods) or 'none'})", ""]
        lines.append(f"| metric | {comp.baseline} | {v} | difference | {pct} interval | per seed | verdict |")
        lines.append("|---|---|---|---|---|---|---|")
        for m in comp.metrics:
            d = diffs[m]
            est = (
                d.interval.estimate
                if d.interval is not None
                else (sum(d.per_seed.values()) / len(d.per_seed) if d.per_seed else None)
            )
            per_seed = ", ".join(f"{_fmt(x, digits, True)}" for _, x in sorted(d.per_seed.items()))
            lines.append(
                f"| {m} | {_fmt_summary(comp.summaries[comp.baseline][m], digits)} | "
                f"{_fmt_summary(comp.summaries[v][m], digits)} | {_fmt(est, digits, True)} | "
                f"{_fmt_interval(d.interval, digits)} | {per_seed} | {d.verdict} |"
            )
        lines.append("")
        lines.append(f"Verdicts, {v} against {comp.baseline}:")
        for m in comp.metrics:
            d = diffs[m]
            lines.append(
                f"- {m}: {d.verdict}"
                + (
                    f" ({_fmt(d.interval.estimate, digits, True)} {_fmt_interval(d.interval, digits)})"
                    if d.interval
                    else ""
                )
            )
    return "\n".join(lines) + "\n"


def comparison_json(comp: Comparison) -> dict:
    """Everything in plain types: runs, summaries, differences (NaN/inf become None)."""

    def num(x):
        return float(x) if x is not None and math.isfinite(x) else None

    out = {
        "baseline": comp.baseline,
        "variants": comp.variants,
        "metrics": comp.metrics,
        "confidence": comp.confidence,
        "runs": {
            v: {str(s): {k: num(x) for k, x in r.items()} for s, r in sorted(comp.values[v].items())}
            for v in comp.variants
        },
        "summary": {
            v: {
                m: (None if s is None else {"n": s.n, "mean": num(s.mean), "std": num(s.std)})
                for m, s in comp.summaries[v].items()
            }
            for v in comp.variants
        },
        "differences": {},
    }
    for v, diffs in comp.differences.items():
        out["differences"][v] = {
            m: {
                "per_seed": {str(s): num(x) for s, x in sorted(d.per_seed.items())},
                "estimate": None if d.interval is None else num(d.interval.estimate),
                "low": None if d.interval is None else num(d.interval.low),
                "high": None if d.interval is None else num(d.interval.high),
                "method": None if d.interval is None else d.interval.method,
                "verdict": d.verdict,
            }
            for m, d in diffs.items()
        }
    return out


def plot_comparison(comp: Comparison, path: str, title: str = "") -> str:
    """One panel per metric: each run as a dot (colour = seed; a seed's runs joined by a thin line),
    each variant's mean with its 95% t-interval, and under each variant its paired difference."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = comp.metrics
    ncol = min(4, max(1, len(metrics)))
    nrow = math.ceil(len(metrics) / ncol)
    width = max(3.2, 1.2 + 1.1 * len(comp.variants))
    fig, axes = plt.subplots(nrow, ncol, figsize=(width * ncol, 3.6 * nrow), squeeze=False)
    seeds = sorted({s for v in comp.variants for s in comp.values[v]})
    cmap = plt.get_cmap("tab10")
    colour = {s: cmap(i % 10) for i, s in enumerate(seeds)}
    xs = {v: i for i, v in enumerate(comp.variants)}
    for ax, m in zip(axes.ravel(), metrics):
        for s in seeds:
            pts = [(xs[v], comp.values[v][s].get(m)) for v in comp.variants if s in comp.values[v]]
            pts = [(x, y) for x, y in pts if _finite(y)]
            if len(pts) > 1:
                ax.plot(*zip(*pts), color=colour[s], lw=0.6, alpha=0.5, zorder=1)
            if pts:
                ax.scatter(*zip(*pts), color=colour[s], s=22, zorder=2, label=f"seed {s}")
        for v in comp.variants:
            sm = comp.summaries[v][m]
            if sm is None:
                continue
            half = 0.0
            if sm.n >= 2:
                half = student_t_quantile(comp.confidence, sm.n - 1) * sm.std / math.sqrt(sm.n)
            ax.errorbar(
                xs[v] + 0.18, sm.mean, yerr=half if half else None, fmt="D", color="black", ms=5, capsize=4, zorder=3
            )
        labels, colours = [], []
        for v in comp.variants:
            if v == comp.baseline:
                labels.append(v if v == "baseline" else f"{v}\n(baseline)")
                colours.append("black")
                continue
            d = comp.differences[v][m]
            colours.append({"better": "green", "worse": "red"}.get(d.verdict, "dimgray"))
            if d.interval is None:
                labels.append(f"{v}\n{d.verdict}")
            else:
                labels.append(f"{v}\n{_fmt(d.interval.estimate, 1, True)} {_fmt_interval(d.interval)}\n{d.verdict}")
        ax.set_xticks(range(len(comp.variants)))
        ax.set_xticklabels(labels, fontsize=8)
        for tick, c in zip(ax.get_xticklabels(), colours):
            tick.set_color(c)
        ax.set_xlim(-0.5, len(comp.variants) - 0.3)
        ax.set_title(m, fontsize=11)
        ax.grid(axis="y", alpha=0.3)
    for ax in axes.ravel()[len(metrics) :]:
        ax.axis("off")
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="upper right", fontsize=8, ncol=min(len(seeds), 6))
    fig.suptitle(
        (title + "\n" if title else "")
        + f"dots: runs (colour = seed); diamonds: mean ± {100 * comp.confidence:g}% t-interval; "
        f"under each variant: paired difference to {comp.baseline} and verdict",
        fontsize=9,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


_EXTRA_IOU = re.compile(r"^AP(\d\d)$")


def extra_iou_thresholds(metrics: Sequence[str]) -> list[float]:
    """IoU thresholds of ``AP<nn>`` metrics beyond COCO's AP50/AP75 (e.g. AP90 -> 0.9)."""
    out = []
    for m in metrics:
        hit = _EXTRA_IOU.match(m.split("/")[-1])
        if hit and hit.group(1) not in ("50", "75"):
            out.append(int(hit.group(1)) / 100)
    return out
