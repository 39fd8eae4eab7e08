"""Weight initialisations of the Caffe2/Detectron lineage (the defaults behind detectron2's modules)."""

from __future__ import annotations

from torch import nn

__all__ = ["c2_msra_fill", "c2_xavier_fill"]


def c2_msra_fill(module: nn.Module) -> None:
    """He-normal weight (fan_out, ReLU gain), zero bias: used for ResNet convs."""
    nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    if module.bias is not None:
        nn.init.constant_(module.bias, 0)


def c2_xavier_fill(module: nn.Module) -> None:
    """Uniform weight with bound sqrt(3 / fan_in) (kaiming_uniform with a=1), zero bias: used for FPN convs."""
    nn.init.kaiming_uniform_(module.weight, a=1)
    if module.bias is not None:
        nn.init.constant_(module.bias, 0)
