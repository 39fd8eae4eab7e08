"""Exported detectors (TorchScript and ONNX) give the eager model's detections on sample images."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import cv2
import pytest
import torch
from torch import nn

from net_detr2.config import LazyConfig, instantiate
from net_detr2.data import DatasetCatalog
from net_detr2.export import export_onnx, export_torchscript, flatten_detections, match_detections, run_onnx

REPO = Path(__file__).resolve().parents[1]


def _spread_weights(model: nn.Module) -> nn.Module:
    """Seeded random weights of unit-scale activations: an untrained model scores everything alike, and the
    order of equal scores is arbitrary, so eager and exported results could only be compared as sets."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * 0.7 / math.sqrt(m.weight[0].numel()))
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    return model.eval()


def _shapes_images(height: int, width: int, count: int) -> list[torch.Tensor]:
    """Validation pictures of `shapes`, resized to the export size: BGR float32 [3, H, W]."""
    dicts = DatasetCatalog.get("shapes_val")[:count]
    return [
        torch.from_numpy(cv2.resize(cv2.imread(d["file_name"]), (width, height))).permute(2, 0, 1).float()
        for d in dicts
    ]


@pytest.mark.parametrize(
    "config,size",
    [
        ("configs/shapes/retinanet_R18_FPN.py", (128, 160)),
        ("projects/NETNet/configs/netnet300_shapes.py", (300, 300)),  # SSD's head and NETNet's neck
    ],
    ids=["retinanet", "netnet-ssd"],
)
def test_exported_model_gives_eager_detections(config, size, tmp_path):
    model = _spread_weights(instantiate(LazyConfig.load(str(REPO / config)).model))
    images = _shapes_images(*size, count=2)
    traced = export_torchscript(model, images[0], str(tmp_path / "m.ts"))
    export_onnx(model, images[0], str(tmp_path / "m.onnx"))
    loaded = torch.jit.load(str(tmp_path / "m.ts"))
    with torch.no_grad():
        for image in images:  # the first is the tracing example; the others are new pictures of the same size
            eager = flatten_detections(model([{"image": image}]))
            assert len(eager[1]) > 10
            for exported in (loaded(image), run_onnx(str(tmp_path / "m.onnx"), image)):
                boxes, scores, classes = exported
                assert boxes.dtype == scores.dtype == torch.float32 and classes.dtype == torch.int64
                m = match_detections(eager, exported, score_tolerance=1e-3)
                assert m["matched"] == m["reference"] == m["other"], m
    assert traced.training is False and not model.training


def test_export_tool_faster_rcnn(tmp_path):
    spec = importlib.util.spec_from_file_location("export_model", REPO / "tools" / "export_model.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    torch.manual_seed(0)  # the tool exports the config's (random) initialisation; fixed for the test
    report = tool.main(
        [
            "--config-file",
            str(REPO / "configs" / "shapes" / "faster_rcnn_R18_FPN.py"),
            "--output",
            str(tmp_path),
            "--check-images",
            "2",
            "dataloader.test.mapper.augmentations.0.short_edge_length=160",
        ]
    )
    assert report["ok"] and len(report["checks"]) == 4  # 2 images x (TorchScript, ONNX)
    assert all(c["reference"] == c["matched"] > 0 for c in report["checks"])
    contract = json.loads((tmp_path / "export.json").read_text())
    assert [contract["height"], contract["width"]] == list(report["size"]) and min(report["size"]) == 160
    assert contract["input_format"] == "BGR" and contract["class_names"][0] == "circle"
    import onnx

    graph = onnx.load(str(tmp_path / "model.onnx")).graph
    assert [i.name for i in graph.input] == ["image"] and [o.name for o in graph.output] == [
        "boxes",
        "scores",
        "classes",
    ]
    assert [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim] == [3, *report["size"]]


def test_adaptive_max_pool_for_onnx_matches_torch():
    from net_detr2.layers.wrappers import _adaptive_max_pool2d_by_windows

    g = torch.Generator().manual_seed(0)
    for h, w, oh, ow in [(38, 38, 10, 10), (19, 19, 5, 5), (10, 7, 3, 4), (6, 6, 6, 6)]:
        x = torch.randn(2, 3, h, w, generator=g)
        assert torch.equal(_adaptive_max_pool2d_by_windows(x, (oh, ow)), nn.functional.adaptive_max_pool2d(x, (oh, ow)))


def test_match_detections_reports_differences():
    boxes = torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30]])
    ref = (boxes, torch.tensor([0.9, 0.8]), torch.tensor([1, 2]))
    assert match_detections(ref, ref)["matched"] == 2
    other = (boxes, torch.tensor([0.9, 0.8]), torch.tensor([1, 0]))  # second box: another class
    assert match_detections(ref, other)["matched"] == 1
    shifted = (boxes + torch.tensor([[0.0, 0, 1, 0], [0, 0, 0, 0]]), ref[1], ref[2])  # first: IoU 10/11 < 0.99
    assert match_detections(ref, shifted)["matched"] == 1


def test_exported_model_runs_on_a_picture_without_detections(tmp_path):
    """An exported graph serves every picture of its size, also one where nothing passes the score threshold:
    traced on a picture with detections, it returns the eager model's empty result on one without."""
    model = _spread_weights(instantiate(LazyConfig.load(str(REPO / "configs/shapes/retinanet_R18_FPN.py")).model))
    image = _shapes_images(128, 160, count=1)[0]
    pictures = [image, torch.zeros_like(image)]
    model.test_score_thresh = 0.0
    with torch.no_grad():
        best = [flatten_detections(model([{"image": p}]))[1].max().item() for p in pictures]
    assert best[0] != best[1]
    # a threshold between the two pictures' best scores: the one scoring higher is traced, the other is empty
    model.test_score_thresh = sum(best) / 2
    traced_on, empty = (pictures[0], pictures[1]) if best[0] > best[1] else (pictures[1], pictures[0])
    export_torchscript(model, traced_on, str(tmp_path / "m.ts"))
    export_onnx(model, traced_on, str(tmp_path / "m.onnx"))
    loaded = torch.jit.load(str(tmp_path / "m.ts"))
    with torch.no_grad():
        assert len(flatten_detections(model([{"image": traced_on}]))[1]) > 0
        assert len(flatten_detections(model([{"image": empty}]))[1]) == 0
        for exported in (loaded(empty), run_onnx(str(tmp_path / "m.onnx"), empty)):
            boxes, scores, classes = exported
            assert boxes.shape == (0, 4) and scores.shape == classes.shape == (0,)
        for exported in (loaded(traced_on), run_onnx(str(tmp_path / "m.onnx"), traced_on)):
            assert len(exported[1]) > 0


def test_traceable_nms_of_no_boxes():
    from net_detr2.layers.nms import _batched_nms_traceable

    keep = _batched_nms_traceable(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.int64), 0.5)
    assert keep.shape == (0,) and keep.dtype == torch.int64
