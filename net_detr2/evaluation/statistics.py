"""Statistics for comparing training runs: Student-t quantiles, mean +- std, paired t-intervals and the
verdict "better / worse / within noise".

Pure functions of plain numbers (no torch): the multi-seed comparison (``comparison.py``) and its tests
use them directly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "student_t_cdf_two_sided",
    "student_t_quantile",
    "Summary",
    "summarize",
    "Interval",
    "paired_t_interval",
    "percentile_interval",
    "verdict",
]


def student_t_cdf_two_sided(t: float, dof: int) -> float:
    """``P(|T| <= t)`` for Student's t with an integer number of degrees of freedom ``dof >= 1``.

    Closed form for integer ``dof`` (a finite series in ``cos(theta)``, ``theta = atan(t / sqrt(dof))``;
    Abramowitz & Stegun 26.7.3-4): exact to rounding, no special functions needed.
    """
    if int(dof) != dof or dof < 1:
        raise ValueError(f"student_t_cdf_two_sided: dof must be an integer >= 1, got {dof!r}")
    dof = int(dof)
    t = abs(float(t))
    if math.isinf(t):
        return 1.0
    theta = math.atan(t / math.sqrt(dof))
    c2 = math.cos(theta) ** 2
    if dof % 2 == 1:
        # (2/pi) [theta + sin(theta) cos(theta) (1 + 2/3 c2 + 2*4/(3*5) c2^2 + ... up to c2^((dof-3)/2))]
        series, term = 0.0, 1.0
        for k in range((dof - 1) // 2):
            series += term
            term *= c2 * (2 * k + 2) / (2 * k + 3)
        return (2.0 / math.pi) * (theta + math.sin(theta) * math.cos(theta) * series)
    # sin(theta) (1 + 1/2 c2 + 1*3/(2*4) c2^2 + ... up to c2^((dof-2)/2))
    series, term = 0.0, 1.0
    for k in range(dof // 2):
        series += term
        term *= c2 * (2 * k + 1) / (2 * k + 2)
    return math.sin(theta) * series


def student_t_quantile(confidence: float, dof: int) -> float:
    """The ``t`` with ``P(|T| <= t) = confidence`` (e.g. 0.95 -> the 97.5% quantile), by bisection.

    >>> round(student_t_quantile(0.95, 2), 3)
    4.303
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"student_t_quantile: confidence must be in (0, 1), got {confidence!r}")
    lo, hi = 0.0, 1.0
    while student_t_cdf_two_sided(hi, dof) < confidence:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if student_t_cdf_two_sided(mid, dof) < confidence:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


@dataclass(frozen=True)
class Summary:
    """``n`` values: their mean and sample standard deviation (``n - 1`` in the denominator; NaN when
    ``n < 2``)."""

    n: int
    mean: float
    std: float


def _finite(values: Sequence[float], what: str) -> list[float]:
    out = [float(v) for v in values]
    bad = [v for v in out if not math.isfinite(v)]
    if bad:
        raise ValueError(f"{what}: values must be finite, got {bad[0]!r} in {out}")
    return out


def summarize(values: Sequence[float]) -> Summary:
    """Mean and sample standard deviation of finite ``values`` (at least one)."""
    v = _finite(values, "summarize")
    if not v:
        raise ValueError("summarize: no values")
    n = len(v)
    mean = math.fsum(v) / n
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in v) / (n - 1)) if n > 1 else float("nan")
    return Summary(n, mean, std)


@dataclass(frozen=True)
class Interval:
    """An estimate with a confidence interval ``[low, high]``; ``method`` says how it was made."""

    estimate: float
    low: float
    high: float
    confidence: float
    method: str

    def excludes_zero(self) -> bool:
        return self.low > 0.0 or self.high < 0.0


def paired_t_interval(
    baseline: Sequence[float], variant: Sequence[float], confidence: float = 0.95
) -> tuple[list[float], Interval]:
    """Per-pair differences ``variant - baseline`` and the t-interval of their mean.

    The pairs share a seed, so each difference removes what that seed does to both runs. The interval is
    ``mean +- t_{(1+confidence)/2, n-1} * sd / sqrt(n)``; it needs at least two pairs.
    """
    b = _finite(baseline, "paired_t_interval(baseline)")
    v = _finite(variant, "paired_t_interval(variant)")
    if len(b) != len(v):
        raise ValueError(f"paired_t_interval: {len(b)} baseline values but {len(v)} variant values")
    if len(b) < 2:
        raise ValueError(
            f"paired_t_interval: needs at least 2 pairs (seeds), got {len(b)}; "
            "with one pair use a bootstrap over images"
        )
    diffs = [y - x for x, y in zip(b, v)]
    s = summarize(diffs)
    half = student_t_quantile(confidence, s.n - 1) * s.std / math.sqrt(s.n)
    return diffs, Interval(s.mean, s.mean - half, s.mean + half, confidence, f"paired t, {s.n} seeds")


def percentile_interval(
    estimate: float, samples: Sequence[float], confidence: float = 0.95, method: str = ""
) -> Interval:
    """``estimate`` with the central ``confidence`` percentile interval of bootstrap ``samples``."""
    s = sorted(_finite(samples, "percentile_interval"))
    if not s:
        raise ValueError("percentile_interval: no samples")
    alpha = (1.0 - confidence) / 2.0

    def q(p: float) -> float:  # linear interpolation between order statistics
        pos = p * (len(s) - 1)
        i = int(math.floor(pos))
        j = min(i + 1, len(s) - 1)
        return s[i] + (s[j] - s[i]) * (pos - i)

    return Interval(float(estimate), q(alpha), q(1.0 - alpha), confidence, method or f"bootstrap, {len(s)} resamples")


def verdict(interval: Interval, higher_is_better: bool = True) -> str:
    """``"better"`` / ``"worse"`` when the interval of (variant - baseline) excludes 0, else ``"within noise"``."""
    if not interval.excludes_zero():
        return "within noise"
    up = interval.low > 0.0
    return "better" if up == higher_is_better else "worse"
