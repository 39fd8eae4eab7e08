"""COCO 2017 detection, detectron2's standard: short edge (640..800 step 32, choice) max 1333 + flip;
test at 800; batch 16; COCO box AP on coco_2017_val."""

from net_detr2.evaluation import COCOEvaluator

from .loader import detection_dataloader, rcnn_augmentations

dataloader = detection_dataloader(
    train="coco_2017_train",
    test="coco_2017_val",
    train_augmentations=rcnn_augmentations(range(640, 801, 32), 1333, train=True),
    test_augmentations=rcnn_augmentations(800, 1333, train=False),
    evaluator=COCOEvaluator,
    batch_size=16,
)
# the evaluator writes its predictions (e.g. coco_instances_results.json) beside the checkpoints
dataloader.evaluator.output_dir = "${train.output_dir}"
