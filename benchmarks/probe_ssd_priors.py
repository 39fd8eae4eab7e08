#!/usr/bin/env python
"""How well SSD's default boxes cover a dataset's ground truths, after each training augmentation.

    python benchmarks/probe_ssd_priors.py [DATASET (shapes_train)] [SIZE (300)]

For the first 150 training images, per default-box setting (SSD's COCO and VOC sizes; at 300 three
smaller-prior alternatives) and per pipeline (resize only; SSD's zoom-out + min-IoU crop + resize; crop +
resize), prints: ground truths and positive default boxes per image, the share of ground truths whose best
default box reaches IoU 0.5 (all / small / not small; small: under 32 px at the source's 320-px scale, or
COCO's 32 px at 1024 for other datasets, rescaled to SIZE), the median positives per ground truth, and the
share of small ground truths.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import net_detr2.data.transforms as T  # noqa: E402
from net_detr2.data import DatasetMapper, get_detection_dataset_dicts  # noqa: E402
from net_detr2.modeling.anchor_generator import DefaultBoxGenerator, ssd_default_box_sizes  # noqa: E402
from net_detr2.modeling.matcher import match_default_boxes  # noqa: E402
from net_detr2.structures import Boxes, pairwise_iou  # noqa: E402

MEAN_BGR = [104, 117, 123]
FEATURE_SHAPES = {
    300: [(38, 38), (19, 19), (10, 10), (5, 5), (3, 3), (1, 1)],
    512: [(64, 64), (32, 32), (16, 16), (8, 8), (4, 4), (2, 2), (1, 1)],
}
RATIOS = ((2,), (2, 3), (2, 3), (2, 3), (2,), (2,))
STEPS = (8, 16, 32, 64, 100, 300)


def main() -> None:
    np.random.seed(0)
    name = sys.argv[1] if len(sys.argv) > 1 else "shapes_train"
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    dicts = get_detection_dataset_dicts(name)[:150]
    pipes = {
        "resize": [T.Resize((size, size))],
        "ssd": [T.Expand((1, 4), 0.5, MEAN_BGR), T.MinIoURandomCrop(), T.Resize((size, size))],
        "noexpand": [T.MinIoURandomCrop(), T.Resize((size, size))],
    }
    settings = {"coco": ssd_default_box_sizes(size, "coco"), "voc": ssd_default_box_sizes(size, "voc")}
    if size == 300:
        for key, mins, maxs in (
            ("small12", (12, 30, 60, 110, 170, 240), (30, 60, 110, 170, 240, 315)),
            ("small16", (16, 36, 72, 128, 190, 260), (36, 72, 128, 190, 260, 315)),
            ("x2stride", (16, 32, 64, 128, 200, 270), (32, 64, 128, 200, 270, 315)),
        ):
            settings[key] = dict(steps=STEPS, min_sizes=mins, max_sizes=maxs, aspect_ratios=RATIOS)
    data = {}
    for pipe, augs in pipes.items():
        mapper = DatasetMapper(True, augmentations=augs)
        data[pipe] = [mapper(copy.deepcopy(d))["instances"] for d in dicts]
    source_scale = 320 if "shapes" in dicts[0]["file_name"] else 1024
    for setting, kwargs in settings.items():
        priors = Boxes(DefaultBoxGenerator(**kwargs)(FEATURE_SHAPES[size], (size, size)))
        for pipe, instances in data.items():
            best, positives, sizes, fg_per_image = [], [], [], []
            for inst in instances:
                if not len(inst):
                    continue
                iou = pairwise_iou(inst.gt_boxes, priors)
                matched, fg = match_default_boxes(iou, 0.5)
                best += iou.max(1).values.tolist()
                positives += torch.bincount(matched[fg], minlength=len(inst)).tolist()
                fg_per_image.append(int(fg.sum()))
                wh = inst.gt_boxes.tensor[:, 2:] - inst.gt_boxes.tensor[:, :2]
                sizes += wh.prod(1).sqrt().tolist()
            best, positives, sizes = map(np.array, (best, positives, sizes))
            small = sizes < 32 * size / source_scale
            print(
                f"{setting:9s} {pipe:9s} GT/img {len(best) / len(instances):.1f} pos/img {np.mean(fg_per_image):5.1f}"
                f" | bestIoU>=.5 all {np.mean(best >= 0.5):.2f} small {np.mean(best[small] >= 0.5):.2f}"
                f" notsmall {np.mean(best[~small] >= 0.5):.2f} | pos/GT median small {np.median(positives[small]):.0f}"
                f" notsmall {np.median(positives[~small]):.0f} | small frac {small.mean():.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
