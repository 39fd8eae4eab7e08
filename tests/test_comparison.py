"""The multi-seed comparison protocol: statistics against hand-computed values, the bootstrap over images
against pycocotools and a known answer, seeds that make runs differ and reproduce, and a real sweep of two
tiny configs x 2 seeds that is killed after its first run and resumed (``tools/compare.py``)."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from net_detr2.engine.sweep import Sweep, SweepSpecError, Variant, flat_metrics, parse_variant
from net_detr2.evaluation.comparison import compare_runs, comparison_json, comparison_markdown, plot_comparison
from net_detr2.evaluation.statistics import (
    paired_t_interval,
    percentile_interval,
    student_t_cdf_two_sided,
    student_t_quantile,
    summarize,
    verdict,
)

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------------ statistics
@pytest.mark.parametrize(
    "dof,q95,q99",
    [
        (1, 12.7062, 63.6567),
        (2, 4.3027, 9.9248),
        (3, 3.1824, 5.8409),
        (4, 2.7764, 4.6041),
        (9, 2.2622, 3.2498),
        (29, 2.0452, 2.7564),
    ],
)
def test_t_quantiles_match_the_tables(dof, q95, q99):
    assert student_t_quantile(0.95, dof) == pytest.approx(q95, abs=1e-4)
    assert student_t_quantile(0.99, dof) == pytest.approx(q99, abs=1e-4)
    # dof 1 is the Cauchy law: P(|T| <= 1) = 1/2
    assert student_t_cdf_two_sided(1.0, 1) == pytest.approx(0.5)
    assert student_t_cdf_two_sided(0.0, dof) == 0.0
    with pytest.raises(ValueError, match="dof must be an integer >= 1"):
        student_t_quantile(0.95, 0)


def test_mean_std_and_paired_t_interval_by_hand():
    s = summarize([1.0, 2.0, 4.0])
    assert (s.n, s.mean, s.std) == (3, pytest.approx(7 / 3), pytest.approx(math.sqrt(7 / 3)))
    assert math.isnan(summarize([5.0]).std)
    # diffs 1.0, 1.5, 0.5: mean 1, sd 0.5, half-width 4.302653 * 0.5 / sqrt(3) = 1.242068
    diffs, iv = paired_t_interval([40.0, 41.0, 39.5], [41.0, 42.5, 40.0])
    assert diffs == [1.0, 1.5, 0.5]
    assert (iv.estimate, iv.low, iv.high) == (
        1.0,
        pytest.approx(1 - 1.242068, abs=1e-6),
        pytest.approx(2.242068, abs=1e-6),
    )
    assert verdict(iv) == "within noise"
    # diffs 1.0, 1.2, 1.1, 0.9: mean 1.05, sd sqrt(0.05 / 3), half-width 3.182446 * sd / 2 = 0.205426
    _, iv = paired_t_interval([10, 10, 10, 10], [11.0, 11.2, 11.1, 10.9])
    assert (iv.low, iv.high) == (pytest.approx(0.844574, abs=1e-6), pytest.approx(1.255426, abs=1e-6))
    assert verdict(iv) == "better" and verdict(iv, higher_is_better=False) == "worse"
    _, iv = paired_t_interval([11.0, 11.2, 11.1, 10.9], [10, 10, 10, 10])
    assert verdict(iv) == "worse"
    with pytest.raises(ValueError, match="at least 2 pairs.*bootstrap over images"):
        paired_t_interval([1.0], [2.0])
    with pytest.raises(ValueError, match="3 baseline values but 2 variant values"):
        paired_t_interval([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="must be finite"):
        paired_t_interval([1, float("nan")], [1, 2])
    iv = percentile_interval(50.0, list(range(101)))
    assert (iv.low, iv.high) == (pytest.approx(2.5), pytest.approx(97.5))


def test_compare_runs_tables_json_and_picture(tmp_path):
    values = {
        "base": {
            0: {"AP": 40.0, "AP50": 60.0, "AP-cat": 1.0},
            1: {"AP": 41.0, "AP50": 61.0},
            2: {"AP": 39.5, "AP50": 59.0},
        },
        "v": {0: {"AP": 41.0, "AP50": 61.0}, 1: {"AP": 42.5, "AP50": 62.2}, 2: {"AP": 40.0, "AP50": 60.1}},
        "w": {0: {"AP": 30.0, "AP50": 50.0}, 1: {"AP": 31.0, "AP50": 50.5}},
    }
    comp = compare_runs(values, "base")
    assert comp.metrics == ["AP", "AP50"]  # per-category and metrics missing from some runs left out
    assert comp.summaries["v"]["AP"].mean == pytest.approx(41.166667, abs=1e-6)
    d = comp.differences["v"]["AP"]
    assert d.per_seed == {0: 1.0, 1: 1.5, 2: 0.5} and d.verdict == "within noise"
    assert comp.differences["v"]["AP50"].verdict == "better"  # diffs 1.0, 1.2, 1.1
    w = comp.differences["w"]["AP"]  # seeds 0 and 1 only: diffs -10, -10 -> sd 0 -> a point interval
    assert w.per_seed == {0: -10.0, 1: -10.0} and w.verdict == "worse" and w.interval.low == w.interval.high == -10.0
    md = comparison_markdown(comp, "## test")
    assert "| v | 0 1 2 | 41.2 ± 1.3 | 61.1 ± 1.1 |" in md
    assert "| AP | 40.2 ± 0.8 | 41.2 ± 1.3 | +1.0 | [−0.2, +2.2] | +1.0, +1.5, +0.5 | within noise |" in md
    assert "- AP50: better (+1.1 [+0.9, +1.3])" in md
    data = json.loads(json.dumps(comparison_json(comp)))
    assert data["differences"]["v"]["AP"]["low"] == pytest.approx(1 - 1.242068, abs=1e-6)
    assert data["runs"]["base"]["0"]["AP"] == 40.0
    png = plot_comparison(comp, str(tmp_path / "c.png"))
    assert os.path.getsize(png) > 10_000
    # one seed pair and a bootstrap: its interval is used
    from net_detr2.evaluation.statistics import Interval

    one = compare_runs(
        {"base": {3: {"AP": 40.0}}, "v": {3: {"AP": 45.0}}},
        "base",
        bootstrap=lambda v, s: {"AP": Interval(5.0, 1.0, 9.0, 0.95, "bootstrap")},
    )
    assert one.differences["v"]["AP"].verdict == "better"
    assert compare_runs({"base": {3: {"AP": 40.0}}, "v": {3: {"AP": 45.0}}}, "base").differences["v"]["AP"].verdict == (
        "no interval (1 seed)"
    )


# ------------------------------------------------------------------------------------------------ bootstrap
def _coco(gt: dict):
    from pycocotools.coco import COCO

    c = COCO()
    c.dataset = copy.deepcopy(gt)
    with contextlib.redirect_stdout(io.StringIO()):
        c.createIndex()
    return c


def _pycoco_stats(gt: dict, results: list) -> np.ndarray:
    from pycocotools.cocoeval import COCOeval

    c = _coco(gt)
    with contextlib.redirect_stdout(io.StringIO()):
        e = COCOeval(c, c.loadRes(copy.deepcopy(results)), "bbox")
        e.evaluate()
        e.accumulate()
        e.summarize()
    p = e.eval["precision"][np.isclose(e.params.iouThrs, 0.9)][..., 0, -1]
    return np.r_[e.stats[:6] * 100, 100 * p[p > -1].mean()]


def _noisy_detections(gt: dict, rng) -> list:
    res = []
    for a in gt["annotations"]:
        if rng.random() < 0.2:
            continue
        x, y, w, h = a["bbox"]
        j = rng.normal(0, 0.12, 4)
        cat = a["category_id"] if rng.random() > 0.1 else int(rng.integers(1, 7))
        res.append(
            {
                "image_id": a["image_id"],
                "category_id": cat,
                "score": float(rng.random()),
                "bbox": [x + j[0] * w, y + j[1] * h, w * math.exp(j[2]), h * math.exp(j[3])],
            }
        )
    for im in gt["images"]:
        for _ in range(2):
            res.append(
                {
                    "image_id": im["id"],
                    "category_id": int(rng.integers(1, 7)),
                    "score": float(rng.random() / 2),
                    "bbox": [float(rng.uniform(0, 250)), float(rng.uniform(0, 250)), 30.0, 20.0],
                }
            )
    return res


def test_per_image_accumulation_matches_pycocotools_with_weights():
    """All weights 1 give pycocotools' numbers; weights 2 and 0 give pycocotools' numbers on a dataset where
    those images are duplicated or removed (the accumulation a bootstrap resample needs)."""
    from net_detr2.data import DatasetCatalog, MetadataCatalog
    from net_detr2.evaluation.coco_bootstrap import PerImageCOCOEval

    DatasetCatalog.get("shapes_val")
    gt = json.loads(Path(MetadataCatalog.get("shapes_val").json_file).read_text())
    gt = dict(gt, images=gt["images"][:40], annotations=[a for a in gt["annotations"] if a["image_id"] <= 40])
    res = _noisy_detections(gt, np.random.default_rng(0))
    ev = PerImageCOCOEval(_coco(gt), res)
    names = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AP90"]
    m = ev.metrics(extra_iou_thresholds=[0.9])
    np.testing.assert_allclose([m[k][0] for k in names], _pycoco_stats(gt, res), rtol=1e-12, atol=1e-12)

    w = np.ones(len(ev.img_ids))
    w[:10], w[20:26] = 2, 0
    dup = copy.deepcopy(gt)
    keep = {i for i, x in zip(ev.img_ids, w) if x > 0}
    dup["images"] = [im for im in gt["images"] if im["id"] in keep]
    dup["annotations"] = [a for a in gt["annotations"] if a["image_id"] in keep]
    dup_res = [r for r in res if r["image_id"] in keep]
    for n, i in enumerate(i for i, x in zip(ev.img_ids, w) if x == 2):
        new_id = 1000 + n
        dup["images"].append(dict(next(im for im in gt["images"] if im["id"] == i), id=new_id))
        dup["annotations"] += [
            dict(a, image_id=new_id, id=10**6 + a["id"]) for a in gt["annotations"] if a["image_id"] == i
        ]
        dup_res += [dict(r, image_id=new_id) for r in res if r["image_id"] == i]
    mw = ev.metrics(np.stack([np.ones_like(w), w]), extra_iou_thresholds=[0.9])
    np.testing.assert_allclose([mw[k][1] for k in names], _pycoco_stats(dup, dup_res), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose([mw[k][0] for k in names], [m[k][0] for k in names])


def test_bootstrap_known_answer():
    """100 images, one object each. The baseline finds all (AP 100 in any resample); the variant finds those
    of images 1-50, so its AP is 100 * (1 + floor(100 p)) / 101 for the share p of such images in a
    resample: p ~ Binomial(100, 1/2) / 100 puts the 95% interval of the difference near [-59.4, -39.6]."""
    from net_detr2.evaluation.coco_bootstrap import PerImageCOCOEval, bootstrap_ap_difference

    gt = {
        "images": [{"id": i, "height": 100, "width": 100, "file_name": f"{i}.jpg"} for i in range(1, 101)],
        "annotations": [
            {"id": i, "image_id": i, "category_id": 1, "bbox": [10, 10, 50, 50], "area": 2500, "iscrowd": 0}
            for i in range(1, 101)
        ],
        "categories": [{"id": 1, "name": "a"}],
    }
    coco = _coco(gt)
    det = [{"image_id": i, "category_id": 1, "bbox": [10, 10, 50, 50], "score": 0.9} for i in range(1, 101)]
    base = PerImageCOCOEval(coco, det)
    var = PerImageCOCOEval(coco, det[:50])
    out = bootstrap_ap_difference(base, var, num_samples=2000, seed=0)
    ap = out["AP"]
    assert ap.estimate == pytest.approx(100 * 51 / 101 - 100)
    assert ap.low == pytest.approx(-59.4, abs=2.5) and ap.high == pytest.approx(-39.6, abs=2.5)
    assert verdict(ap) == "worse" and "APs" not in out  # no small object: no APs
    again = bootstrap_ap_difference(base, var, num_samples=2000, seed=0)["AP"]
    assert (again.low, again.high) == (ap.low, ap.high)
    same = bootstrap_ap_difference(base, PerImageCOCOEval(coco, det), num_samples=200, seed=1)["AP"]
    assert (same.estimate, same.low, same.high) == (0.0, 0.0, 0.0) and verdict(same) == "within noise"
    nothing = PerImageCOCOEval(coco, [])
    assert nothing.metrics()["AP"][0] == 0.0


# ------------------------------------------------------------------------------------------------ runs
TINY_CONFIG = """
import os

from net_detr2.config import LazyCall as L
from net_detr2.config import LazyConfig
from net_detr2.data import DatasetCatalog
from net_detr2.data import transforms as T
from net_detr2.data.datasets import register_coco_instances
from net_detr2.data.datasets.shapes import shapes_root
from net_detr2.solver import multistep_with_warmup

for _split in ("train", "val"):
    if f"tiny_shapes_{{_split}}" not in DatasetCatalog:
        register_coco_instances(
            f"tiny_shapes_{{_split}}", {{}}, os.path.join(os.path.dirname(__file__), f"tiny_{{_split}}.json"),
            str(shapes_root() / "VOC" / "JPEGImages"),
        )

_base = LazyConfig.load({base!r})
model, dataloader, optimizer, train = _base.model, _base.dataloader, _base.optimizer, _base.train
dataloader.train.dataset.names = "tiny_shapes_train"
dataloader.test.dataset.names = "tiny_shapes_val"
dataloader.train.mapper.augmentations = [
    L(T.ResizeShortestEdge)(short_edge_length=(96, 128), max_size=160, sample_style="choice"),
    L(T.RandomFlip)(horizontal=True),
]
dataloader.test.mapper.augmentations = [L(T.ResizeShortestEdge)(short_edge_length=96, max_size=160)]
dataloader.train.total_batch_size = 2
lr_multiplier = multistep_with_warmup(max_iter=2, steps=(1,), warmup_iters=1)
train.update(max_iter=2, eval_period=2, log_period=1, num_vis_images=0, plot_curves=False, tensorboard=False)
train.checkpointer.period = 1
"""


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    """The shapes Faster R-CNN at 96-128 px, 2 iterations, trained on 8 and evaluated on 2 validation images."""
    from net_detr2.data import DatasetCatalog, MetadataCatalog

    DatasetCatalog.get("shapes_val")
    gt = json.loads(Path(MetadataCatalog.get("shapes_val").json_file).read_text())
    d = tmp_path_factory.mktemp("tiny")
    for split, ids in (("train", range(1, 9)), ("val", (9, 10))):
        sub = dict(
            gt,
            images=[i for i in gt["images"] if i["id"] in ids],
            annotations=[a for a in gt["annotations"] if a["image_id"] in ids],
        )
        (d / f"tiny_{split}.json").write_text(json.dumps(sub))
    cfg = d / "tiny.py"
    cfg.write_text(TINY_CONFIG.format(base=str(REPO / "configs/shapes/faster_rcnn_R18_FPN.py")))
    return cfg


def test_seeds_make_runs_differ_and_reproduce(tiny_config, tmp_path):
    """Same seed: the same data order, initial and final weights (bit for bit); another seed: all differ."""
    import torch

    from net_detr2.config import LazyConfig
    from net_detr2.engine import DefaultTrainer

    def run(seed: int, out: str):
        cfg = LazyConfig.load(str(tiny_config))
        LazyConfig.apply_overrides(
            cfg, [f"train.seed={seed}", f"train.output_dir={tmp_path / out}", "train.eval_period=0"]
        )
        cfg.dataloader.pop("evaluator")
        trainer = DefaultTrainer(cfg)
        init = {k: v.clone() for k, v in trainer.model.state_dict().items()}
        loader = iter(trainer.build_train_loader(cfg))
        order = [[Path(x["file_name"]).name for x in next(loader)] for _ in range(3)]
        trainer.resume_or_load(resume=False)
        trainer.train()
        return init, order, trainer.model.state_dict()

    a, b, c = run(0, "a"), run(0, "b"), run(1, "c")
    assert a[1] == b[1] and a[1] != c[1]
    for k in a[0]:
        assert torch.equal(a[0][k], b[0][k]) and torch.equal(a[2][k], b[2][k]), k
    float_keys = [k for k in a[0] if a[0][k].is_floating_point() and a[0][k].numel() > 1 and "norm" not in k]
    assert all(not torch.equal(a[0][k], c[0][k]) for k in float_keys if "weight" in k)
    assert any(not torch.equal(a[2][k], c[2][k]) for k in float_keys)


def test_variant_parsing_and_spec_checks(tmp_path, tiny_config):
    cfg = str(tiny_config)
    assert parse_variant([cfg], default_name="baseline") == Variant("baseline", cfg, ())
    assert parse_variant([f"lr:{cfg}", "optimizer.lr=0.002"]) == Variant("lr", cfg, ("optimizer.lr=0.002",))
    assert parse_variant(["lr2:", "optimizer.lr=0.002"], default_config=cfg).config_file == cfg
    with pytest.raises(SweepSpecError, match="does not exist"):
        parse_variant(["x:nope.py"])
    with pytest.raises(SweepSpecError, match="train.seed is set by the sweep"):
        parse_variant([cfg, "train.seed=3"])
    with pytest.raises(SweepSpecError, match="names must be unique"):
        Sweep(tmp_path, [Variant("a", cfg), Variant("a", cfg)], [0])
    sweep = Sweep(tmp_path / "s", [Variant("base", cfg), Variant("v", cfg, ("optimizer.lr=0.002",))], [0, 1], threads=1)
    sweep.resolve_configs()
    sweep.check_and_save_spec()
    # more seeds and a new variant may join; other threads or a changed variant may not
    Sweep(
        tmp_path / "s",
        [Variant("base", cfg), Variant("v", cfg, ("optimizer.lr=0.002",)), Variant("x", cfg)],
        [0, 1, 2],
        threads=1,
    ).check_and_save_spec()
    assert json.loads((tmp_path / "s" / "sweep.json").read_text())["seeds"] == [0, 1, 2]
    with pytest.raises(SweepSpecError, match=r"threads \(OMP_NUM_THREADS\) were 1, now 2"):
        Sweep(tmp_path / "s", sweep.variants, [0, 1], threads=2).check_and_save_spec()
    changed = Sweep(tmp_path / "s", [Variant("base", cfg), Variant("v", cfg, ("optimizer.lr=0.003",))], [0, 1])
    with pytest.raises(SweepSpecError, match="variant 'v' was .*optimizer.lr=0.002.*now.*optimizer.lr=0.003"):
        changed.check_and_save_spec()
    with pytest.raises(SweepSpecError, match="variant 'v'.*optimizer.typo"):
        Sweep(tmp_path / "t", [Variant("base", cfg), Variant("v", cfg, ("optimizer.typo=1",))], [0]).resolve_configs()
    assert flat_metrics({"bbox": {"AP": 1, "AP-a": 2}}) == {"AP": 1.0, "AP-a": 2.0}
    assert flat_metrics({"bbox": {"AP": 1}, "sem": {"mIoU": 2}}) == {"bbox/AP": 1.0, "sem/mIoU": 2.0}


def test_sweep_resumes_after_a_kill(tiny_config, tmp_path):
    """Two tiny configs x 2 seeds through tools/compare.py: killed (the whole process group) once the first
    run has finished and the second has begun writing; the rerun skips the finished run, resumes the
    killed one, runs the others, and writes a complete table."""
    out = tmp_path / "sweep"
    args = [
        "--output-dir",
        str(out),
        "--baseline",
        str(tiny_config),
        "--variant",
        "lr2:",
        "optimizer.lr=0.002",
        "--seeds",
        "2",
        "--threads",
        "1",
        "--bootstrap",
        "0",
    ]
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "tools/compare.py"), *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    first = out / "baseline" / "seed0" / "final_results.json"
    second = out / "lr2" / "seed0"
    deadline = time.time() + 240
    try:
        while not (first.exists() and (second / "log.txt").exists()) and proc.poll() is None:
            assert time.time() < deadline, "the sweep did not get going"
            time.sleep(0.05)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    killed_log = proc.stdout.read().decode()
    assert "baseline/seed0: finished" in killed_log, killed_log
    before = first.read_bytes(), first.stat().st_mtime_ns
    second_done_before = (second / "final_results.json").exists()

    sys.path.insert(0, str(REPO / "tools"))
    try:
        import compare
    finally:
        sys.path.remove(str(REPO / "tools"))
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert compare.main([*args, "--jobs", "2"]) == 0
    log = buf.getvalue()
    started = sorted(line.split(":")[0].split("] ")[1] for line in log.splitlines() if ": start" in line)
    expected = ["baseline/seed1", "lr2/seed1"] + ([] if second_done_before else ["lr2/seed0"])
    assert started == sorted(expected), log
    assert "baseline/seed0: done, skipped" in log
    if not second_done_before:
        assert "lr2/seed0: start (resuming)" in log  # its folder existed: --resume, not a refused fresh run
    assert (first.read_bytes(), first.stat().st_mtime_ns) == before
    data = json.loads((out / "results.json").read_text())
    assert (
        data["complete"]
        and sorted(data["runs"]["lr2"]) == ["0", "1"]
        and sorted(data["runs"]["baseline"]) == ["0", "1"]
    )
    assert set(data["differences"]["lr2"]["AP"]["per_seed"]) == {"0", "1"}
    for s in (0, 1):
        for v in ("baseline", "lr2"):
            res = json.loads((out / v / f"seed{s}" / "final_results.json").read_text())
            assert res["seed"] == s and res["iteration"] == 2
            assert data["runs"][v][str(s)]["AP"] == pytest.approx(res["results"]["bbox"]["AP"])
    md = (out / "results.md").read_text()
    assert "**lr2 − baseline**" in md and "- AP: " in md and "optimizer.lr=0.002" in md
    assert (out / "comparison.png").stat().st_size > 10_000
    records = json.loads((out / "runs.json").read_text())
    assert set(expected) <= set(records) and all(r["code"] and r["wall_s"] > 0 for r in records.values())
    # the seeds made the runs differ
    assert data["runs"]["baseline"]["0"] != data["runs"]["baseline"]["1"]
    # a bootstrap over the images of one seed pair, from the saved predictions: its estimate is the
    # difference of the two runs' own COCOEvaluator APs
    from net_detr2.evaluation.coco_bootstrap import bootstrap_run_pair

    boot = bootstrap_run_pair(str(out / "baseline" / "seed0"), str(out / "lr2" / "seed0"), num_samples=50)
    for m in ("AP", "AP50"):
        assert boot[m].estimate == pytest.approx(data["runs"]["lr2"]["0"][m] - data["runs"]["baseline"]["0"][m])
        assert boot[m].low <= boot[m].estimate <= boot[m].high


def test_placeholders_and_chained_runs(tmp_path, tiny_config):
    """``{seed}``/``{sweep}`` are filled per run; a run whose override names another run's folder waits for
    it, and is dropped when that one failed."""
    cfg = str(tiny_config)
    stage2 = Variant("s2", cfg, ("train.init_checkpoint={sweep}/s1/seed{seed}/model_final.pth",))
    sweep = Sweep(tmp_path / "chain", [Variant("s1", cfg), stage2], [0, 1])
    runs = {r.key: r for r in sweep.runs()}
    s1_0, s2_0, s1_1, s2_1 = (runs[k] for k in ("s1/seed0", "s2/seed0", "s1/seed1", "s2/seed1"))
    assert s2_1.overrides(())[0] == f"train.init_checkpoint={sweep.output_dir}/s1/seed1/model_final.pth"
    assert s2_0.depends_on(s1_0, ()) and not s2_0.depends_on(s1_1, ()) and not s1_0.depends_on(s2_0, ())
    logs = []
    pending, running, failed = [s2_0, s1_0, s2_1, s1_1], [(s1_0, None)], []
    pending.remove(s1_0)
    assert sweep._next_ready(pending, running, failed, logs.append) is s1_1  # s2 runs wait for their s1
    running.append((s1_1, None))
    assert sweep._next_ready(pending, running, failed, logs.append) is None and pending == [s2_0, s2_1]
    (s1_0.output_dir).mkdir(parents=True)
    (s1_0.results_file).write_text('{"results": {}}')
    assert sweep._next_ready(pending, [], [s1_1], logs.append) is s2_0
    assert sweep._next_ready(pending, [], [s1_1], logs.append) is None
    assert pending == [] and logs == ["[sweep] s2/seed1: not started, a run it needs failed (s1/seed1)"]
    # a prerequisite the sweep does not run at all
    pending = [runs["s2/seed1"]]
    assert sweep._next_ready(pending, [], [], logs.append) is None and pending == []
    assert logs[-1] == "[sweep] s2/seed1: not started, it needs s1/seed1, which this sweep does not run"
