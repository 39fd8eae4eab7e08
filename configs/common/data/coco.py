"""COCO 2017 detection, detectron2's standard: short edge (640..800 step 32, choice) max 1333 + flip;
test at 800; batch 16; COCO box AP on coco_2017_val."""

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
    dataset=L(get_detection_dataset_dicts)(names="coco_2017_train"),
    mapper=L(DatasetMapper)(
        is_train=True,
        augmentations=[
            L(T.ResizeShortestEdge)(
                short_edge_length=(640, 672, 704, 736, 768, 800), sample_style="choice", max_size=1333
            ),
            L(T.RandomFlip)(horizontal=True),
        ],
        image_format="BGR",
    ),
    total_batch_size=16,
    num_workers=4,
)

dataloader.test = L(build_detection_test_loader)(
    dataset=L(get_detection_dataset_dicts)(names="coco_2017_val", filter_empty=False),
    mapper=L(DatasetMapper)(
        is_train=False,
        augmentations=[L(T.ResizeShortestEdge)(short_edge_length=800, max_size=1333)],
        image_format="${...train.mapper.image_format}",
    ),
    num_workers=4,
)

# the predictions (e.g. coco_instances_results.json) are written beside the checkpoints
dataloader.evaluator = L(COCOEvaluator)(dataset_name="${..test.dataset.names}", output_dir="${train.output_dir}")
