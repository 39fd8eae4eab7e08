"""The one dataloader recipe behind every dataset file in this folder, and its augmentation styles.

A dataset file is a call: ``dataloader = detection_dataloader(train=..., test=..., ...)``. Change one of
its values in an experiment as usual (``dataloader.train.total_batch_size = 8``), or swap a whole
augmentation list by name (``dataloader.train.mapper.augmentations = ssd_augmentations(512, train=True)``).
"""

from omegaconf import OmegaConf

import net_detr2.data.transforms as T
from net_detr2.config import LazyCall as L
from net_detr2.data import (
    DatasetMapper,
    build_detection_test_loader,
    build_detection_train_loader,
    get_detection_dataset_dicts,
)

# SSD's pixel mean (BGR), also the fill of the zoomed-out canvas
SSD_PIXEL_MEAN_BGR = [104.0, 117.0, 123.0]


def rcnn_augmentations(short_edge_length, max_size, *, train, flip=True):
    """R-CNN style: the short edge to one of ``short_edge_length`` (training: a choice per image) within
    ``max_size``, plus a horizontal flip in training when ``flip``."""
    if not train:
        return [L(T.ResizeShortestEdge)(short_edge_length=short_edge_length, max_size=max_size)]
    if isinstance(short_edge_length, int):
        resize = L(T.ResizeShortestEdge)(short_edge_length=short_edge_length, max_size=max_size)
    else:
        choices = tuple(short_edge_length)
        resize = L(T.ResizeShortestEdge)(short_edge_length=choices, max_size=max_size, sample_style="choice")
    return [resize] + ([L(T.RandomFlip)(horizontal=True)] if flip else [])


def ssd_augmentations(size=300, *, train, fill=SSD_PIXEL_MEAN_BGR):
    """SSD style at ``size`` x ``size``: photometric distortion, zoom-out (filled with ``fill``), min-IoU crop,
    fixed resize and flip in training; the fixed resize alone in testing."""
    resize = L(T.Resize)(shape=(size, size))
    if not train:
        return [resize]
    return [
        L(T.PhotometricDistort)(image_format="BGR"),
        L(T.Expand)(ratio_range=(1.0, 4.0), prob=0.5, fill=list(fill)),
        L(T.MinIoURandomCrop)(min_ious=(0.1, 0.3, 0.5, 0.7, 0.9), min_crop_size=0.3),
        resize,
        L(T.RandomFlip)(horizontal=True),
    ]


def fixed_size_augmentations(size=300, *, train):
    """A fixed resize to ``size`` x ``size``, plus a horizontal flip in training: SSD's input pipeline without
    its photometric distortion, zoom-out and min-IoU crop, for short from-scratch schedules where the zoom-out
    shrinks small objects below the smallest default boxes (`projects/NETNet/README.md`, "Why SSD did not
    learn")."""
    resize = L(T.Resize)(shape=(size, size))
    return [resize, L(T.RandomFlip)(horizontal=True)] if train else [resize]


def detection_dataloader(
    *,
    train,
    test,
    train_augmentations,
    test_augmentations,
    evaluator,
    batch_size,
    num_workers=4,
    test_num_workers=None,
    aspect_ratio_grouping=True,
    image_format="BGR",
):
    """``dataloader`` with ``train``, ``test`` and ``evaluator`` nodes.

    Args:
        train, test: registered dataset name(s) (the test split keeps images without boxes).
        train_augmentations, test_augmentations: lists of LazyCall augmentations (see above).
        evaluator: the evaluator's LazyCall target (called with the test dataset's name).
        batch_size: total training batch; num_workers / test_num_workers (default: the same) per loader.
        aspect_ratio_grouping: batch images of like aspect (off when every image has one size).
    """
    dataloader = OmegaConf.create()
    train_node = dict(
        dataset=L(get_detection_dataset_dicts)(names=train),
        mapper=L(DatasetMapper)(is_train=True, augmentations=train_augmentations, image_format=image_format),
        total_batch_size=batch_size,
    )
    if not aspect_ratio_grouping:
        train_node["aspect_ratio_grouping"] = False
    dataloader.train = L(build_detection_train_loader)(**train_node, num_workers=num_workers)
    dataloader.test = L(build_detection_test_loader)(
        dataset=L(get_detection_dataset_dicts)(names=test, filter_empty=False),
        mapper=L(DatasetMapper)(
            is_train=False, augmentations=test_augmentations, image_format="${...train.mapper.image_format}"
        ),
        num_workers=num_workers if test_num_workers is None else test_num_workers,
    )
    dataloader.evaluator = L(evaluator)(dataset_name="${..test.dataset.names}")
    return dataloader
