"""Model: SSD with a VGG-16 backbone (conv4_3 with L2Norm, fc7 as dilated conv6 + 1x1 conv7, extra layers).

300 input, COCO default boxes. `ssd512_vgg16.py` changes the size; NETNet models import this one.
Pixel normalisation matches ImageNet torchvision VGG-16 weights converted with
``tools/convert_vgg16_to_ssd.py`` (BGR, 0-255, ImageNet mean/std in 0-255 units).
"""

from net_detr2.config import LazyCall as L
from net_detr2.modeling.anchor_generator import DefaultBoxGenerator, ssd_default_box_sizes
from net_detr2.modeling.backbone import VGG16, SSDBackbone, ssd_extra_layers
from net_detr2.modeling.meta_arch.ssd import SSD, SSDHead

_boxes = ssd_default_box_sizes(300, "coco")

model = L(SSD)(
    backbone=L(SSDBackbone)(
        bottom_up=L(VGG16)(out_features=["conv4_3", "fc7"], width_mult=1.0, norm="", l2norm_scale=20.0),
        in_features=["conv4_3", "fc7"],
        extra_layers=L(ssd_extra_layers)(input_size=300, width_mult=1.0),
        norm="",
    ),
    head=L(SSDHead)(
        in_channels=[512, 1024, 512, 256, 256, 256],
        num_anchors=[2 + 2 * len(r) for r in _boxes["aspect_ratios"]],
        num_classes="${..num_classes}",
    ),
    prior_generator=L(DefaultBoxGenerator)(**_boxes, clip=True),
    num_classes=80,
    pixel_mean=[103.53, 116.28, 123.675],
    pixel_std=[57.375, 57.12, 58.395],
    input_format="BGR",
    box_variances=(0.1, 0.2),
    iou_threshold=0.5,
    neg_pos_ratio=3.0,
    test_score_thresh=0.01,
    test_topk_candidates=400,
    test_nms_thresh=0.45,
    max_detections_per_image=200,
)
