"""Pascal VOC 07+12 with the SSD pipeline (NETNet): SSD300 augmentation, batch 32; test voc_2007_test with
the VOC evaluator. For SSD512 see ``coco_ssd.py``."""

from net_detr2.evaluation import PascalVOCDetectionEvaluator

from .loader import detection_dataloader, ssd_augmentations

dataloader = detection_dataloader(
    train=["voc_2007_trainval", "voc_2012_trainval"],
    test="voc_2007_test",
    train_augmentations=ssd_augmentations(300, train=True),
    test_augmentations=ssd_augmentations(300, train=False),
    evaluator=PascalVOCDetectionEvaluator,
    batch_size=32,
    aspect_ratio_grouping=False,
)
