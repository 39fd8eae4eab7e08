"""SSD512, VGG-16, PASCAL VOC 07+12 -> VOC2007 test (SSD512 VOC default boxes)."""

from net_detr2.modeling.anchor_generator import ssd_default_box_sizes

from .common.ssd512_vgg16 import model
from .common.ssd_data_size import set_input_size
from .ssd300_vgg16_voc import dataloader, lr_multiplier, optimizer, train

model.num_classes = 20
model.head.num_classes = 20
model.prior_generator.update(ssd_default_box_sizes(512, "voc"))
set_input_size(dataloader, 512)
train.output_dir = "./output/netnet/ssd512_vgg16_voc"
