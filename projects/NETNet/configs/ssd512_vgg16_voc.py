"""SSD512, VGG-16, PASCAL VOC 07+12 -> VOC2007 test (SSD512 VOC default boxes)."""

from net_detr2.model_zoo.configs.common.data.loader import ssd_augmentations
from net_detr2.modeling.anchor_generator import ssd_default_box_sizes

from .common.ssd512_vgg16 import model
from .ssd300_vgg16_voc import dataloader, lr_multiplier, optimizer, train

model.num_classes = 20
model.prior_generator.update(ssd_default_box_sizes(512, "voc"))
dataloader.train.mapper.augmentations = ssd_augmentations(512, train=True)
dataloader.test.mapper.augmentations = ssd_augmentations(512, train=False)
train.output_dir = "./output/netnet/ssd512_vgg16_voc"
