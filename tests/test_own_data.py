"""Your own data: a dataset registered by a config is found by demo.py and the tools, and registering a name
again is a no-op when it is the same dataset and a clear error when it is not."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from net_detr2.config import LazyConfig
from net_detr2.data import DatasetCatalog, MetadataCatalog
from net_detr2.data.datasets import register_coco_instances

REPO = Path(__file__).resolve().parents[1]

CONFIG = """
from net_detr2.data.datasets import register_coco_instances
from ..shapes.faster_rcnn_R18_FPN import dataloader, lr_multiplier, model, optimizer, train

register_coco_instances("{name}", {{}}, "{json}", "{images}")
dataloader.test.dataset.names = "{name}"
"""


@pytest.fixture
def own_coco(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for i in range(2):
        cv2.imwrite(str(images / f"p{i}.jpg"), np.full((96, 128, 3), 90, np.uint8))
    coco = {
        "images": [{"id": i, "file_name": f"p{i}.jpg", "height": 96, "width": 128} for i in range(2)],
        "annotations": [
            {"id": 1, "image_id": 0, "category_id": 1, "bbox": [10, 10, 30, 20], "area": 600, "iscrowd": 0}
        ],
        "categories": [{"id": 1, "name": "thing"}],
    }
    (tmp_path / "train.json").write_text(json.dumps(coco))
    name = f"own_{tmp_path.name}"
    configs = tmp_path / "configs"
    shutil.copytree(REPO / "configs" / "common", configs / "common")
    shutil.copytree(REPO / "configs" / "shapes", configs / "shapes")
    (configs / "mine").mkdir()
    cfg = configs / "mine" / "own.py"
    cfg.write_text(CONFIG.format(name=name, json=tmp_path / "train.json", images=images))
    yield name, cfg, tmp_path
    for n in (name,):
        if n in DatasetCatalog:
            DatasetCatalog.remove(n)
            MetadataCatalog.remove(n)


def test_config_registered_dataset_found_by_demo(own_coco):
    name, cfg, tmp = own_coco
    spec = importlib.util.spec_from_file_location("demo", REPO / "demo.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    assert name not in DatasetCatalog  # only the config registers it
    out = tmp / "vis"
    assert demo.main(["--config-file", str(cfg), "--dataset", name, "--output", str(out), "--max-images", "1"]) == 0
    assert [p.name for p in out.iterdir()] == ["p0.png"]
    assert MetadataCatalog.get(name).thing_classes == ["thing"]


def test_registering_twice(own_coco):
    name, cfg, tmp = own_coco
    LazyConfig.load(str(cfg))
    loader = DatasetCatalog[name]
    LazyConfig.load(str(cfg))  # the same config again: the same dataset, nothing happens
    register_coco_instances(name, {}, str(tmp / "train.json"), str(tmp / "images"))
    assert DatasetCatalog[name] is loader and len(DatasetCatalog.get(name)) == 2
    with pytest.raises(ValueError, match=f"dataset '{name}' is already registered with a different loader"):
        register_coco_instances(name, {}, str(tmp / "other.json"), str(tmp / "images"))
    assert DatasetCatalog[name] is loader


def test_example_config_registers_its_names():
    path = str(REPO / "configs" / "examples" / "own_yolo_data.py")
    cfg = LazyConfig.load(path)
    LazyConfig.load(path)  # twice in one process: no error
    assert (
        cfg.dataloader.train.dataset.names == "my_photos_train"
        and cfg.dataloader.test.dataset.names == "my_photos_valid"
    )
    assert {"my_photos_train", "my_photos_valid"} <= set(DatasetCatalog.list())
    assert MetadataCatalog.get("my_photos_valid").evaluator_type == "coco"
