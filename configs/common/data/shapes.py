"""Synthetic `shapes` (6 classes, ~50% small objects), R-CNN style: short edge 288/320/352 (max 512) + flip;
test at 320; batch 4; COCO-style box AP on shapes_val."""

from net_detr2.evaluation import COCOEvaluator

from .loader import detection_dataloader, rcnn_augmentations

dataloader = detection_dataloader(
    train="shapes_train",
    test="shapes_val",
    train_augmentations=rcnn_augmentations((288, 320, 352), 512, train=True),
    test_augmentations=rcnn_augmentations(320, 512, train=False),
    evaluator=COCOEvaluator,
    batch_size=4,
    # mapping one batch costs ~10 ms in the main process (see the data README), far below a training
    # step; workers would only compete with the model for the CPU cores
    num_workers=0,
)
# the evaluator writes its predictions (e.g. coco_instances_results.json) beside the checkpoints
dataloader.evaluator.output_dir = "${train.output_dir}"
