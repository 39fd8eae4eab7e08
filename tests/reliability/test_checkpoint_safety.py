"""Checkpoints: bad files are refused naming file/key, resumes are strict, saves never write NaN/Inf, a full
disk is reported as such, and temporary files of interrupted saves can be cleaned up."""

from __future__ import annotations

import errno
import hashlib
import io
import logging
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from net_detr2.checkpoint import (
    MAX_ITERATION,
    CheckpointLoadError,
    DetectionCheckpointer,
    atomic_io,
    remove_stale_temp_files,
)

REPO = Path(__file__).resolve().parents[2]


class Net(nn.Module):
    def __init__(self, out: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, out)


def _net(seed: int, out: int = 3) -> Net:
    torch.manual_seed(seed)
    return Net(out)


def _md5s(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def _assert_unchanged(model: nn.Module, before: dict[str, torch.Tensor]) -> None:
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


# ---------------------------------------------------------------------------- refusing bad files
def test_directory_url_and_missing_file_are_named(tmp_path):
    DetectionCheckpointer(_net(0), str(tmp_path)).save("model_final")
    with pytest.raises(IsADirectoryError, match=rf"Checkpoint {tmp_path} is a directory.*model_final\.pth"):
        DetectionCheckpointer(_net(1)).load(str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"Checkpoint .*nothere\.pth not found"):
        DetectionCheckpointer(_net(1)).load(str(tmp_path / "nothere.pth"))
    # URLs are refused (nothing is ever downloaded), with the model zoo's address for detectron2:// paths.
    with pytest.raises(CheckpointLoadError, match=r"https://example\.com/w\.pth is a URL; net_detr2 never downloads"):
        DetectionCheckpointer(_net(1)).load("https://example.com/w.pth")
    with pytest.raises(
        CheckpointLoadError, match=r"https://dl\.fbaipublicfiles\.com/detectron2/ImageNetPretrained/MSRA/R-50\.pkl"
    ):
        DetectionCheckpointer(_net(1)).load("detectron2://ImageNetPretrained/MSRA/R-50.pkl")
    # last_checkpoint naming a file that is gone: the error says which file and who names it.
    (tmp_path / "model_final.pth").unlink()
    with pytest.raises(FileNotFoundError, match=r"last_checkpoint names .*model_final\.pth, which does not exist"):
        DetectionCheckpointer(_net(1), str(tmp_path)).resume_or_load("", resume=True)


@pytest.mark.parametrize(
    "value, dtype_text",
    [
        (np.array(["a", "bc"]), "<U2"),
        (np.array([b"ab", b"c"]), "|S2"),
        (np.array([1.0, "x"], dtype=object), "object"),
        (np.str_("abc"), "<U3"),
    ],
)
def test_pkl_with_object_or_string_arrays_names_file_and_key(tmp_path, value, dtype_text):
    path = tmp_path / "w.pkl"
    weights = {k: v.numpy() for k, v in _net(0).state_dict().items()}
    weights["fc.bias"] = value
    path.write_bytes(pickle.dumps({"model": weights}, protocol=2))
    model = _net(1)
    before = _state(model)
    with pytest.raises(CheckpointLoadError, match=rf"{path}: 'model' entry 'fc\.bias' .*dtype {dtype_text}"):
        DetectionCheckpointer(model).load(str(path))
    _assert_unchanged(model, before)


def test_pth_model_list_or_non_tensor_values_name_file_and_key(tmp_path):
    model = _net(1)
    before = _state(model)
    path = tmp_path / "list.pth"
    torch.save({"model": [torch.zeros(3)]}, path)
    with pytest.raises(CheckpointLoadError, match=rf"{path}: 'model' is a list"):
        DetectionCheckpointer(model).load(str(path))
    for bad in (3, "abc", [1.0, 2.0], {"nested": torch.zeros(1)}):
        sd = dict(_net(0).state_dict())
        sd["fc.weight"] = bad
        path = tmp_path / "values.pth"
        torch.save({"model": sd}, path)
        with pytest.raises(CheckpointLoadError, match=rf"{path}: 'model' entry 'fc\.weight' is a {type(bad).__name__}"):
            DetectionCheckpointer(model).load(str(path))
    _assert_unchanged(model, before)


@pytest.mark.parametrize("iteration", [1e12, 3.0, "5", True, 10**12, -7, MAX_ITERATION + 1, torch.tensor(2.5)])
def test_bad_iteration_is_refused_naming_the_file(tmp_path, iteration):
    src = _net(0)
    torch.save({"model": src.state_dict(), "iteration": iteration}, tmp_path / "model_0000009.pth")
    (tmp_path / "last_checkpoint").write_text("model_0000009.pth")
    model = _net(1)
    before = _state(model)
    with pytest.raises(CheckpointLoadError, match=rf"{tmp_path / 'model_0000009.pth'}: 'iteration'"):
        DetectionCheckpointer(model, str(tmp_path)).resume_or_load("", resume=True)
    _assert_unchanged(model, before)  # refused before any weight is loaded


def test_integer_iterations_of_any_integer_type_load_as_int(tmp_path):
    sd = _net(0).state_dict()
    torch.save({"model": sd, "iteration": torch.tensor(7)}, tmp_path / "tensor.pth")
    torch.save({"model": sd, "iteration": 7}, tmp_path / "int.pth")
    weights = {k: v.numpy() for k, v in sd.items()}
    (tmp_path / "numpy.pkl").write_bytes(pickle.dumps({"model": weights, "iteration": np.int64(7)}))
    for name in ("tensor.pth", "int.pth", "numpy.pkl"):
        extra = DetectionCheckpointer(_net(1)).load(str(tmp_path / name))
        assert extra["iteration"] == 7 and type(extra["iteration"]) is int, name


# ---------------------------------------------------------------------------- strict resume, lenient fine-tuning
def test_resume_with_mismatched_shapes_fails_naming_keys_and_shapes(tmp_path):
    ckpt = DetectionCheckpointer(_net(0, out=5), str(tmp_path))
    ckpt.save("model_0000003", iteration=3)
    model = _net(1, out=3)
    before = _state(model)
    with pytest.raises(CheckpointLoadError) as e:
        DetectionCheckpointer(model, str(tmp_path)).resume_or_load("", resume=True)
    msg = str(e.value)
    assert f"Cannot resume from {tmp_path / 'model_0000003.pth'}" in msg
    assert "fc.weight: (5, 4) in the file, (3, 4) in the model" in msg
    assert "fc.bias: (5,) in the file, (3,) in the model" in msg
    _assert_unchanged(model, before)  # nothing was loaded, not even the matching tensors

    # Missing / unexpected keys are resume errors too.
    sd = dict(_net(0).state_dict())
    sd.pop("bn.running_var")
    sd["extra.weight"] = torch.ones(2)
    torch.save({"model": sd, "iteration": 3}, tmp_path / "model_0000003.pth")
    with pytest.raises(
        CheckpointLoadError, match=r"missing from the file: bn\.running_var.*does not have: extra\.weight"
    ):
        DetectionCheckpointer(_net(1), str(tmp_path)).resume_or_load("", resume=True)


def test_finetuning_from_init_checkpoint_skips_mismatched_heads_with_a_warning(tmp_path, caplog):
    src = _net(0, out=5)
    DetectionCheckpointer(src, str(tmp_path / "src")).save("model_final", iteration=9)
    dst = _net(1, out=3)
    head_before = dst.fc.weight.detach().clone()
    caplog.set_level(logging.WARNING)
    logging.getLogger("fvcore").addHandler(caplog.handler)
    try:
        # resume=True but no last_checkpoint in the new folder: init_checkpoint is loaded leniently.
        DetectionCheckpointer(dst, str(tmp_path / "dst")).resume_or_load(
            str(tmp_path / "src" / "model_final.pth"), resume=True
        )
    finally:
        logging.getLogger("fvcore").removeHandler(caplog.handler)
    assert torch.equal(dst.conv.weight, src.conv.weight)
    assert torch.equal(dst.fc.weight, head_before)
    assert "Skip loading parameter 'fc.weight'" in caplog.text


def test_trainer_resume_into_another_config_fails_instead_of_training_from_scratch(tmp_path):
    """The issue's case through DefaultTrainer: a --resume whose checkpoint does not fit the model."""
    from omegaconf import DictConfig

    from net_detr2.config import LazyCall as L
    from net_detr2.config import LazyConfig
    from net_detr2.engine import DefaultTrainer
    from net_detr2.solver import multistep_with_warmup

    def cfg_for(num_outputs: int):
        cfg = DictConfig({}, flags={"allow_objects": True})
        cfg.model = L(_TinyDetector)(num_outputs=num_outputs)
        cfg.dataloader = {"train": L(_tiny_loader)()}
        cfg.optimizer = LazyConfig.load(str(REPO / "configs/common/optim.py"), "SGD")
        cfg.lr_multiplier = multistep_with_warmup(2, steps=(1,), warmup_iters=0, warmup_factor=1.0)
        cfg.train = LazyConfig.load(str(REPO / "configs/common/train.py"), "train")
        cfg.train.update(
            dict(
                output_dir=str(tmp_path / "run"),
                max_iter=2,
                device="cpu",
                eval_period=0,
                tensorboard=False,
                plot_curves=False,
                num_vis_images=0,
                checkpointer=dict(period=1, max_to_keep=None),
            )
        )
        return cfg

    first = DefaultTrainer(cfg_for(3))
    first.resume_or_load(resume=False)
    first.train()
    assert (tmp_path / "run" / "last_checkpoint").is_file()
    files_before = _md5s(tmp_path / "run")
    other = DefaultTrainer(cfg_for(5))
    with pytest.raises(CheckpointLoadError, match=r"head\.weight: \(3, 4\) in the file, \(5, 4\) in the model"):
        other.resume_or_load(resume=True)
    assert {k: v for k, v in _md5s(tmp_path / "run").items() if k.endswith(".pth") or k == "last_checkpoint"} == {
        k: v for k, v in files_before.items() if k.endswith(".pth") or k == "last_checkpoint"
    }


class _TinyDetector(nn.Module):
    def __init__(self, num_outputs: int):
        super().__init__()
        self.head = nn.Linear(4, num_outputs)

    @property
    def device(self):
        return self.head.weight.device

    def forward(self, batch):
        x = torch.stack([d["x"] for d in batch])
        return {"loss_l2": self.head(x).pow(2).mean()}


def _tiny_loader():
    g = torch.Generator().manual_seed(0)
    while True:
        yield [{"x": torch.randn(4, generator=g)} for _ in range(2)]


# ---------------------------------------------------------------------------- saving
def test_non_finite_weights_are_never_saved(tmp_path):
    model = _net(0)
    ckpt = DetectionCheckpointer(model, str(tmp_path))
    ckpt.save("model_0000001", iteration=1)
    before = _md5s(tmp_path)
    with torch.no_grad():
        model.conv.weight[0, 0, 0, 0] = float("nan")
        model.bn.running_var[1] = float("inf")
    with pytest.raises(FloatingPointError) as e:
        ckpt.save("model_0000002", iteration=2)
    msg = str(e.value)
    assert f"Refusing to save {tmp_path / 'model_0000002.pth'}" in msg
    assert "conv.weight (1 of 72 values)" in msg and "bn.running_var (1 of 4 values)" in msg
    assert f"last_checkpoint still names {tmp_path / 'model_0000001.pth'}" in msg
    with pytest.raises(FloatingPointError):
        ckpt.save("model_0000001", iteration=2)  # the same name as the good file: still untouched
    assert _md5s(tmp_path) == before  # same files, byte-identical, no temporary file


class _FullDisk(io.FileIO):
    """A file on a disk that fills up after ``room`` bytes: writes past it raise ENOSPC, as the kernel does."""

    room = 200

    def write(self, b):
        if self.tell() + len(memoryview(b)) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().write(b)


@pytest.mark.parametrize("room", [0, 200])
def test_full_disk_during_save_says_so_and_leaves_no_temp_file(tmp_path, monkeypatch, room):
    model = _net(0)
    ckpt = DetectionCheckpointer(model, str(tmp_path))
    ckpt.save("model_0000001", iteration=1)
    before = _md5s(tmp_path)
    monkeypatch.setattr(_FullDisk, "room", room)
    monkeypatch.setattr(atomic_io, "open", lambda path, mode="r": _FullDisk(path, mode.replace("b", "")), raising=False)
    for name in ("model_0000002", "model_0000001"):
        with pytest.raises(OSError, match=r"No space left on device while writing .*" + name) as e:
            ckpt.save(name, iteration=2)
        assert e.value.errno == errno.ENOSPC
        assert str(tmp_path / f"{name}.pth") in str(e.value)
    monkeypatch.undo()
    assert _md5s(tmp_path) == before
    assert DetectionCheckpointer(_net(1), str(tmp_path)).resume_or_load("", resume=True)["iteration"] == 1


# ---------------------------------------------------------------------------- stale temporary files
# atomic_io needs only the standard library: load it alone, so that the child starts in milliseconds.
_KILLED_SAVE = """
import importlib.util, os, sys
spec = importlib.util.spec_from_file_location("atomic_io", sys.argv[2])
atomic_io = importlib.util.module_from_spec(spec)
spec.loader.exec_module(atomic_io)

def write(f):
    f.write(b"partial checkpoint bytes")
    f.flush()
    os._exit(9)  # killed mid-save

atomic_io.atomic_write(os.path.join(sys.argv[1], "model_0000004.pth"), write)
"""


def test_remove_stale_temp_files_removes_only_dead_writers_files(tmp_path):
    module = REPO / "net_detr2" / "checkpoint" / "atomic_io.py"
    r = subprocess.run([sys.executable, "-c", _KILLED_SAVE, str(tmp_path), str(module)], timeout=60)
    assert r.returncode == 9
    stale = [p.name for p in tmp_path.iterdir()]
    assert len(stale) == 1 and stale[0].startswith(".tmp.model_0000004.pth.")
    # Files of a live writer, and files that merely look alike, are kept.
    live = tmp_path / f".tmp.model_0000006.pth.{os.getppid()}"
    live.write_bytes(b"being written")
    keep = [tmp_path / ".tmp.notes", tmp_path / "model.tmp.123", tmp_path / "model_0000002.pth"]
    for p in keep:
        p.write_bytes(b"x")
    removed = remove_stale_temp_files(tmp_path)
    assert removed == [str(tmp_path / stale[0])]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name] + [p.name for p in keep])
    assert remove_stale_temp_files(tmp_path / "missing") == []


@pytest.mark.parametrize(
    "tool",
    [
        "tools/convert_torchvision_to_net_detr2.py",
        "tools/convert_vgg16_to_ssd.py",
        "projects/InvertedAttention/tools/convert_vgg16_frcnn.py",
    ],
)
def test_weight_converters_refuse_to_write_over_their_input(tmp_path, tool, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location(Path(tool).stem, REPO / tool)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    weights = tmp_path / "weights.pth"
    torch.save({"w": torch.zeros(2)}, weights)
    link = tmp_path / "same.pth"
    link.symlink_to(weights)
    before = _md5s(tmp_path)
    for output in (weights, link):
        with pytest.raises(SystemExit) as e:
            module.main([str(weights), str(output)])
        assert e.value.code == 2
        assert f"output {output} is the input file" in capsys.readouterr().err
    assert _md5s(tmp_path) == before
