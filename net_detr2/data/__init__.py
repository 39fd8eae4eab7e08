"""Data: dataset catalogs, loaders for COCO/VOC/YOLO/TT100K/synthetic shapes, mapping, augmentation, loaders.

Importing this package registers the built-in dataset names (no file is read until one is asked for).
"""

from __future__ import annotations

from . import (
    datasets,  # noqa: F401  (registers the built-in datasets)
    detection_utils,  # noqa: F401
    transforms,  # noqa: F401
)
from .build import (
    build_detection_test_loader,
    build_detection_train_loader,
    get_detection_dataset_dicts,
)
from .catalog import DatasetCatalog, Metadata, MetadataCatalog
from .common import DatasetFromList, MapDataset
from .dataset_mapper import DatasetMapper

__all__ = [k for k in globals().keys() if not k.startswith("_")]
