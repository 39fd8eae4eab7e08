"""Turn an SSD model config into NETNet: same backbone/head/default boxes plus the `NETNeck`.

Usage in a config: ``model = to_netnet(model)`` after importing an SSD model (see ``netnet300_vgg16_coco.py``).
Defaults are the paper's NETNet: NNFM on p1..p4, NETMs (NEM + light fusion + NTM) on (p1, p3), (p2, p4),
conv1x1 channel-wise gate.
"""

from net_detr2.config import LazyCall as L
from net_detr2_projects.NETNet.netnet import NETNeck, NETNet


def to_netnet(model, **net_kwargs):
    """Return the model config with ``_target_`` NETNet and a ``net`` node (kwargs override the defaults)."""
    model._target_ = NETNet
    model.net = L(NETNeck)(
        in_channels=list(model.head.in_channels),
        use_nem=True,
        use_ntm=True,
        fusion="nnfm",
        gate="conv",
        pairs=[[0, 2], [1, 3]],
        light_fusion=True,
        fusion_levels=4,
        norm="",
    )
    model.net.update(net_kwargs)
    return model
