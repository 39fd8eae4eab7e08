"""net_detr2.utils.plotting: the curves' panels group metrics by family, the LR is drawn per iteration, and every
picture is written."""

from __future__ import annotations

import json

import numpy as np

from net_detr2.utils import plotting


def test_metric_families():
    family = plotting._metric_family
    assert family("bbox/AP") == family("bbox/AP50") == family("bbox/AP75")
    assert family("bbox/APs") == family("bbox/APl") != family("bbox/AP")
    assert family("bbox/AP-fish") == family("bbox/AP-shark") == "bbox: AP per class"
    assert family("tt100k/recall") == "tt100k: other metrics"
    assert sorted(["bbox/APl", "bbox/AP75", "bbox/APs", "bbox/AP", "bbox/x"], key=plotting._metric_order) == [
        "bbox/AP",
        "bbox/AP75",
        "bbox/APs",
        "bbox/APl",
        "bbox/x",
    ]


def test_lr_history_fills_every_iteration():
    logged = ([19, 39, 59], [0.1, 0.2, 0.3])  # metrics.json: every 20 iterations
    history = [(0.01 * i, i) for i in range(40, 60)]  # a run resumed at iteration 40
    xs, ys = plotting.merge_lr_history(logged, history)
    assert xs == [19, 39, *range(40, 60)]
    assert ys[:2] == [0.1, 0.2] and ys[-1] == 0.59  # the storage's value wins over the logged one at 59


def test_plot_metrics_reads_and_draws(tmp_path):
    lines = [
        {"iteration": i, "total_loss": 2.0 / (i + 1), "loss_cls": 1.0 / (i + 1), "lr": 0.01} for i in range(0, 60, 20)
    ]
    lines += [{"iteration": 59, "bbox/AP": 30.0, "bbox/AP50": 50.0, "bbox/APs": float("nan"), "bbox/AP-a": 10.0}]
    metrics = tmp_path / "metrics.json"
    metrics.write_text("\n".join(json.dumps(x) for x in lines) + "\n{half-written")
    series = plotting.read_metrics(str(metrics))
    assert series["bbox/AP"] == ([59], [30.0]) and "bbox/APs" not in series  # NaN left out, broken line skipped
    out = plotting.plot_metrics(str(metrics), str(tmp_path / "curves.png"), lr_history=[(0.01, i) for i in range(60)])
    assert out and (tmp_path / "curves.png").stat().st_size > 10_000


def test_statistics_and_evaluation_pictures(tmp_path):
    from net_detr2.data.statistics import dataset_statistics
    from net_detr2.structures import BoxMode

    dicts = [{"annotations": [{"bbox": [0, 0, 50, 40], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 1}]}]
    stats = dataset_statistics(dicts, ["a", "b"])
    assert plotting.plot_dataset_statistics(stats, str(tmp_path / "s.png"))
    recall = np.linspace(0, 1, 101)
    assert plotting.plot_pr_curves(recall, {"a": 1 - recall, "all": 1 - recall / 2}, {"a": 50.0, "all": 75.0},
                                   str(tmp_path / "pr.png"), "t", highlight="all")  # fmt: skip
    assert plotting.plot_confusion_matrix(np.array([[3, 1], [0, 0]]), ["a", "background"], str(tmp_path / "c.png"), "t")
    for name in ("s.png", "pr.png", "c.png"):
        assert (tmp_path / name).stat().st_size > 5_000
