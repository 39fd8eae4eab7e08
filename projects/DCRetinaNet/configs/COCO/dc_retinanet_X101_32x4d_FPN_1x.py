"""Table 1, "Ours ResNeXt-101" (paper, test-dev: 42.2 AP vs RetinaNet X101 40.8): the full method on an
X101-32x4d-FPN (32 groups x 4 channels in res2's bottleneck, 3x3 stride in the 3x3 conv), COCO 1x;
ImageNet weights from ``pretrained/X-101-32x4d.pkl`` (RGB, torchvision-style normalisation, as detectron2's
X101 recipe).
"""

from net_detr2_projects.DCRetinaNet.dc_retinanet.config_utils import use_dc_retinanet

from .retinanet_R50_FPN_1x_baseline import dataloader, lr_multiplier, model, optimizer, train

model.backbone.bottom_up.depth = 101
model.backbone.bottom_up.num_groups = 32
model.backbone.bottom_up.width_per_group = 4
model.backbone.bottom_up.stride_in_1x1 = False
model.pixel_mean = [123.675, 116.280, 103.530]
model.pixel_std = [58.395, 57.120, 57.375]
model.input_format = "RGB"
dataloader.train.mapper.image_format = "RGB"
train.init_checkpoint = "pretrained/X-101-32x4d.pkl"
use_dc_retinanet(model, iac_assignment=True, dc_loss=True, cl_nms=True)
train.output_dir = "./output/dc_retinanet/coco_X101_32x4d_1x"
