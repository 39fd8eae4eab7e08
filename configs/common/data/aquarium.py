"""Aquarium photos (7 classes, YOLO labels, `$NET_DETR2_DATASETS/aquarium`), R-CNN style for CPU budgets:
short edge 320..416 (max 576) + flip for training, 384 (max 512) for testing; batch 4; COCO box AP on
aquarium_valid. The photos are 1024x768, so the test size is 3/8 of the stored resolution."""

from net_detr2.evaluation import COCOEvaluator

from .loader import detection_dataloader, rcnn_augmentations

dataloader = detection_dataloader(
    train="aquarium_train",
    test="aquarium_valid",
    train_augmentations=rcnn_augmentations((320, 352, 384, 416), 576, train=True),
    test_augmentations=rcnn_augmentations(384, 512, train=False),
    evaluator=COCOEvaluator,
    batch_size=4,
    # decoding and resizing a 1024x768 JPEG takes ~17 ms (measured): one worker hides that behind the step
    num_workers=1,
    test_num_workers=0,
)
# the evaluator writes its predictions (e.g. coco_instances_results.json) beside the checkpoints
dataloader.evaluator.output_dir = "${train.output_dir}"
