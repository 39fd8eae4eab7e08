"""Model: SSD512 with VGG-16 (7 levels: 64/32/16/8/4/2/1), COCO default boxes."""

from net_detr2.modeling.anchor_generator import ssd_default_box_sizes

from .ssd_vgg16 import model

_boxes = ssd_default_box_sizes(512, "coco")
model.backbone.extra_layers.input_size = 512
model.head.in_channels = [512, 1024, 512, 256, 256, 256, 256]
model.head.num_anchors = [2 + 2 * len(r) for r in _boxes["aspect_ratios"]]
model.prior_generator.update(_boxes)
