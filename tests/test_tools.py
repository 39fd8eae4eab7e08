"""The researcher's tools (tools/*.py, also `net-detr2 <command>`): each one run on small data, its numbers checked
against values computed by hand."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from net_detr2.data import DatasetCatalog, MetadataCatalog
from net_detr2.data.statistics import dataset_statistics
from net_detr2.structures import BoxMode

REPO = Path(__file__).resolve().parents[1]
SHAPES_FRCNN = str(REPO / "configs" / "shapes" / "faster_rcnn_R18_FPN.py")


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _box(x, y, w, h, c, **kw):
    return {"bbox": [x, y, w, h], "bbox_mode": BoxMode.XYWH_ABS, "category_id": c, **kw}


@pytest.fixture
def tiny_dataset(tmp_path):
    """Two 200x160 images: image 0 holds a small circle (20x20), a medium square (40x40) and a large circle
    (100x100); image 1 a crowd box and a medium triangle (50x30)."""
    images = tmp_path / "images"
    images.mkdir()
    dicts = []
    annos = [
        [_box(10, 10, 20, 20, 0), _box(60, 20, 40, 40, 1), _box(90, 50, 100, 100, 0)],
        [_box(5, 5, 30, 30, 0, iscrowd=1), _box(100, 80, 50, 30, 2)],
    ]
    for i, a in enumerate(annos):
        path = images / f"img{i}.png"
        cv2.imwrite(str(path), np.full((160, 200, 3), 60 + 40 * i, np.uint8))
        dicts.append({"file_name": str(path), "image_id": i, "height": 160, "width": 200, "annotations": a})
    name = f"tiny_{tmp_path.name}"
    DatasetCatalog.register(name, lambda: dicts)
    MetadataCatalog.get(name).set(thing_classes=["circle", "square", "triangle"], evaluator_type="coco")
    yield name, dicts, images
    DatasetCatalog.remove(name)
    MetadataCatalog.remove(name)


def test_dataset_statistics_counts(tiny_dataset):
    _, dicts, _ = tiny_dataset
    stats = dataset_statistics(dicts, ["circle", "square", "triangle"])
    assert stats.num_images == 2 and stats.num_crowd == 1 and stats.num_images_without_boxes == 0
    assert stats.instances.tolist() == [2, 1, 1] and stats.images_with_class.tolist() == [1, 1, 1]
    # 20x20 = 400 px^2 small; 40x40 = 1600 and 50x30 = 1500 medium; 100x100 = 10000 large
    assert stats.sizes.tolist() == [[1, 0, 1], [0, 1, 0], [0, 1, 0]]
    assert stats.size_shares().tolist() == [0.25, 0.5, 0.25]
    assert stats.table_rows()[-1][:6] == ["total", 4, 2, 1, 2, 1]
    with pytest.raises(ValueError, match="img0.png has a box of class 0, outside the 0 classes"):
        dataset_statistics(dicts, [])


def test_browse_dataset_draws_and_counts(tiny_dataset, tmp_path):
    name, _, images = tiny_dataset
    tool = _tool("browse_dataset")
    out = tmp_path / "browse"
    stats = tool.main(["--dataset", name, "--output", str(out)])
    assert stats.instances.tolist() == [2, 1, 1]
    assert sorted(p.name for p in out.iterdir()) == [
        "grid.png",
        "img0.png",
        "img1.png",
        "statistics.png",
        "statistics.txt",
    ]
    drawn = cv2.imread(str(out / "img0.png"))
    assert drawn.shape == (160, 200, 3) and (drawn[10:31, 10] != 60).any()  # the small circle's left edge
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in (out / "statistics.txt").read_text().splitlines()]
    assert ["circle", "2", "1", "1", "0", "1", "50.0", "0.0", "50.0"] in rows
    with pytest.raises(SystemExit):  # never writes among the images
        tool.main(["--dataset", name, "--output", str(images / "sub")])
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    tool.main(
        ["--dataset", name, "--output", str(out), "--num-images", "1"]
    )  # a second run adds files, overwrites none
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.name in before} == before
    assert {p.name for p in out.iterdir()} - set(before) == {
        "img0_1.png",
        "grid_1.png",
        "statistics_1.png",
        "statistics_1.txt",
    }
    assert (out / "statistics_1.txt").read_text() == (out / "statistics.txt").read_text()


def test_browse_dataset_after_augmentation(tmp_path):
    out = tmp_path / "aug"
    _tool("browse_dataset").main(
        [
            "--config-file",
            SHAPES_FRCNN,
            "--source",
            "dataloader",
            "--output",
            str(out),
            "--num-images",
            "2",
            "--no-stats",
            "dataloader.train.total_batch_size=2",
            "dataloader.train.mapper.augmentations.0.short_edge_length=[96]",
        ]
    )
    pictures = sorted(out.glob("*_aug.png"))
    assert len(pictures) == 2
    assert min(cv2.imread(str(pictures[0])).shape[:2]) == 96  # drawn after the config's resizing


def _fake_results(dicts):
    """Image 0: the small circle found, the medium square predicted as a triangle, the large circle missed, and a
    background box called 'square'; a prediction below 0.5 on the large circle. Image 1: the triangle found."""
    return [
        {"image_id": 0, "category_id": 0, "bbox": [10, 10, 20, 20], "score": 0.9},
        {"image_id": 0, "category_id": 2, "bbox": [61, 20, 40, 40], "score": 0.8},
        {"image_id": 0, "category_id": 1, "bbox": [150, 0, 30, 30], "score": 0.7},
        {"image_id": 0, "category_id": 0, "bbox": [90, 50, 100, 100], "score": 0.3},
        {"image_id": 1, "category_id": 2, "bbox": [100, 80, 50, 30], "score": 0.95},
    ]


def test_error_analysis_confusion_and_pr(tiny_dataset, tmp_path):
    name, dicts, _ = tiny_dataset
    results = tmp_path / "coco_instances_results.json"
    results.write_text(json.dumps(_fake_results(dicts)))
    out = tmp_path / "errors"
    r = _tool("error_analysis").main(["--input", str(results), "--dataset", name, "--output", str(out)])
    assert r["labels"] == ["circle", "square", "triangle", "background"]
    expected = np.zeros((4, 4), int)
    expected[0, 0] = 1  # small circle found
    expected[1, 2] = 1  # square taken for a triangle
    expected[0, 3] = 1  # large circle missed (its prediction scores 0.3 < 0.5)
    expected[3, 1] = 1  # a 'square' on background
    expected[2, 2] = 1  # triangle found
    assert r["matrix"].tolist() == expected.tolist()
    # the overall AP50 is COCO's, as the evaluator computes it
    from net_detr2.evaluation.coco_evaluation import (
        bbox_ap_stats,
        convert_to_coco_dict,
        evaluate_predictions_on_coco,
        load_coco_gt,
    )

    coco_eval = evaluate_predictions_on_coco(load_coco_gt(convert_to_coco_dict(name)), _fake_results(dicts))
    assert r["ap50"]["all classes"] == pytest.approx(bbox_ap_stats(coco_eval)[1] * 100)
    assert r["ap"]["all classes"] == pytest.approx(bbox_ap_stats(coco_eval)[0] * 100)
    # COCO's AP uses every score: both circles are found (the large one at 0.3), the square never
    assert [r["ap50"][c] for c in ("circle", "square", "triangle")] == pytest.approx([100, 0, 100])
    for f in ("pr_curves_AP50.png", "pr_curves_AP.png", "confusion_matrix.png", "summary.txt"):
        assert (out / f).stat().st_size > 1000 or f == "summary.txt"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"image_id": 0, "category_id": 0, "bbox": [1, 2, "x", 4], "score": 0.5}]))
    with pytest.raises(SystemExit):
        _tool("error_analysis").main(["--input", str(bad), "--dataset", name, "--output", str(out)])


def test_visualize_json_results(tiny_dataset, tmp_path):
    name, dicts, _ = tiny_dataset
    results = tmp_path / "coco_instances_results.json"
    results.write_text(json.dumps([r for r in _fake_results(dicts) if r["image_id"] == 0]))
    out = tmp_path / "vis"
    written = _tool("visualize_json_results").main(
        ["--input", str(results), "--dataset", name, "--output", str(out), "--conf-threshold", "0.5"]
    )
    assert [Path(p).name for p in written] == ["img0.png", "img1.png"] and (out / "grid.png").exists()
    pair = cv2.imread(str(out / "img1.png"))[..., ::-1]
    assert pair.shape[1] == 2 * 200 + 6  # ground truth | detections
    right = pair[-160:, 206:]
    assert (right == 40).any()  # image 1 has no detection: the panel says "0 detections >= 0.5"
    # a second run into the same folder: new names, the first run's files byte for byte as they were
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    written = _tool("visualize_json_results").main(
        ["--input", str(results), "--dataset", name, "--output", str(out), "--num-images", "1"]
    )
    assert [Path(p).name for p in written] == ["img0_1.png"]
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.name in before} == before
    assert {p.name for p in out.iterdir()} - set(before) == {"img0_1.png", "grid_1.png"}


def test_convert_d2_config_never_replaces_a_file(tmp_path, capsys):
    tool = _tool("convert_d2_config")
    src = tmp_path / "retinanet.yaml"
    src.write_text('_BASE_: "{}"\n'.format(REPO / "tests" / "fixtures" / "d2_model_zoo" / "Base-RetinaNet.yaml"))
    source = src.read_bytes()
    out = tmp_path / "converted.py"
    out.write_text("# the user's own file\n")
    mine = out.read_bytes()
    with pytest.raises(SystemExit) as exc:
        tool.main([str(src), str(out)])
    assert exc.value.code == 2 and f"output {out} exists" in capsys.readouterr().err and out.read_bytes() == mine
    for argv in ([str(src), str(src)], ["--overwrite", str(src), str(src)], [str(src), str(src), "--overwrite"]):
        with pytest.raises(SystemExit) as exc:
            tool.main(argv)
        assert exc.value.code == 2 and f"output {src} is the input file" in capsys.readouterr().err
        assert src.read_bytes() == source
    link = tmp_path / "link.yaml"
    link.symlink_to(src)
    with pytest.raises(SystemExit):
        tool.main(["--overwrite", str(src), str(link)])
    assert src.read_bytes() == source and "is the input file" in capsys.readouterr().err
    # asked to: replaced (the flag before or after the file names)
    tool.main([str(src), str(out), "--overwrite"])
    assert out.read_bytes() != mine and "LazyConfig converted from the detectron2 config" in out.read_text()
    tool.main(["--overwrite", str(src), str(tmp_path / "converted.yaml")])
    assert (tmp_path / "converted.yaml").stat().st_size > 0


def test_analyze_counts_flops_by_hand():
    r = _tool("analyze_model").main(
        ["--config-file", SHAPES_FRCNN, "--input-size", "128", "160", "--tasks", "flop", "parameter"]
    )
    from net_detr2.config import LazyConfig, instantiate
    from net_detr2.utils.analysis import flop_count

    model = instantiate(LazyConfig.load(SHAPES_FRCNN).model).eval()
    assert r["parameters"] == sum(p.numel() for p in model.parameters())
    image = torch.zeros(3, 128, 160, dtype=torch.uint8)
    with torch.no_grad():
        flops = flop_count(model, [{"image": image, "height": 128, "width": 160}])
    stem = flops.by_module_and_operator()["model.backbone.bottom_up.stem.conv1"]
    # the stem's 7x7 stride-2 conv, 3 -> 16 channels, on the 128x160 input: one multiply-add per weight per output;
    # its BatchNorm: 2 per output element
    assert stem["conv"] == 64 * 80 * 16 * 3 * 7 * 7 and stem["batch_norm"] == 2 * 64 * 80 * 16
    assert r["flops"][0] == flops.total() > flops.by_module()["model.backbone"] > 0


def test_tracing_adapter_flattens_instances():
    from net_detr2.config import LazyConfig, instantiate
    from net_detr2.export import TracingAdapter

    model = instantiate(LazyConfig.load(SHAPES_FRCNN).model).eval()
    inputs = [{"image": torch.zeros(3, 64, 80, dtype=torch.uint8), "height": 32, "width": 40}] * 2
    with torch.no_grad():
        flat = TracingAdapter(model, inputs)(*[i["image"] for i in inputs])
        direct = model(inputs)
    assert len(flat) == 6  # boxes, scores, classes per image
    for k, out in enumerate(direct):
        torch.testing.assert_close(flat[3 * k], out["instances"].pred_boxes.tensor)
        torch.testing.assert_close(flat[3 * k + 2], out["instances"].pred_classes)


def test_benchmark_reports_every_task():
    rows = _tool("benchmark").main(
        [
            "--config-file",
            SHAPES_FRCNN,
            "--iters",
            "2",
            "--warmup",
            "1",
            "dataloader.train.total_batch_size=2",
            "dataloader.train.mapper.augmentations.0.short_edge_length=[128]",
            "dataloader.test.mapper.augmentations.0.short_edge_length=128",
        ]
    )
    assert [r["task"] for r in rows] == ["data", "train", "eval"]
    for r in rows:
        assert r["iter/s"] > 0 and r["s/iter"] == pytest.approx(1 / r["iter/s"])
    assert rows[1]["images/s"] == pytest.approx(2 * rows[1]["iter/s"])  # batch of 2


def test_entry_point_dispatches(capsys, monkeypatch):
    from net_detr2 import cli

    cli.main([])
    assert "analyze" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="did you mean 'browse'"):
        cli.main(["brows"])
    with pytest.raises(SystemExit) as e:
        cli.main(["convert", "-h"])
    assert e.value.code == 0 and "detectron2 YAML config" in capsys.readouterr().out
    for script, _, _ in cli.COMMANDS.values():
        assert (REPO / script).is_file(), script
