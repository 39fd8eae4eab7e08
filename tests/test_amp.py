from __future__ import annotations

import logging

import pytest
import torch

from net_detr2.utils import amp


def test_disabled_means_fp32_and_no_autocast():
    assert amp.resolve_amp_dtype(False, "bfloat16", "cpu") is None
    conv = torch.nn.Conv2d(3, 4, 3)
    with amp.autocast("cpu", None):
        assert conv(torch.randn(1, 3, 8, 8)).dtype == torch.float32


def test_bad_dtype_names_the_key_and_value():
    with pytest.raises(ValueError, match=r"train\.amp\.dtype.*'half'"):
        amp.resolve_amp_dtype(True, "half", "cpu")
    # Checked even when disabled, so a typo does not wait until someone turns AMP on.
    with pytest.raises(ValueError, match=r"train\.amp\.dtype"):
        amp.resolve_amp_dtype(False, "fp16", "cpu")


def test_cpu_float16_is_refused():
    with pytest.raises(ValueError, match="CUDA-only"):
        amp.resolve_amp_dtype(True, "float16", "cpu")


def test_cuda_dtypes_and_scaler():
    assert amp.resolve_amp_dtype(True, "float16", "cuda:0") is torch.float16
    assert amp.resolve_amp_dtype(True, "bfloat16", torch.device("cuda")) is torch.bfloat16
    assert amp.needs_grad_scaler(torch.float16, "cuda")
    assert not amp.needs_grad_scaler(torch.bfloat16, "cuda")
    assert not amp.needs_grad_scaler(None, "cuda")


def test_cpu_bf16_follows_hardware_support(monkeypatch, caplog):
    monkeypatch.setattr(amp, "cpu_supports_bf16", lambda: True)
    assert amp.resolve_amp_dtype(True, "bfloat16", "cpu") is torch.bfloat16
    monkeypatch.setattr(amp, "cpu_supports_bf16", lambda: False)
    amp._warn_once.cache_clear()
    with caplog.at_level(logging.WARNING, logger=amp.__name__):
        assert amp.resolve_amp_dtype(True, "bfloat16", "cpu") is None
        assert amp.resolve_amp_dtype(True, "bfloat16", "cpu") is None
    assert sum("no native bfloat16" in r.getMessage() for r in caplog.records) == 1


def test_cpu_autocast_runs_convolutions_in_bf16():
    conv = torch.nn.Conv2d(3, 4, 3)
    with amp.autocast("cpu", torch.bfloat16):
        y = conv(torch.randn(1, 3, 8, 8))
    assert y.dtype == torch.bfloat16
    assert conv.weight.dtype == torch.float32
