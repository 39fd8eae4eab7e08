#!/usr/bin/env python
"""Error analysis of an evaluation: precision-recall curves per class and overall, and a confusion matrix
with the background, as pictures.

    python train_net.py --config-file cfg.py --eval-only train.init_checkpoint=model.pth train.output_dir=out
    python tools/error_analysis.py --input out/coco_instances_results.json --dataset shapes_val --output out/errors

Writes into ``--output``:
* ``pr_curves_AP50.png``: precision against recall at IoU 0.5 for every class and for all classes (their mean,
  COCO's AP50 curve), each labelled with its AP;
* ``pr_curves_AP.png``: the same averaged over IoU 0.50:0.95 (COCO's AP);
* ``confusion_matrix.png``: rows = ground-truth class, columns = predicted class, plus "background": a prediction
  matched to no object counts in the background row (false positive), an object matched by no prediction in the
  background column (missed). Predictions scoring >= ``--score-threshold`` are matched greedily in score order at
  IoU >= ``--iou-threshold``, whatever their class, so class confusions show off the diagonal;
* ``summary.txt``: AP / AP50 per class and the matrix's counts per class.
``--config-file`` is loaded first so that datasets the config registers are known.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from tabulate import tabulate  # noqa: E402

from net_detr2.evaluation.error_analysis import (  # noqa: E402
    add_results_arguments,
    confusion_matrix,
    precision_recall,
    results_from_arguments,
    results_to_instances,
)
from net_detr2.utils.logger import setup_logger  # noqa: E402
from net_detr2.utils.plotting import plot_confusion_matrix, plot_pr_curves  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_results_arguments(p)
    p.add_argument("--output", required=True, help="folder for the pictures")
    p.add_argument("--iou-threshold", type=float, default=0.5, help="confusion matrix: IoU of a match")
    p.add_argument("--score-threshold", type=float, default=0.5, help="confusion matrix: lowest score counted")
    args = p.parse_args(argv)
    setup_logger(name="net_detr2")
    records = results_from_arguments(p, args)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)

    pr = precision_recall(records, args.dataset)
    at50 = int(abs(pr["iou"] - 0.5).argmin())
    curves50 = {n: _mean_valid(pr["precision"][at50, :, k][None]) for k, n in enumerate(pr["classes"])}
    curves = {n: _mean_valid(pr["precision"][:, :, k]) for k, n in enumerate(pr["classes"])}
    curves50["all classes"] = _mean_valid(pr["precision"][at50].T)
    curves["all classes"] = _mean_valid(pr["precision"].transpose(0, 2, 1).reshape(-1, len(pr["recall"])))
    n = len(records)
    plot_pr_curves(
        pr["recall"],
        curves50,
        pr["ap50"],
        str(out / "pr_curves_AP50.png"),
        f"{args.dataset}: precision-recall at IoU 0.5 ({n} detections)",
        highlight="all classes",
    )
    plot_pr_curves(
        pr["recall"],
        curves,
        pr["ap"],
        str(out / "pr_curves_AP.png"),
        f"{args.dataset}: precision-recall averaged over IoU 0.50:0.95 ({n} detections)",
        highlight="all classes",
    )

    matrix, labels = confusion_matrix(
        results_to_instances(records, args.dataset), args.dataset, args.iou_threshold, args.score_threshold
    )
    plot_confusion_matrix(
        matrix,
        labels,
        str(out / "confusion_matrix.png"),
        f"{args.dataset}: confusion at IoU >= {args.iou_threshold:g}, score >= {args.score_threshold:g}",
    )
    k = len(labels) - 1
    rows = []
    for i, name in enumerate(labels[:-1]):
        objects = int(matrix[i].sum())
        rows.append(
            [
                name,
                pr["ap"].get(name, float("nan")),
                pr["ap50"].get(name, float("nan")),
                objects,
                int(matrix[i, i]),
                int(matrix[i, :k].sum() - matrix[i, i]),
                int(matrix[i, k]),
                int(matrix[k, i]),
            ]
        )
    rows.append(
        [
            "all classes",
            pr["ap"]["all classes"],
            pr["ap50"]["all classes"],
            *[sum(r[j] for r in rows) for j in range(3, 8)],
        ]
    )
    headers = ["class", "AP", "AP50", "objects", "found", "as another class", "missed", "false positives"]
    summary = (
        f"{args.input} on {args.dataset}: confusion at IoU >= {args.iou_threshold:g}, "
        f"score >= {args.score_threshold:g}\n" + tabulate(rows, headers=headers, tablefmt="pipe", floatfmt=".1f")
    )
    print(summary)
    (out / "summary.txt").write_text(summary + "\n")
    print(f"Wrote {out / 'pr_curves_AP50.png'}, {out / 'pr_curves_AP.png'}, {out / 'confusion_matrix.png'}")
    return {"matrix": matrix, "labels": labels, "ap": pr["ap"], "ap50": pr["ap50"]}


def _mean_valid(curves):
    """Mean over rows of precision curves, ignoring -1 (no ground truth) entries; (R,)."""
    import numpy as np

    curves = np.asarray(curves, dtype=float)
    valid = curves > -1
    return np.where(valid.any(0), np.where(valid, curves, 0).sum(0) / np.maximum(valid.sum(0), 1), np.nan)


if __name__ == "__main__":
    main()
