"""Printing and flattening evaluation results."""

from __future__ import annotations

import logging
from collections import abc

__all__ = ["print_csv_format", "flatten_results_dict"]

logger = logging.getLogger(__name__)


def print_csv_format(results: dict) -> None:
    """Log ``{task: {metric: value}}`` as copy-paste-friendly CSV lines.

    Metrics whose name contains "-" are per-category (e.g. ``AP-person``) and are left out to keep
    the line short; non-dict task values are printed as ``task=value``.
    """
    if not isinstance(results, abc.Mapping):
        raise TypeError(f"print_csv_format: expected a dict of results, got {type(results).__name__}")
    for task, res in results.items():
        if isinstance(res, abc.Mapping):
            important = [(k, v) for k, v in res.items() if "-" not in k]
            logger.info("copypaste: Task: %s", task)
            logger.info("copypaste: %s", ",".join(k for k, _ in important))
            logger.info("copypaste: %s", ",".join(f"{float(v):.4f}" for _, v in important))
        else:
            logger.info("copypaste: %s=%s", task, res)


def flatten_results_dict(results: dict) -> dict:
    """``{"bbox": {"AP": 1.0}}`` -> ``{"bbox/AP": 1.0}`` (nested dicts joined with "/")."""
    out = {}
    for k, v in results.items():
        if isinstance(v, abc.Mapping):
            for kk, vv in flatten_results_dict(v).items():
                out[f"{k}/{kk}"] = vv
        else:
            out[k] = v
    return out
