"""demo.py: input validation, test-time resize from the config, weights loading, PNG output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import demo  # noqa: E402

TOY_CONFIG = '''
import torch
from torch import nn
from net_detr2.config import LazyCall as L
from net_detr2.data import transforms as T
from net_detr2.structures import Boxes, Instances


class ToyDetector(nn.Module):
    """Predicts one box covering the middle of the output frame (score = self.score) and a low-score one."""
    input_format = "BGR"

    def __init__(self, score_init):
        super().__init__()
        self.score = nn.Parameter(torch.tensor(float(score_init)))
        self.seen_shapes = []

    def forward(self, batch):
        outs = []
        for b in batch:
            self.seen_shapes.append(tuple(b["image"].shape))
            h, w = b["height"], b["width"]
            inst = Instances((h, w))
            inst.pred_boxes = Boxes(torch.tensor([[w * 0.25, h * 0.25, w * 0.75, h * 0.75],
                                                  [2.0, 2.0, 8.0, 8.0]]))
            inst.scores = torch.stack([self.score.detach(), torch.tensor(0.1)])
            inst.pred_classes = torch.tensor([0, 0])
            outs.append({"instances": inst})
        return outs


model = L(ToyDetector)(score_init=0.2)
dataloader = dict(test=dict(mapper=dict(
    image_format="BGR",
    augmentations=[L(T.ResizeShortestEdge)(short_edge_length=32, max_size=1000)],
)))
train = dict(device="cpu", init_checkpoint="", amp=dict(enabled=False, dtype="bfloat16"))
'''


@pytest.fixture
def toy_cfg(tmp_path):
    p = tmp_path / "toy_config.py"
    p.write_text(TOY_CONFIG)
    return p


def test_missing_input_error_names_the_path(tmp_path):
    missing = tmp_path / "no_such_image.jpg"
    r = subprocess.run(
        [
            sys.executable,
            str(REPO / "demo.py"),
            "--config-file",
            str(tmp_path / "cfg.py"),
            "--input",
            str(missing),
            "--output",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert r.returncode == 2
    assert f"input not found: {missing}" in r.stderr
    assert "Traceback" not in r.stderr


def test_demo_runs_with_resize_weights_and_threshold(toy_cfg, tmp_path, capsys):
    img_dir = tmp_path / "imgs"
    img_dir.mkdir()
    cv2.imwrite(str(img_dir / "a.png"), np.zeros((64, 96, 3), np.uint8))
    cv2.imwrite(str(img_dir / "b.jpg"), np.zeros((80, 40, 3), np.uint8))
    (img_dir / "notes.txt").write_text("not an image")

    # The test mapper's ResizeShortestEdge(32) is applied before the model sees the image.
    pred = demo.DemoPredictor(demo.setup_cfg(str(toy_cfg), []))
    inst = pred(np.zeros((64, 96, 3), np.uint8))
    assert pred.model.seen_shapes == [(3, 32, 48)]
    assert inst.pred_boxes.tensor[0].tolist() == [24.0, 16.0, 72.0, 48.0]  # in the original frame

    # Weights: a checkpoint with score 0.9 makes the big box pass the 0.5 threshold.
    weights = tmp_path / "w.pth"
    torch.save({"model": {"score": torch.tensor(0.9)}}, weights)
    out = tmp_path / "out"
    rc = demo.main(
        [
            "--config-file",
            str(toy_cfg),
            "--input",
            str(img_dir),
            "--output",
            str(out),
            "--weights",
            str(weights),
            "--confidence-threshold",
            "0.5",
        ]
    )
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"]
    a = cv2.imread(str(out / "a.png"))
    assert a.shape == (64, 96, 3)
    assert a[32, 24].sum() > 0 and a[32, 48].sum() == 0  # left edge of the drawn box; clean interior
    assert a[5, 2].sum() == 0  # the 0.1-score box is not drawn

    # Without weights the score is 0.2: nothing drawn at threshold 0.5.
    out2 = tmp_path / "out2"
    assert (
        demo.main(
            [
                "--config-file",
                str(toy_cfg),
                "--input",
                str(img_dir / "a.png"),
                "--output",
                str(out2),
                "--opts",
                "train.device=cpu",
            ]
        )
        == 0
    )
    assert cv2.imread(str(out2 / "a.png")).sum() == 0


def test_unreadable_image_and_missing_weights(toy_cfg, tmp_path, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"this is not a jpeg")
    assert demo.main(["--config-file", str(toy_cfg), "--input", str(bad), "--output", str(tmp_path / "o")]) == 2
    assert f"cannot read image {bad}" in capsys.readouterr().err
    img = tmp_path / "ok.png"
    cv2.imwrite(str(img), np.zeros((8, 8, 3), np.uint8))
    assert (
        demo.main(
            [
                "--config-file",
                str(toy_cfg),
                "--input",
                str(img),
                "--output",
                str(tmp_path / "o"),
                "--weights",
                str(tmp_path / "nope.pth"),
            ]
        )
        == 2
    )
    assert f"weights file not found: {tmp_path / 'nope.pth'}" in capsys.readouterr().err


def test_demo_takes_the_precision_from_the_config(toy_cfg, tmp_path, capsys):
    """train.amp is read from the config; a config without it is refused, naming the keys (no default here)."""
    assert demo.DemoPredictor(demo.setup_cfg(str(toy_cfg), [])).amp_dtype is None  # amp.enabled=False
    img = tmp_path / "ok.png"
    cv2.imwrite(str(img), np.zeros((8, 8, 3), np.uint8))
    fp16 = demo.main(
        ["--config-file", str(toy_cfg), "--input", str(img), "--output", str(tmp_path / "a"), "--opts"]
        + ["train.amp.enabled=True", "train.amp.dtype=float16"]
    )
    assert fp16 == 2 and "float16" in capsys.readouterr().err  # CPU autocast takes no fp16: the config's value
    no_amp = tmp_path / "no_amp.py"
    no_amp.write_text(toy_cfg.read_text().replace(', amp=dict(enabled=False, dtype="bfloat16")', ""))
    assert demo.main(["--config-file", str(no_amp), "--input", str(img), "--output", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "the config has no train.amp.enabled and no train.amp.dtype" in err and "configs/common/train.py" in err
    assert not (tmp_path / "b").exists()
