"""`benchmarks/gpu_check.py --self-test`: the GPU check's code paths, run on the CPU with small models."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import gpu_check  # noqa: E402


def test_gpu_check_self_test_runs_every_check_and_writes_its_report(tmp_path, capsys):
    out = tmp_path / "report.json"
    report = gpu_check.main(["--self-test", "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(report, default=str))
    failed = [(e["check"], e.get("detector"), e.get("error")) for e in report["checks"] if e["status"] == "failed"]
    assert not failed
    train = {(e["detector"], e["dtype"]): e for e in report["checks"] if e["check"] == "train"}
    for name in gpu_check.DETECTORS:
        run = train[(name, "bfloat16")]
        assert run["status"] == "ok" and run["params_fp32"] and run["ms_per_step"] > 0 and run["losses"]
    assert train[("faster_rcnn", "float32")]["status"] == "ok"
    assert train[("*", "float16")] == dict(
        check="train", detector="*", dtype="float16", status="skipped", error="CUDA-only"
    )
    (compare,) = [e for e in report["checks"] if e["check"] == "frcnn_vs_torchvision"]
    row = compare["train"]["bfloat16"]
    assert row["ours"]["images_per_s"] > 0 and row["torchvision"]["images_per_s"] > 0
    assert compare["inference"]["bfloat16"]["latency_ms"]["ours fused + channels-last"] > 0
    (nccl,) = [e for e in report["checks"] if e["check"] == "nccl_launch"]
    assert nccl["status"] == "ok" and nccl["backend"] == "gloo" and nccl["all_reduce"] == [1.0] * 4
    printed = capsys.readouterr().out
    assert "dc_retinanet" in printed and "Faster R-CNN R50-FPN vs torchvision" in printed


def test_gpu_check_without_a_gpu_says_so(monkeypatch):
    monkeypatch.setattr(gpu_check.torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit, match=r"no CUDA device visible \(use --self-test"):
        gpu_check.main(["--out", "/nonexistent/never_written.json"])


def test_gpu_check_full_size_configs_exist_and_load():
    from net_detr2.config import LazyConfig

    for name, (full, small, kind) in gpu_check.DETECTORS.items():
        for path in (full, small):
            cfg = LazyConfig.load(str(gpu_check.ROOT / path))
            assert "_target_" in cfg.model, (name, path)
        assert kind in ("rcnn", "ssd")
