"""Synthetic `shapes` with the SSD pipeline at 300x300 (photometric distortion, zoom-out, min-IoU crop,
flip, fixed resize); batch 8; COCO-style box AP on shapes_val."""

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

# SSD's pixel mean (BGR), also the fill of the zoomed-out canvas
SSD_PIXEL_MEAN_BGR = [104.0, 117.0, 123.0]

dataloader = OmegaConf.create()

dataloader.train = L(build_detection_train_loader)(
    dataset=L(get_detection_dataset_dicts)(names="shapes_train"),
    mapper=L(DatasetMapper)(
        is_train=True,
        augmentations=[
            L(T.PhotometricDistort)(image_format="BGR"),
            L(T.Expand)(ratio_range=(1.0, 4.0), prob=0.5, fill=SSD_PIXEL_MEAN_BGR),
            L(T.MinIoURandomCrop)(min_ious=(0.1, 0.3, 0.5, 0.7, 0.9), min_crop_size=0.3),
            L(T.Resize)(shape=(300, 300)),
            L(T.RandomFlip)(horizontal=True),
        ],
        image_format="BGR",
    ),
    total_batch_size=8,
    aspect_ratio_grouping=False,  # every image is 300x300 after the fixed resize
    num_workers=0,
)

dataloader.test = L(build_detection_test_loader)(
    dataset=L(get_detection_dataset_dicts)(names="shapes_val", filter_empty=False),
    mapper=L(DatasetMapper)(
        is_train=False,
        augmentations=[L(T.Resize)(shape=(300, 300))],
        image_format="${...train.mapper.image_format}",
    ),
    num_workers=0,
)

# the predictions (e.g. coco_instances_results.json) are written beside the checkpoints
dataloader.evaluator = L(COCOEvaluator)(dataset_name="${..test.dataset.names}", output_dir="${train.output_dir}")
