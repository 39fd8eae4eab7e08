"""Pascal VOC 07+12 with the SSD pipeline (NETNet): SSD300 augmentation, batch 32; test voc_2007_test with
the VOC evaluator. For SSD512 change both 300s to 512."""

from omegaconf import OmegaConf

import net_detr2.data.transforms as T
from net_detr2.config import LazyCall as L
from net_detr2.data import (
    DatasetMapper,
    build_detection_test_loader,
    build_detection_train_loader,
    get_detection_dataset_dicts,
)
from net_detr2.evaluation import PascalVOCDetectionEvaluator

SSD_PIXEL_MEAN_BGR = [104.0, 117.0, 123.0]

dataloader = OmegaConf.create()

dataloader.train = L(build_detection_train_loader)(
    dataset=L(get_detection_dataset_dicts)(names=["voc_2007_trainval", "voc_2012_trainval"]),
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
    total_batch_size=32,
    aspect_ratio_grouping=False,
    num_workers=4,
)

dataloader.test = L(build_detection_test_loader)(
    dataset=L(get_detection_dataset_dicts)(names="voc_2007_test", filter_empty=False),
    mapper=L(DatasetMapper)(
        is_train=False,
        augmentations=[L(T.Resize)(shape=(300, 300))],
        image_format="${...train.mapper.image_format}",
    ),
    num_workers=4,
)

dataloader.evaluator = L(PascalVOCDetectionEvaluator)(dataset_name="${..test.dataset.names}")
