"""`faster_rcnn_R18_FPN.py` with a full-width ResNet-18 initialised from a local torchvision ImageNet file:
the optional path for users who have one (nothing is downloaded).

    python train_net.py --config-file configs/aquarium/faster_rcnn_R18_FPN_imagenet.py \\
        train.init_checkpoint=/path/to/resnet18-f37072fd.pth

The torchvision state dict is renamed into ``backbone.bottom_up.*`` on load
(net_detr2/compat/backbone_weights.py). The network is configured the way torchvision trained it: stride on
the 3x3 convs, RGB input normalised with torchvision's mean/std; BatchNorm frozen and the stem + res2 frozen
(detectron2's fine-tuning defaults). The rest (FPN, heads, data, schedule) is the from-scratch recipe's.
"""

from net_detr2.compat import TORCHVISION_PIXEL_MEAN, TORCHVISION_PIXEL_STD
from net_detr2.config import LazyCall as L
from net_detr2.modeling.backbone import build_resnet_backbone

from .faster_rcnn_R18_FPN import dataloader, lr_multiplier, model, optimizer, train

model.backbone.bottom_up = L(build_resnet_backbone)(
    depth=18,
    res2_out_channels=64,
    stride_in_1x1=False,
    norm="FrozenBN",
    freeze_at=2,
    out_features=["res2", "res3", "res4", "res5"],
)
model.input_format = "RGB"
model.pixel_mean = TORCHVISION_PIXEL_MEAN
model.pixel_std = TORCHVISION_PIXEL_STD
dataloader.train.mapper.image_format = "RGB"
train.init_checkpoint = "resnet18-f37072fd.pth"  # torchvision's file name: pass the path to yours
train.output_dir = "./output/aquarium/faster_rcnn_R18_FPN_imagenet"
