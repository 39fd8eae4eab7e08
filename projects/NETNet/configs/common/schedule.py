"""The NETNet paper's training recipe, expressed in iterations.

160 epochs at batch 32, SGD momentum 0.9, weight decay 5e-4, linear warm-up over the first 5 epochs,
LR x0.1 after epochs 90, 120 and 140; base LR 0.002 for the ablations and 0.004 for the final models.
"""

import math

from net_detr2.solver import multistep_with_warmup

# COCO trainval35k = coco_2014_train (82,783) + coco_2014_valminusminival (35,504) = 118,287 images, of which
# 117,266 have annotations (images without boxes are dropped by the loader, as in detectron2).
COCO_TRAINVAL35K_IMAGES = 117266
# VOC 07+12 trainval = 5,011 + 11,540 images.
VOC0712_TRAINVAL_IMAGES = 16551


def epoch_schedule(num_images, batch_size=32, epochs=160, lr_steps=(90, 120, 140), warmup_epochs=5):
    """(max_iter, lr_multiplier) for an epoch-based multi-step schedule with linear warm-up."""
    iters_per_epoch = math.ceil(num_images / batch_size)
    max_iter = epochs * iters_per_epoch
    lr_multiplier = multistep_with_warmup(
        max_iter=max_iter,
        steps=[e * iters_per_epoch for e in lr_steps],
        gamma=0.1,
        warmup_iters=warmup_epochs * iters_per_epoch,
        warmup_factor=0.001,
    )
    return max_iter, lr_multiplier
