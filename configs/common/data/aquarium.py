"""Aquarium photos (7 classes, YOLO labels, `$NET_DETR2_DATASETS/aquarium`), R-CNN style for CPU budgets:
short edge 320..416 (max 576) + flip for training, 384 (max 512) for testing; batch 4; COCO box AP on
aquarium_valid. The photos are 1024x768, so the test size is 3/8 of the stored resolution."""

import net_detr2.data.transforms as T
from net_detr2.config import LazyCall as L

from .shapes import dataloader

dataloader.train.dataset.names = "aquarium_train"
dataloader.train.mapper.augmentations = [
    L(T.ResizeShortestEdge)(short_edge_length=(320, 352, 384, 416), max_size=576, sample_style="choice"),
    L(T.RandomFlip)(horizontal=True),
]
# decoding and resizing a 1024x768 JPEG takes ~17 ms (measured): one worker hides that behind the step
dataloader.train.num_workers = 1
dataloader.test.dataset.names = "aquarium_valid"
dataloader.test.mapper.augmentations = [L(T.ResizeShortestEdge)(short_edge_length=384, max_size=512)]
