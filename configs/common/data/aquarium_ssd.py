"""Aquarium photos at a fixed 300x300 with a horizontal flip (SSD's zoom-out and min-IoU crop shrink or drop
the small fish: `projects/NETNet/README.md`, "Why SSD did not learn"); batch 8; COCO box AP on
aquarium_valid."""

from net_detr2.evaluation import COCOEvaluator

from .loader import detection_dataloader, fixed_size_augmentations

dataloader = detection_dataloader(
    train="aquarium_train",
    test="aquarium_valid",
    train_augmentations=fixed_size_augmentations(300, train=True),
    test_augmentations=fixed_size_augmentations(300, train=False),
    evaluator=COCOEvaluator,
    batch_size=8,
    num_workers=1,
    test_num_workers=0,
    aspect_ratio_grouping=False,
)
# the evaluator writes its predictions (e.g. coco_instances_results.json) beside the checkpoints
dataloader.evaluator.output_dir = "${train.output_dir}"
