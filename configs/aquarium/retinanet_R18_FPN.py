"""RetinaNet, narrow ResNet-18-FPN on P2-P6, trained from scratch on the Aquarium photos.

The `shapes` RetinaNet (configs/shapes/retinanet_R18_FPN.py: why P2-P6, no head norm, AdamW 3e-3) with the
Aquarium data (configs/common/data/aquarium.py) and 7 classes; anchors of aspect 1:2, 1:1, 2:1 for the
elongated fish and sharks; the shapes schedule (2000 iterations of batch 4). Checked by a 30-iteration run
(1.15 s per iteration with one thread while another job ran), not trained to the end here.

    OMP_NUM_THREADS=2 python train_net.py --config-file configs/aquarium/retinanet_R18_FPN.py
"""

from ..common.data.aquarium import dataloader
from ..shapes.retinanet_R18_FPN import lr_multiplier, model, optimizer, train

NUM_CLASSES = 7

model.num_classes = NUM_CLASSES
model.anchor_generator.aspect_ratios = [0.5, 1.0, 2.0]
model.head.num_anchors = 6
train.log_period = 20
train.output_dir = "./output/aquarium/retinanet_R18_FPN"
