"""Tsinghua-Tencent 100K, 45-class subset (EFPN): train and test with the short side at 1400 (TT100K images are
2048x2048). No flip: mirrored traffic signs change meaning (turn directions). Batch 8.
The evaluator reports accuracy/recall per size bin and COCO box AP."""

from omegaconf import OmegaConf

import net_detr2.data.transforms as T
from net_detr2.config import LazyCall as L
from net_detr2.data import (
    DatasetMapper,
    build_detection_test_loader,
    build_detection_train_loader,
    get_detection_dataset_dicts,
)
from net_detr2.evaluation.tt100k_evaluation import TT100KEvaluator

dataloader = OmegaConf.create()

dataloader.train = L(build_detection_train_loader)(
    dataset=L(get_detection_dataset_dicts)(names="tt100k_train"),
    mapper=L(DatasetMapper)(
        is_train=True,
        augmentations=[L(T.ResizeShortestEdge)(short_edge_length=1400, max_size=2333)],
        image_format="BGR",
    ),
    total_batch_size=8,
    num_workers=4,
)

dataloader.test = L(build_detection_test_loader)(
    dataset=L(get_detection_dataset_dicts)(names="tt100k_test", filter_empty=False),
    mapper=L(DatasetMapper)(
        is_train=False,
        augmentations=[L(T.ResizeShortestEdge)(short_edge_length=1400, max_size=2333)],
        image_format="${...train.mapper.image_format}",
    ),
    num_workers=4,
)

# the predictions (e.g. coco_instances_results.json) are written beside the checkpoints
dataloader.evaluator = L(TT100KEvaluator)(dataset_name="${..test.dataset.names}", output_dir="${train.output_dir}")
