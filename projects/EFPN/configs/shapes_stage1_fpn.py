"""EFPN stage 1 on `shapes`: the plain FPN Faster R-CNN baseline (narrow ResNet-18, from scratch).

Exactly ``configs/shapes/faster_rcnn_R18_FPN.py`` (1000 iterations, ~10 min on 2 CPU cores), writing to
``output/shapes_frcnn`` -- the directory that config's own documented command uses, so an existing run
there serves as stage 1 and stage 2 finds ``output/shapes_frcnn/model_final.pth`` by default.

    OMP_NUM_THREADS=2 python train_net.py --config-file projects/EFPN/configs/shapes_stage1_fpn.py
"""

from net_detr2.model_zoo.configs.shapes.faster_rcnn_R18_FPN import dataloader, lr_multiplier, model, optimizer, train

train.output_dir = "./output/shapes_frcnn"
