"""Model: SSD512 with a ResNet-101 backbone: res3 (stride 8, 64x64) and res4 (stride 16, 32x32) + 5 extra
layers (16/8/4/2/1), COCO default boxes. MSRA ImageNet weights (caffe-style BGR, std 1)."""

from net_detr2.config import LazyCall as L
from net_detr2.modeling.anchor_generator import ssd_default_box_sizes
from net_detr2.modeling.backbone import build_resnet_backbone

from .ssd_vgg16 import model

_boxes = ssd_default_box_sizes(512, "coco")
model.backbone.bottom_up = L(build_resnet_backbone)(
    depth=101, norm="FrozenBN", out_features=["res3", "res4"], freeze_at=2
)
model.backbone.in_features = ["res3", "res4"]
model.backbone.extra_layers.input_size = 512
model.head.in_channels = [512, 1024, 512, 256, 256, 256, 256]
model.head.num_anchors = [2 + 2 * len(r) for r in _boxes["aspect_ratios"]]
model.prior_generator.update(_boxes)
model.pixel_mean = [103.53, 116.28, 123.675]
model.pixel_std = [1.0, 1.0, 1.0]
