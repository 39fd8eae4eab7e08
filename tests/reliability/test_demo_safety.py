"""demo.py never writes over a file it did not create in this run: not the inputs, not anything already there."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
import demo  # noqa: E402

TOY_CONFIG = """
import torch
from torch import nn
from net_detr2.config import LazyCall as L
from net_detr2.structures import Boxes, Instances


class ToyDetector(nn.Module):
    input_format = "BGR"

    def forward(self, batch):
        outs = []
        for b in batch:
            h, w = b["height"], b["width"]
            inst = Instances((h, w))
            inst.pred_boxes = Boxes(torch.tensor([[w * 0.25, h * 0.25, w * 0.75, h * 0.75]]))
            inst.scores = torch.tensor([0.9])
            inst.pred_classes = torch.tensor([0])
            outs.append({"instances": inst})
        return outs


model = L(ToyDetector)()
train = dict(device="cpu", init_checkpoint="", amp=dict(enabled=False, dtype="bfloat16"))
"""


@pytest.fixture
def toy_cfg(tmp_path):
    p = tmp_path / "toy_config.py"
    p.write_text(TOY_CONFIG)
    return str(p)


def _image(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((48, 64, 3), value, np.uint8))


def _md5s(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _run(cfg: str, inputs: list[Path], output: Path) -> int:
    return demo.main(["--config-file", cfg, "--input", *map(str, inputs), "--output", str(output)])


@pytest.fixture
def photos(tmp_path):
    """A folder with a.jpg and a.png (same stem) and b.jpg: the case where a .jpg's output would replace a .png."""
    d = tmp_path / "photos"
    _image(d / "a.jpg", 10)
    _image(d / "a.png", 20)
    _image(d / "b.jpg", 30)
    return d


def test_output_equal_to_or_containing_the_input_folder_is_refused(toy_cfg, tmp_path, photos, capsys):
    before = _md5s(tmp_path)
    assert _run(toy_cfg, [photos], photos) == 2
    assert f"--output {photos} is the folder of the input {photos}" in capsys.readouterr().err
    assert _run(toy_cfg, [photos / "a.jpg"], photos) == 2  # an input file's own folder
    assert f"is the folder of the input {photos / 'a.jpg'}" in capsys.readouterr().err
    assert _run(toy_cfg, [photos], tmp_path) == 2  # a folder above the inputs
    assert f"--output {tmp_path} contains the folder of the input {photos}" in capsys.readouterr().err
    link = tmp_path / "link_to_photos"
    link.symlink_to(photos, target_is_directory=True)
    assert _run(toy_cfg, [photos], link) == 2  # the same folder under another name
    assert "is the folder of the input" in capsys.readouterr().err
    link.unlink()
    assert _md5s(tmp_path) == before  # every input byte-identical, nothing written


def test_same_stem_inputs_get_distinct_outputs_and_inputs_survive(toy_cfg, tmp_path, photos):
    before = _md5s(photos)
    other = tmp_path / "other"
    _image(other / "a_1.jpg", 40)  # would collide with the second 'a' if names were numbered naively
    out = tmp_path / "out"
    assert _run(toy_cfg, [photos, other / "a_1.jpg"], out) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "a_1.png", "a_1_1.png", "b.png"]
    # a.png came from a.jpg (value 10), a_1.png from a.png (20), a_1_1.png from other/a_1.jpg (40): each input
    # drawn once, none lost (the bottom-right pixel keeps the input's colour: the box is drawn in the middle).
    corners = {p.name: int(cv2.imread(str(p))[-1, -1, 0]) for p in out.iterdir()}
    assert corners == {"a.png": 10, "a_1.png": 20, "a_1_1.png": 40, "b.png": 30}
    assert _md5s(photos) == before


def test_existing_files_in_the_output_are_never_overwritten(toy_cfg, tmp_path, photos, capsys):
    out = tmp_path / "out"
    _image(out / "b.png", 99)  # the user's own file, with the name an output would take
    before = _md5s(tmp_path)
    assert _run(toy_cfg, [photos], out) == 2
    err = capsys.readouterr().err
    assert f"--output {out} already holds 1 of the 3 files this run would write (b.png)" in err
    assert "never overwrites" in err
    assert _md5s(tmp_path) == before  # refused before writing anything: not even a.png / a_1.png


def test_output_inside_an_input_folder_is_allowed_once(toy_cfg, photos, capsys):
    """Input folders are read without recursion, so their sub-folder is a safe output; a second run refuses."""
    out = photos / "vis"
    before = _md5s(photos)
    assert _run(toy_cfg, [photos], out) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "a_1.png", "b.png"]
    after_first = _md5s(photos)
    assert {k: v for k, v in after_first.items() if not k.startswith("vis")} == before
    assert _run(toy_cfg, [photos], out) == 2
    assert "already holds 3 of the 3 files" in capsys.readouterr().err
    assert _md5s(photos) == after_first


def test_a_file_appearing_during_the_run_is_not_overwritten(tmp_path):
    target = tmp_path / "x.png"
    target.write_bytes(b"someone else's file")
    with pytest.raises(demo.DemoError, match=r"x\.png appeared while demo\.py was running; it was not overwritten"):
        demo.write_new_png(target, np.zeros((4, 4, 3), np.uint8))
    assert target.read_bytes() == b"someone else's file"
