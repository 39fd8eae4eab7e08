"""Tsinghua-Tencent 100K, 45-class subset (EFPN): train and test with the short side at 1400 (TT100K images are
2048x2048). No flip: mirrored traffic signs change meaning (turn directions). Batch 8.
The evaluator reports accuracy/recall per size bin and COCO box AP."""

from net_detr2.evaluation import TT100KEvaluator

from .loader import detection_dataloader, rcnn_augmentations

dataloader = detection_dataloader(
    train="tt100k_train",
    test="tt100k_test",
    train_augmentations=rcnn_augmentations(1400, 2333, train=True, flip=False),
    test_augmentations=rcnn_augmentations(1400, 2333, train=False),
    evaluator=TT100KEvaluator,
    batch_size=8,
)
# the evaluator writes its predictions beside the checkpoints
dataloader.evaluator.output_dir = "${train.output_dir}"
