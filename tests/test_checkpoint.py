"""Checkpointing: atomic saves, corrupt files, safe .pkl loading, key/shape reports."""

from __future__ import annotations

import logging
import os
import pickle
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from net_detr2.checkpoint import CheckpointLoadError, DetectionCheckpointer, load_pkl


class Net(nn.Module):
    def __init__(self, out: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, out)


@pytest.fixture
def ncaplog(caplog):
    logger = logging.getLogger("fvcore")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.INFO)
    yield caplog
    logger.removeHandler(caplog.handler)


def _filled(seed: int, out: int = 3) -> Net:
    torch.manual_seed(seed)
    return Net(out)


def test_save_and_resume_all_state(tmp_path):
    model = _filled(0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss = model.fc(model.bn(model.conv(torch.randn(2, 2, 5, 5))).mean((2, 3))).sum()
    loss.backward()
    opt.step()
    sched = torch.optim.lr_scheduler.StepLR(opt, 1)
    opt.step()
    sched.step()
    ckpt = DetectionCheckpointer(model, str(tmp_path), optimizer=opt, scheduler=sched)
    ckpt.save("model_0000009", iteration=9)
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000009.pth"
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp")]

    model2 = _filled(1)
    opt2 = torch.optim.SGD(model2.parameters(), lr=0.5, momentum=0.9)
    sched2 = torch.optim.lr_scheduler.StepLR(opt2, 1)
    ckpt2 = DetectionCheckpointer(model2, str(tmp_path), optimizer=opt2, scheduler=sched2)
    extra = ckpt2.resume_or_load("", resume=True)
    assert extra["iteration"] == 9
    for k, v in model.state_dict().items():
        assert torch.equal(model2.state_dict()[k], v), k
    assert opt2.param_groups[0]["lr"] == pytest.approx(0.01)
    assert sched2.last_epoch == 1
    buf = opt.state[next(iter(model.parameters()))]["momentum_buffer"]
    assert torch.equal(opt2.state[next(iter(model2.parameters()))]["momentum_buffer"], buf)


def test_interrupted_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    model = _filled(0)
    ckpt = DetectionCheckpointer(model, str(tmp_path))
    ckpt.save("model_0000001", iteration=1)
    good = {k: v.clone() for k, v in model.state_dict().items()}

    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    real_save = torch.save

    def failing_save(obj, f, *a, **k):
        f.write(b"PK\x03\x04 partial bytes")  # some bytes hit the disk ...
        raise OSError("disk full")  # ... then the write fails

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save("model_0000001", iteration=2)  # same name: must not clobber the good file
    with pytest.raises(OSError, match="disk full"):
        ckpt.save("model_0000002", iteration=2)
    monkeypatch.setattr(torch, "save", real_save)

    assert (tmp_path / "last_checkpoint").read_text() == "model_0000001.pth"
    assert sorted(os.listdir(tmp_path)) == ["last_checkpoint", "model_0000001.pth"]  # no temp files left
    fresh = _filled(3)
    extra = DetectionCheckpointer(fresh, str(tmp_path)).resume_or_load("", resume=True)
    assert extra["iteration"] == 1
    for k, v in good.items():
        assert torch.equal(fresh.state_dict()[k], v)


def test_truncated_checkpoint_names_file(tmp_path):
    model = _filled(0)
    DetectionCheckpointer(model, str(tmp_path)).save("model_final")
    path = tmp_path / "model_final.pth"
    data = path.read_bytes()
    bad = tmp_path / "truncated.pth"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointLoadError, match=f"Cannot read checkpoint {bad}"):
        DetectionCheckpointer(_filled(1)).load(str(bad))
    bad_pkl = tmp_path / "truncated.pkl"
    bad_pkl.write_bytes(pickle.dumps({"model": {"fc.bias": np.zeros(3, np.float32)}})[:30])
    with pytest.raises(CheckpointLoadError, match=f"Cannot read checkpoint {bad_pkl}"):
        DetectionCheckpointer(_filled(1)).load(str(bad_pkl))
    with pytest.raises(FileNotFoundError, match="nothere.pth"):
        DetectionCheckpointer(_filled(1)).load(str(tmp_path / "nothere.pth"))


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_malicious_pkl_is_refused(tmp_path):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"model": {"fc.bias": _Evil()}}, protocol=2))
    with pytest.raises(
        CheckpointLoadError,
        match=rf"Refusing to load {path}: it references the global "
        r"'posix.system'",
    ):
        DetectionCheckpointer(_filled(0)).load(str(path))
    # A .pth with code in it is refused by torch.load(weights_only=True), naming the file.
    pth = tmp_path / "evil.pth"
    with open(pth, "wb") as f:
        pickle.dump({"model": _Evil()}, f, protocol=2)
    with pytest.raises(CheckpointLoadError, match=f"{pth}"):
        DetectionCheckpointer(_filled(0)).load(str(pth))


def test_valid_pkl_loads_and_reports_keys(tmp_path, ncaplog):
    src = _filled(0, out=5)  # fc has 5 outputs: shape mismatch with a 3-output model
    weights = OrderedDict((k, v.numpy().copy()) for k, v in src.state_dict().items())
    weights["extra.weight"] = np.ones((2, 2), np.float32)
    del weights["bn.running_var"]
    weights["bn.num_batches_tracked"] = np.int64(0)
    path = tmp_path / "model.pkl"
    for protocol in (2, pickle.HIGHEST_PROTOCOL):
        with open(path, "wb") as f:
            pickle.dump({"model": weights, "__author__": "someone", "matching_heuristics": True}, f, protocol=protocol)
        raw = load_pkl(str(path))
        assert raw["__author__"] == "someone" and isinstance(raw["model"]["conv.weight"], np.ndarray)
        dst = _filled(1, out=3)
        ckpt = DetectionCheckpointer(dst)
        extra = ckpt.load(str(path))
        assert extra["__author__"] == "someone"
        assert torch.equal(dst.conv.weight, src.conv.weight)
        assert torch.equal(dst.bn.running_mean, src.bn.running_mean)
        inc = ckpt.last_incompatible
        assert inc.missing_keys == ["bn.running_var", "fc.weight", "fc.bias"]
        assert inc.unexpected_keys == ["extra.weight"]
        assert sorted(k for k, *_ in inc.incorrect_shapes) == ["fc.bias", "fc.weight"]
    assert "Loaded 6 tensors from" in ncaplog.text  # 9 in the file - 1 unexpected - 2 mismatched
    assert "Skip loading parameter 'fc.weight'" in ncaplog.text
    assert "extra.weight" in ncaplog.text and "bn.running_var" in ncaplog.text


def test_bare_state_dict_and_ddp_prefix(tmp_path):
    src = _filled(0)
    path = tmp_path / "bare.pth"
    torch.save({f"module.{k}": v for k, v in src.state_dict().items()}, path)
    dst = _filled(1)
    DetectionCheckpointer(dst).load(str(path))
    assert torch.equal(dst.fc.weight, src.fc.weight)
