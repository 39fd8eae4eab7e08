"""Test-time augmentation (`DetectorWithTTA`, ``train.tta``): a single view is the model itself, mirrored and
rescaled views' boxes come back to the image frame, views merge by per-class NMS, for Faster R-CNN, RetinaNet
and SSD; ``DefaultTrainer.test`` reports ``bbox_TTA`` beside ``bbox`` and ``demo.py`` uses it."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import net_detr2.data.transforms as T
from net_detr2.config import LazyCall as L
from net_detr2.config import LazyConfig, instantiate
from net_detr2.engine import DefaultTrainer
from net_detr2.modeling.test_time_augmentation import DetectorWithTTA, build_tta_model, flip_boxes
from net_detr2.structures import Boxes, Instances
from net_detr2.utils.testing import tiny_ssd

REPO = Path(__file__).resolve().parents[1]


def shapes_model(name: str) -> nn.Module:
    """A shapes config's model with random weights (RetinaNet: scores of ~0.01 pass a 0.005 threshold)."""
    cfg = LazyConfig.load(str(REPO / "configs" / "shapes" / f"{name}.py"))
    if name.startswith("retinanet"):
        cfg.model.test_score_thresh = 0.005
    torch.manual_seed(0)
    return instantiate(cfg.model).eval()


@pytest.fixture(scope="module")
def detectors() -> dict[str, tuple[nn.Module, int]]:
    """name -> (random-weight model, the size of its test images)."""
    torch.manual_seed(0)
    ssd = tiny_ssd(num_classes=3).eval()
    with torch.no_grad():  # random logits saturate the softmax (scores of 1.0 everywhere): make them small
        for conv in ssd.head.cls_score:
            conv.weight.mul_(0.001)
    return {
        "faster_rcnn": (shapes_model("faster_rcnn_R18_FPN"), 96),
        "retinanet": (shapes_model("retinanet_R18_FPN"), 96),
        "ssd": (ssd, 300),
    }


def image(size: int, seed: int = 0, width: int | None = None) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (3, size, width or size), dtype=torch.uint8, generator=g)


def fields(instances: Instances) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return instances.pred_boxes.tensor, instances.scores, instances.pred_classes


@pytest.mark.parametrize("name", ["faster_rcnn", "retinanet", "ssd"])
def test_one_scale_without_flip_is_the_model_itself(detectors, name):
    model, size = detectors[name]
    inputs = [{"image": image(size, seed=1), "height": 150, "width": 170}, {"image": image(size, seed=2)}]
    with torch.no_grad():
        plain = [model([x])[0] for x in inputs]  # one image at a time, as the wrapper runs it
        tta = DetectorWithTTA(model, scales=[1.0], flip=False)(inputs)
    for p, t in zip(plain, tta):
        assert len(p["instances"]) > 10 and p["instances"].image_size == t["instances"].image_size
        assert all(torch.equal(a, b) for a, b in zip(fields(p["instances"]), fields(t["instances"])))


@pytest.mark.parametrize("name", ["faster_rcnn", "retinanet", "ssd"])
def test_views_merge_into_detections_of_the_image(detectors, name):
    """Two scales and their mirrors: every merged detection is one of a view's (mapped into the image), the
    merge keeps detections of other views than the plain one, best first, at most max_detections."""
    model, size = detectors[name]
    tta = DetectorWithTTA(model, scales=[1.0, 1.25], flip=True, max_detections=60)
    views = []
    merge = tta.merge
    tta.merge = lambda per_view, image_size: views.extend(per_view) or merge(per_view, image_size)
    with torch.no_grad():
        out = tta([{"image": image(size, seed=3), "height": 200, "width": 240}])[0]["instances"]
    assert len(views) == 4 and out.image_size == (200, 240) and 0 < len(out) <= 60
    boxes, scores, classes = fields(out)
    assert torch.all(scores[:-1] >= scores[1:])
    assert boxes[:, 0::2].min() >= 0 and boxes[:, 0::2].max() <= 240 and boxes[:, 1::2].max() <= 200
    view_of = []
    for box, score, cls in zip(boxes, scores, classes):
        found = [i for i, v in enumerate(views) if ((v.pred_boxes.tensor == box).all(1) & (v.scores == score)).any()]
        assert found, (box, score, cls)
        view_of.append(found[0])
    assert set(view_of) - {0}  # detections of the mirrored / rescaled views made it into the result
    with pytest.raises(RuntimeError, match=r"call \.eval\(\) first"):
        DetectorWithTTA(model.train(), scales=[1.0])([{"image": image(size)}])
    model.eval()


class SquareFinder(nn.Module):
    """A hand-made detector: the box around the bright pixels of its input, in the output frame (height/width);
    its score says which view it saw (0.5 + input width / 1000, + 0.2 when the square is in the right half)."""

    input_format = "BGR"
    test_nms_thresh, max_detections_per_image = 0.5, 10

    def forward(self, batched_inputs):
        out = []
        for x in batched_inputs:
            img = x["image"]
            h, w = img.shape[-2:]
            ys, xs = torch.nonzero(img[0] > 128, as_tuple=True)
            box = torch.stack([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]).float()[None]
            box[:, 0::2] *= x["width"] / w
            box[:, 1::2] *= x["height"] / h
            score = 0.5 + w / 1000 + (0.2 if xs.float().mean() > w / 2 else 0.0)
            inst = Instances((x["height"], x["width"]), pred_boxes=Boxes(box))
            inst.scores, inst.pred_classes = torch.tensor([score]), torch.tensor([1])
            out.append({"instances": inst})
        return out


def test_mirrored_and_rescaled_boxes_come_back_to_the_image():
    picture = torch.zeros(3, 60, 80, dtype=torch.uint8)
    picture[:, 20:40, 10:30] = 255  # a square in the left half; the output frame is twice as large
    inputs = [{"image": picture, "height": 120, "width": 160}]
    every_view = DetectorWithTTA(SquareFinder().eval(), scales=[1.0, 1.5], flip=True, nms_thresh=1.0)(inputs)
    boxes, scores, _ = fields(every_view[0]["instances"])
    # the 4 views: 80 and 120 pixels wide, each plain and mirrored (the square then on the right)
    assert sorted(scores.tolist()) == pytest.approx([0.58, 0.62, 0.78, 0.82])
    torch.testing.assert_close(boxes, torch.tensor([[20.0, 40.0, 60.0, 80.0]]).expand(4, 4), atol=1.5, rtol=0)
    merged = DetectorWithTTA(SquareFinder().eval(), scales=[1.0, 1.5], flip=True)(inputs)[0]["instances"]
    assert len(merged) == 1 and float(merged.scores[0]) == pytest.approx(0.82)  # the mirrored 1.5x view's
    mirrored = flip_boxes(torch.tensor([[100.0, 4.0, 140.0, 8.0]]), 160)
    assert torch.equal(mirrored, torch.tensor([[20.0, 4.0, 60.0, 8.0]]))


class TeacherSquareFinder(SquareFinder):
    """Also needs the picture at twice the size (as EFPN's distilled models read "image_2x" at test time)."""

    def forward(self, batched_inputs):
        assert all(x["image_2x"].shape[-1] == 2 * x["image"].shape[-1] for x in batched_inputs)
        return super().forward(batched_inputs)


def test_an_input_with_a_second_picture_is_refused_by_name():
    picture = torch.zeros(3, 60, 80, dtype=torch.uint8)
    picture[:, 20:40, 10:30] = 255
    inputs = [{"image": picture, "image_2x": picture.repeat_interleave(2, -1).repeat_interleave(2, -2)}]
    inputs[0].update(height=60, width=80, file_name="a.png", image_id=3)  # metadata: no pictures
    model = TeacherSquareFinder().eval()
    assert len(model(inputs)[0]["instances"]) == 1
    for scales, flip in (([1.0], False), ([1.0, 1.5], True)):
        with pytest.raises(
            ValueError,
            match=r"the input has 'image_2x' \(Tensor of shape \(3, 120, 160\)\) beside 'image'; .* so "
            r"TeacherSquareFinder cannot be given views with a matching 'image_2x'.*train\.tta\.enabled=False",
        ):
            DetectorWithTTA(model, scales=scales, flip=flip)(inputs)
    del inputs[0]["image_2x"]  # the other keys are no pictures: SquareFinder runs on every view
    assert len(DetectorWithTTA(SquareFinder().eval(), scales=[1.0, 1.5])(inputs)[0]["instances"]) == 1


def test_a_symmetric_image_gives_symmetric_detections(detectors):
    """A left-right symmetric image: the mirrored view is the same picture, so with every detection kept
    (nms_thresh=1: nothing suppressed) each detection has its mirror image, of the same class and score."""
    model, size = detectors["retinanet"]
    half = image(size, seed=4, width=64)
    symmetric = torch.cat([half, half.flip(-1)], dim=-1)  # 96 x 128
    inputs = [{"image": symmetric, "height": 150, "width": 200}]
    with torch.no_grad():
        plain = model(inputs)[0]["instances"]
        merged = DetectorWithTTA(model, scales=[1.0], flip=True, nms_thresh=1.0, max_detections=10**4)(inputs)
    boxes, scores, classes = fields(merged[0]["instances"])
    assert len(boxes) == 2 * len(plain) > 20
    mirrored = flip_boxes(boxes, 200)
    close = (mirrored[:, None, :] - boxes[None, :, :]).abs().amax(-1) < 1e-3  # [i, j]: mirror of i is j
    same = (scores[:, None] == scores[None, :]) & (classes[:, None] == classes[None, :])
    assert (close & same).any(1).all()
    assert not torch.allclose(flip_boxes(fields(plain)[0], 200), fields(plain)[0])  # it is not trivially so


def test_nms_settings_default_to_the_models_own(detectors):
    frcnn, ssd = DetectorWithTTA(detectors["faster_rcnn"][0]), DetectorWithTTA(detectors["ssd"][0])
    assert (frcnn.nms_thresh, frcnn.max_detections, ssd.nms_thresh, ssd.max_detections) == (0.5, 100, 0.45, 200)
    tta = build_tta_model(detectors["retinanet"][0], dict(scales=[1, 2], flip=False, nms_thresh=0.6, max_detections=7))
    assert (tta.scales, tta.flip, tta.nms_thresh, tta.max_detections) == ([1.0, 2.0], False, 0.6, 7)
    with pytest.raises(ValueError, match=r"cannot find the test NMS settings of Linear .*\(train\.tta\.nms_thresh"):
        DetectorWithTTA(nn.Linear(2, 2))
    with pytest.raises(ValueError, match=r"scales must be positive numbers, got \[1\.0, 0\.0\]"):
        DetectorWithTTA(detectors["ssd"][0], scales=[1, 0])


def _first_images(dataset: list[dict], n: int) -> list[dict]:
    return dataset[:n]


def test_default_trainer_test_adds_tta_results(tmp_path):
    cfg = LazyConfig.load(str(REPO / "configs" / "shapes" / "faster_rcnn_R18_FPN.py"))
    LazyConfig.apply_overrides(
        cfg, [f"train.output_dir={tmp_path}", "train.tta.enabled=True", "train.tta.scales=[1.0]", "train.device=cpu"]
    )
    cfg.dataloader.test.mapper.augmentations = [L(T.ResizeShortestEdge)(short_edge_length=96, max_size=128)]
    cfg.dataloader.test.dataset = L(_first_images)(dataset=cfg.dataloader.test.dataset, n=3)
    cfg.dataloader.evaluator.dataset_name = "shapes_val"
    torch.manual_seed(0)
    model = DefaultTrainer.build_model(cfg).eval()
    results = DefaultTrainer.test(cfg, model)
    assert not model.training  # the wrapper's evaluation leaves the model in the mode it was in
    assert set(results) == {"bbox", "bbox_TTA"} and set(results["bbox_TTA"]) == set(results["bbox"])
    assert (tmp_path / "coco_instances_results.json").exists()
    assert (tmp_path / "inference_TTA" / "coco_instances_results.json").exists()
    assert cfg.dataloader.evaluator.output_dir == str(tmp_path)  # the config is not changed
    assert set(DefaultTrainer.test(cfg, model, with_tta=False)) == {"bbox"}  # periodic evaluations
    cfg.train.tta.enabled = False  # the default
    assert set(DefaultTrainer.test(cfg, model)) == {"bbox"}


class PassThrough:
    """An evaluator around another (as EFPN's ``EvaluatedClassesOnly`` is): the inner one writes the files."""

    def __init__(self, evaluator):
        self.evaluator = evaluator

    def reset(self):
        self.evaluator.reset()

    def process(self, inputs, outputs):
        self.evaluator.process(inputs, outputs)

    def evaluate(self):
        return self.evaluator.evaluate()


def test_tta_results_of_a_nested_evaluator_go_to_their_own_folder(tmp_path):
    """The TTA evaluation writes an evaluator's files into ``inference_TTA`` at any depth of the evaluator's config,
    never over the plain evaluation's."""
    cfg = LazyConfig.load(str(REPO / "configs" / "shapes" / "faster_rcnn_R18_FPN.py"))
    LazyConfig.apply_overrides(
        cfg,
        [f"train.output_dir={tmp_path}", "train.tta.enabled=True", "train.tta.scales=[1.0,1.5]", "train.device=cpu"],
    )
    cfg.dataloader.test.mapper.augmentations = [L(T.ResizeShortestEdge)(short_edge_length=96, max_size=128)]
    cfg.dataloader.test.dataset = L(_first_images)(dataset=cfg.dataloader.test.dataset, n=2)
    inner = cfg.dataloader.evaluator
    inner.dataset_name = "shapes_val"
    cfg.dataloader.evaluator = L(PassThrough)(evaluator=inner)
    assert cfg.dataloader.evaluator.evaluator.output_dir == str(tmp_path)  # "${train.output_dir}", one level down
    torch.manual_seed(0)
    model = DefaultTrainer.build_model(cfg).eval()
    assert set(DefaultTrainer.test(cfg, model, with_tta=False)) == {"bbox"}
    plain = (tmp_path / "coco_instances_results.json").read_text()
    assert set(DefaultTrainer.test(cfg, model)) == {"bbox", "bbox_TTA"}
    assert (tmp_path / "coco_instances_results.json").read_text() == plain  # not replaced by the TTA's
    with_tta = (tmp_path / "inference_TTA" / "coco_instances_results.json").read_text()
    assert with_tta != plain  # two scales: other detections, in their own file
    assert cfg.dataloader.evaluator.evaluator.output_dir == str(tmp_path)  # the config is not changed


def test_redirected_output_dirs_in_lists_and_none():
    from net_detr2.engine.defaults import _redirect_output_dirs

    cfg = LazyConfig.apply_overrides(
        LazyConfig.load(str(REPO / "configs" / "shapes" / "faster_rcnn_R18_FPN.py")), ["train.output_dir=/out"]
    )
    evaluator = cfg.dataloader.evaluator
    evaluator.dataset_name = "shapes_val"  # its relative interpolation would not reach the test set from a list
    no_folder = {"output_dir": "", "keep": None}
    cfg.dataloader.evaluator = L(PassThrough)(evaluator=[evaluator, no_folder], extra=L(PassThrough)(evaluator=None))
    spec = _redirect_output_dirs(cfg.dataloader.evaluator, "inference_TTA")
    assert spec["_target_"] is PassThrough and spec["evaluator"][0]["output_dir"] == "/out/inference_TTA"
    assert spec["evaluator"][1] == no_folder and spec["extra"] == {"_target_": PassThrough, "evaluator": None}
    assert cfg.dataloader.evaluator.evaluator[0].output_dir == "/out"  # the config is not changed


def test_demo_runs_the_configs_tta(tmp_path):
    sys.path.insert(0, str(REPO))
    import demo

    cfg = demo.setup_cfg(
        str(REPO / "configs" / "shapes" / "retinanet_R18_FPN.py"),
        ["train.tta.enabled=True", "train.tta.scales=[1.0,1.2]", "train.device=cpu"],
    )
    predictor = demo.DemoPredictor(cfg)
    assert isinstance(predictor.model, DetectorWithTTA) and predictor.model.scales == [1.0, 1.2]
    rgb = np.random.default_rng(0).integers(0, 256, (90, 120, 3), dtype=np.uint8)
    instances = predictor(rgb)
    assert instances.image_size == (90, 120)
