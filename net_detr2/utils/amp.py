"""Mixed precision, one switch for every device: which autocast dtype a config asks for, and the context.

``train.amp = dict(enabled=..., dtype="float16" | "bfloat16")`` decides it for training and inference:

* CUDA ``float16``: autocast + a ``GradScaler`` (fp16's narrow exponent underflows small gradients);
* CUDA ``bfloat16``: autocast, no scaler (bf16 has fp32's exponent range);
* CPU ``bfloat16``: ``torch.autocast("cpu", dtype=torch.bfloat16)``; convolutions and matrix products run on the
  CPU's bf16 units. When the CPU lacks bf16 support, a warning says so once and the run stays fp32;
* CPU ``float16``: refused — CPU autocast in fp16 is slower than fp32 and has no scaler to keep it stable.

Autocast only changes the dtype of the ops it lists (convolutions, linear layers, ...). Parameters and the
optimizer's master weights stay fp32; losses, box decoding, IoU and NMS are kept fp32 by the models: each casts
its heads' outputs with `to_float32` where they leave the network (RPN and dense heads, the Fast R-CNN
predictor, distillation targets), and runs reduced-precision-sensitive math under `full_precision`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Iterator
from typing import Any

import torch

__all__ = [
    "AMP_DTYPES",
    "autocast",
    "cpu_supports_bf16",
    "full_precision",
    "needs_grad_scaler",
    "resolve_amp_dtype",
    "to_float32",
]

logger = logging.getLogger(__name__)

AMP_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}


@functools.cache
def cpu_supports_bf16() -> bool:
    """Whether this CPU runs bf16 convolutions/matmuls natively (oneDNN's check: AVX512-BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


@functools.cache
def _warn_once(message: str) -> None:
    logger.warning(message)


def resolve_amp_dtype(enabled: bool, dtype: str, device: str | torch.device) -> torch.dtype | None:
    """The autocast dtype for ``device``, or ``None`` to run in fp32.

    Args:
        enabled: ``train.amp.enabled``.
        dtype: ``train.amp.dtype``, ``"float16"`` or ``"bfloat16"``.
        device: where the model runs (``"cpu"``, ``"cuda"``, ``"cuda:1"``, a ``torch.device``).
    Raises:
        ValueError: ``dtype`` is not one of :data:`AMP_DTYPES`, or float16 was asked for on a CPU.
    """
    if dtype not in AMP_DTYPES:
        raise ValueError(f"train.amp.dtype must be one of {sorted(AMP_DTYPES)}, got {dtype!r}")
    if not enabled:
        return None
    device_type = torch.device(device).type
    if device_type == "cuda":
        return AMP_DTYPES[dtype]
    if device_type == "cpu":
        if dtype == "float16":
            raise ValueError(
                "train.amp.dtype='float16' is CUDA-only; on a CPU use train.amp.dtype='bfloat16' "
                "(or train.amp.enabled=False)"
            )
        if not cpu_supports_bf16():
            _warn_once(
                "This CPU has no native bfloat16 support (AVX512-BF16/AMX): mixed precision is off, running fp32."
            )
            return None
        return torch.bfloat16
    _warn_once(f"Mixed precision is not supported on device type {device_type!r}: running fp32.")
    return None


def needs_grad_scaler(dtype: torch.dtype | None, device: str | torch.device) -> bool:
    """A ``GradScaler`` is needed for CUDA float16 only."""
    return dtype == torch.float16 and torch.device(device).type == "cuda"


@contextlib.contextmanager
def autocast(device: str | torch.device, dtype: torch.dtype | None) -> Iterator[None]:
    """``torch.autocast`` on ``device``'s type with ``dtype``; a no-op when ``dtype`` is None (fp32)."""
    if dtype is None:
        yield
        return
    with torch.autocast(torch.device(device).type, dtype=dtype):
        yield


@contextlib.contextmanager
def full_precision(device: str | torch.device) -> Iterator[None]:
    """Turn autocast off for the block (on ``device``'s type), inside an autocast region or not.

    Ops then run in their inputs' dtype: pass them fp32 tensors (`to_float32`) to compute in fp32.
    """
    with torch.autocast(torch.device(device).type, enabled=False):
        yield


def to_float32(x: Any) -> Any:
    """``x`` with every floating-point tensor of lower precision cast to fp32 (differentiably).

    ``x``: a tensor, or lists / tuples / dicts of them (nested); other values and fp32/fp64 tensors are
    returned as they are, so that the call costs nothing when autocast is off.
    """
    if isinstance(x, torch.Tensor):
        return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
    if isinstance(x, (list, tuple)):
        return type(x)(to_float32(v) for v in x)
    if isinstance(x, dict):
        return type(x)((k, to_float32(v)) for k, v in x.items())
    return x
