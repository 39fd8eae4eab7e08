"""Synthetic `shapes` (6 classes, ~50% small objects), R-CNN style: short edge 288/320/352 (max 512) + flip;
test at 320; batch 4; COCO-style box AP on shapes_val."""

from omegaconf import OmegaConf

import net_detr2.data.transforms as T
from net_detr2.config import LazyCall as L
from net_detr2.data import (
    DatasetMapper,
    build_detection_test_loader,
    build_detection_train_loader,
    get_detection_dataset_dicts,
)
from net_detr2.evaluation import COCOEvaluator

dataloader = OmegaConf.create()

dataloader.train = L(build_detection_train_loader)(
    dataset=L(get_detection_dataset_dicts)(names="shapes_train"),
    mapper=L(DatasetMapper)(
        is_train=True,
        augmentations=[
            L(T.ResizeShortestEdge)(short_edge_length=(288, 320, 352), max_size=512, sample_style="choice"),
            L(T.RandomFlip)(horizontal=True),
        ],
        image_format="BGR",
    ),
    total_batch_size=4,
    # mapping one batch costs ~10 ms in the main process (see the data README), far below a training
    # step; workers would only compete with the model for the CPU cores
    num_workers=0,
)

dataloader.test = L(build_detection_test_loader)(
    dataset=L(get_detection_dataset_dicts)(names="shapes_val", filter_empty=False),
    mapper=L(DatasetMapper)(
        is_train=False,
        augmentations=[L(T.ResizeShortestEdge)(short_edge_length=320, max_size=512)],
        image_format="${...train.mapper.image_format}",
    ),
    num_workers=0,
)

# the predictions (e.g. coco_instances_results.json) are written beside the checkpoints
dataloader.evaluator = L(COCOEvaluator)(dataset_name="${..test.dataset.names}", output_dir="${train.output_dir}")
