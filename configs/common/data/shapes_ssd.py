"""Synthetic `shapes` with the SSD pipeline at 300x300 (photometric distortion, zoom-out, min-IoU crop,
flip, fixed resize); batch 8; COCO-style box AP on shapes_val."""

from net_detr2.evaluation import COCOEvaluator

from .loader import detection_dataloader, ssd_augmentations

dataloader = detection_dataloader(
    train="shapes_train",
    test="shapes_val",
    train_augmentations=ssd_augmentations(300, train=True),
    test_augmentations=ssd_augmentations(300, train=False),
    evaluator=COCOEvaluator,
    batch_size=8,
    num_workers=0,
    aspect_ratio_grouping=False,  # every image is 300x300 after the fixed resize
)
# the evaluator writes its predictions (e.g. coco_instances_results.json) beside the checkpoints
dataloader.evaluator.output_dir = "${train.output_dir}"
