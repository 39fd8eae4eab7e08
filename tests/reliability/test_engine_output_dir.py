"""Output folders: a fresh run never replaces an earlier one (refused, files byte-identical), ``--overwrite``
replaces it on request, every config has a folder of its own, stale temporary files are cleaned at start."""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
from pathlib import Path

import pytest
from _toy import md5s, toy_cfg

from net_detr2.config import LazyConfig, locate
from net_detr2.engine import DefaultTrainer, default_argument_parser

REPO = Path(__file__).resolve().parents[2]

TOY_CONFIG = """
from _toy import toy_cfg

_cfg = toy_cfg("unused", max_iter=3, evaluate=True)
model, dataloader, optimizer, lr_multiplier, train = (
    _cfg.model, _cfg.dataloader, _cfg.optimizer, _cfg.lr_multiplier, _cfg.train
)
"""


def load_train_net():
    spec = importlib.util.spec_from_file_location("train_net", REPO / "train_net.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def toy_config_file(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent))  # the config imports _toy
    path = tmp_path / "toy_config.py"
    path.write_text(TOY_CONFIG)
    return path


def run(*argv: str):
    return load_train_net().main(default_argument_parser().parse_args(list(argv)))


def test_fresh_run_in_a_run_folder_is_refused_and_overwrite_replaces_it(tmp_path, toy_config_file):
    out = tmp_path / "out"
    args = ["--config-file", str(toy_config_file), f"train.output_dir={out}"]
    run(*args)
    before = md5s(out)
    assert {"model_final.pth", "last_checkpoint", "metrics.json", "log.txt", "toy_results.json"} <= before.keys()
    with pytest.raises(FileExistsError) as e:
        run(*args, "train.seed=5")
    message = str(e.value)
    assert str(out) in message and "--resume" in message and "train.output_dir=" in message, message
    assert md5s(out) == before  # not a byte changed: not even log.txt or config.yaml
    with pytest.raises(FileExistsError):  # the programmatic path refuses too
        DefaultTrainer(toy_cfg(out)).resume_or_load(resume=False)
    # (log.txt gets this process' log lines: its handler stays from the first run above)
    assert {k: v for k, v in md5s(out).items() if k != "log.txt"} == {k: v for k, v in before.items() if k != "log.txt"}

    run(*args, "--overwrite", "train.max_iter=2", "train.checkpointer.period=5")
    after = md5s(out)
    # the earlier run's checkpoints are gone; metrics.json holds the new run's records only
    assert sorted(n for n in after if n.endswith(".pth")) == ["model_final.pth"]
    records = [json.loads(line) for line in (out / "metrics.json").read_text().splitlines()]
    assert [r["iteration"] for r in records if "loss_cls" in r] == [0, 1]


def test_stale_temporary_files_are_removed_when_a_run_starts(tmp_path, toy_config_file):
    out = tmp_path / "out"
    out.mkdir()
    stale = out / ".tmp.model_0000001.pth.999999999"  # left by a killed save (no such process)
    stale.write_bytes(b"partial")
    keep = out / "notes.txt"
    keep.write_text("mine")
    run("--config-file", str(toy_config_file), f"train.output_dir={out}", "train.max_iter=1")
    assert not stale.exists() and keep.read_text() == "mine"
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp")]


def test_default_output_dir_is_derived_from_the_config_path(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    cfg = LazyConfig.load("configs/shapes/faster_rcnn_R18_FPN.py")
    assert cfg.train.output_dir == os.path.join("output", "configs", "shapes", "faster_rcnn_R18_FPN")
    # the file given to LazyConfig.load decides, not the file that imports configs/common/train.py
    derived = tmp_path / "exp" / "mine.py"
    derived.parent.mkdir()
    common_train = str(REPO / "configs/common/train.py")
    derived.write_text(f"from net_detr2.config import LazyConfig\ntrain = LazyConfig.load({common_train!r}, 'train')\n")
    monkeypatch.chdir(tmp_path)
    assert LazyConfig.load(str(derived)).train.output_dir == os.path.join("output", "exp", "mine")


def test_every_config_has_an_output_folder_of_its_own(monkeypatch):
    """... and an evaluator that writes files (COCO's coco_instances_results.json) is told to write them there by
    the config itself (nothing fills it in behind the user's back)."""
    monkeypatch.chdir(REPO)
    folders: dict[str, list[str]] = {}
    writers = 0
    configs = sorted(REPO.glob("configs/*/*.py")) + sorted(REPO.glob("projects/*/configs/**/*.py"))
    for path in configs:
        rel = str(path.relative_to(REPO))
        if "/common/" in rel or rel.startswith("configs/common"):
            continue
        cfg = LazyConfig.load(rel)
        if "train" in cfg:
            folders.setdefault(os.path.normpath(cfg.train.output_dir), []).append(rel)
        evaluator = cfg.dataloader.get("evaluator") if "dataloader" in cfg else None
        target = evaluator._target_ if evaluator is not None else None
        target = locate(target) if isinstance(target, str) else target
        if target is not None and "output_dir" in inspect.signature(target).parameters:
            assert evaluator.output_dir == cfg.train.output_dir, rel
            writers += 1
    assert len(folders) > 40 and writers > 30
    shared = {k: v for k, v in folders.items() if len(v) > 1}
    # EFPN's stage 1 *is* the shapes / Aquarium Faster R-CNN run (its docstring says so): the one sharing allowed
    assert all(all("stage1" in c or "faster_rcnn_R18_FPN.py" in c for c in v) for v in shared.values()), shared
