"""``eval_mode``: run a block with modules in eval mode, then give every sub-module its own training flag back."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn

__all__ = ["eval_mode"]


@contextlib.contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Put ``modules`` (and all their children) in eval mode for the block.

    Afterwards each child gets back its own flag rather than the parent's ``train(True)``, so sub-modules
    kept in eval on purpose (a frozen teacher, BatchNorm in eval) stay so. Gradients are not touched: wrap
    the block in ``torch.no_grad()`` where none are needed.
    """
    flags = [(m, m.training) for module in modules for m in module.modules()]
    for module in modules:
        module.eval()
    try:
        yield
    finally:
        for m, flag in flags:
            m.training = flag
