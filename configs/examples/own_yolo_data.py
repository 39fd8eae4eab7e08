"""Your own photos: a YOLO-format dataset registered by the config itself, trained with the Aquarium recipe.

Put your data in a folder laid out like Roboflow / ultralytics exports (here the Aquarium set, linked at
datasets/aquarium by `datasets/prepare_aquarium.py`):

    <ROOT>/data.yaml              names: [fish, jellyfish, ...]   (class ids 0..K-1 of the label files)
    <ROOT>/train/images/*.jpg     <ROOT>/train/labels/*.txt       one "class cx cy w h" line per box (0..1)
    <ROOT>/valid/images/*.jpg     <ROOT>/valid/labels/*.txt

Every tool that takes this config finds the two names, e.g.

    python train_net.py --config-file configs/examples/own_yolo_data.py
    python demo.py --config-file configs/examples/own_yolo_data.py --dataset my_photos_valid --output out/vis
    python tools/browse_dataset.py --config-file configs/examples/own_yolo_data.py --dataset my_photos_train \\
        --output out/browse

A COCO-format set works the same way with
``register_coco_instances("my_train", {}, "<ROOT>/annotations/train.json", "<ROOT>/images/train")``.
Loading the config again in one process registers nothing twice (the same files: a no-op).
"""

from net_detr2.data.datasets import register_yolo_dataset

from ..aquarium.faster_rcnn_R18_FPN import dataloader, lr_multiplier, model, optimizer, train

ROOT = "datasets/aquarium"
NUM_CLASSES = 7  # the number of names in ROOT/data.yaml

register_yolo_dataset("my_photos_train", ROOT, "train")
register_yolo_dataset("my_photos_valid", ROOT, "valid")

dataloader.train.dataset.names = "my_photos_train"
dataloader.test.dataset.names = "my_photos_valid"
model.roi_heads.num_classes = NUM_CLASSES
model.roi_heads.box_predictor.num_classes = NUM_CLASSES
train.output_dir = "./output/examples/own_yolo_data"
