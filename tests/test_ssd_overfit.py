"""SSD300 memorises a few `shapes` pictures: training through the real mapper, loss, matching and decoding,
then COCO AP on the same pictures in their original frame.

A network that can fit its training targets only scores here when the targets (matching, encoding), the
loss that drives it towards them and the decoding back to boxes (variances, frames) agree; a wrong piece
fails the AP bar (each was broken once by hand to see it: see the module's history in the NETNet README).
"""

from __future__ import annotations

import copy

import cv2
import pytest
import torch

import net_detr2.data.transforms as T
from net_detr2.data import DatasetCatalog, DatasetMapper, MetadataCatalog
from net_detr2.data.datasets.shapes import SHAPES_CLASSES, render_shapes_image
from net_detr2.evaluation import COCOEvaluator
from net_detr2.structures import BoxMode
from net_detr2.utils.testing import tiny_ssd

NUM_IMAGES = 4
ITERS = 120


def _shapes_dicts(root, n: int) -> list[dict]:
    """``n`` pictures drawn by the `shapes` generator, written as PNG files under ``root``."""
    dicts = []
    for i in range(n):
        image, objects = render_shapes_image(seed=100 + i)
        file_name = str(root / f"shapes_{i}.png")
        cv2.imwrite(file_name, image)
        dicts.append(
            {
                "image_id": i,
                "file_name": file_name,
                "height": image.shape[0],
                "width": image.shape[1],
                "annotations": [
                    {"bbox": o["bbox"], "bbox_mode": BoxMode.XYXY_ABS, "category_id": o["category_id"], "iscrowd": 0}
                    for o in objects
                ],
            }
        )
    return dicts


@pytest.fixture
def shapes_subset(tmp_path):
    name = "_ssd_overfit_shapes"
    dicts = _shapes_dicts(tmp_path, NUM_IMAGES)
    DatasetCatalog.register(name, lambda: copy.deepcopy(dicts))
    MetadataCatalog.get(name).set(thing_classes=list(SHAPES_CLASSES))
    yield name, dicts
    DatasetCatalog.remove(name)
    MetadataCatalog.remove(name)


def test_ssd300_memorises_four_shapes_images(shapes_subset):
    name, dicts = shapes_subset
    torch.manual_seed(0)
    model = tiny_ssd(num_classes=len(SHAPES_CLASSES))
    resize = [T.Resize((300, 300))]
    train_batch = [DatasetMapper(True, augmentations=resize)(d) for d in dicts]
    assert sum(len(x["instances"]) for x in train_batch) >= 20
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    model.train()
    for it in range(ITERS):
        for g in opt.param_groups:
            g["lr"] = 3e-3 * min(1.0, (it + 1) / 10)
        losses = model(train_batch)
        opt.zero_grad()
        sum(losses.values()).backward()
        opt.step()
    model.eval()
    evaluator = COCOEvaluator(name, output_dir=None)
    evaluator.reset()
    test_batch = [DatasetMapper(False, augmentations=resize)(d) for d in dicts]
    with torch.no_grad():
        outputs = model(test_batch)
    # the detections come back in each picture's own frame (320 x H), not the 300 x 300 input
    assert all(o["instances"].image_size == (d["height"], d["width"]) for o, d in zip(outputs, dicts))
    evaluator.process(test_batch, outputs)
    ap = evaluator.evaluate()["bbox"]
    assert ap["AP50"] >= 95.0, ap
    assert ap["AP"] >= 90.0, ap
