"""COCO 2017 with the SSD pipeline (NETNet): SSD300 augmentation, batch 32; COCO box AP on coco_2017_val.
For SSD512: ``dataloader.train.mapper.augmentations = ssd_augmentations(512, train=True)`` and the same for
the test mapper with ``train=False`` (``ssd_augmentations`` from ``loader.py``)."""

from net_detr2.evaluation import COCOEvaluator

from .loader import detection_dataloader, ssd_augmentations

dataloader = detection_dataloader(
    train="coco_2017_train",
    test="coco_2017_val",
    train_augmentations=ssd_augmentations(300, train=True),
    test_augmentations=ssd_augmentations(300, train=False),
    evaluator=COCOEvaluator,
    batch_size=32,
    aspect_ratio_grouping=False,  # every image is square after the fixed resize
)
# the evaluator writes its predictions (e.g. coco_instances_results.json) beside the checkpoints
dataloader.evaluator.output_dir = "${train.output_dir}"
