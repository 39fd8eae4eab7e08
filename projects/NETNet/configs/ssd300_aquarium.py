"""SSD300 on the Aquarium photos, from scratch on 2 CPU cores in about 20 minutes (1500 iterations, ~27 epochs).

The `shapes` SSD300 (VGG-16 layout at 1/8 width, BatchNorm after every conv, COCO default boxes, AdamW) with
the Aquarium data (a fixed 300x300 resize and a flip, batch 8) and 7 classes. `netnet300_aquarium.py` is this
config plus the NETNet neck, with the identical schedule; `*_gpu.py` lengthen the schedule for a GPU.
Model and optimizer come from `ssd300_shapes.py`, so the head prior (0.01) and lr 3e-3 found there apply
here too (the NETNet README's Aquarium table has runs before and after these fixes).
"""

from net_detr2.model_zoo.configs.common.data.aquarium_ssd import dataloader
from net_detr2.solver import multistep_with_warmup

from .ssd300_shapes import model, optimizer, train

NUM_CLASSES = 7
MAX_ITER = 1500

model.num_classes = NUM_CLASSES
train.max_iter = MAX_ITER
lr_multiplier = multistep_with_warmup(
    max_iter=MAX_ITER, steps=(int(MAX_ITER * 0.8), int(MAX_ITER * 0.93)), warmup_iters=100, warmup_factor=0.01
)
train.checkpointer.period = 500
train.output_dir = "./output/aquarium/ssd300"
