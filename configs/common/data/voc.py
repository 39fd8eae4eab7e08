"""Pascal VOC 07+12 detection, detectron2's recipe: train on voc_2007_trainval + voc_2012_trainval with short
edge (480..800 step 32, choice) max 1333 + flip; test on voc_2007_test at 800 with the VOC evaluator
(11-point AP50 for VOC2007, plus AP over IoU .5:.95)."""

from net_detr2.evaluation import PascalVOCDetectionEvaluator

from .loader import detection_dataloader, rcnn_augmentations

dataloader = detection_dataloader(
    train=["voc_2007_trainval", "voc_2012_trainval"],
    test="voc_2007_test",
    train_augmentations=rcnn_augmentations(range(480, 801, 32), 1333, train=True),
    test_augmentations=rcnn_augmentations(800, 1333, train=False),
    evaluator=PascalVOCDetectionEvaluator,
    batch_size=16,
)
