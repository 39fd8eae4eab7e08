"""Aquarium photos with the SSD pipeline at 300x300 (photometric distortion, zoom-out, min-IoU crop, flip,
fixed resize); batch 8; COCO box AP on aquarium_valid."""

from .shapes_ssd import dataloader

dataloader.train.dataset.names = "aquarium_train"
dataloader.train.num_workers = 1
dataloader.test.dataset.names = "aquarium_valid"
