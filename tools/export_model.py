#!/usr/bin/env python
"""Export a trained detector for deployment: TorchScript and ONNX of its inference graph, checked against the
eager model.

    python tools/export_model.py --config-file configs/shapes/faster_rcnn_R18_FPN.py \\
        --weights output/shapes_frcnn/model_final.pth --output output/export
    python tools/export_model.py --config-file cfg.py --weights w.pth --output out --format onnx --size 800 1216

Writes ``<output>/model.ts`` (``torch.jit.load``), ``<output>/model.onnx`` (onnxruntime, ...) and
``<output>/export.json``, the contract (see `net_detr2.export.exporters`): input ``image`` float32 [3, H, W] of
exactly the export size, channels in the model's input format, values 0..255 (the graph normalises and pads);
outputs ``boxes`` [N, 4] (x1 y1 x2 y2, pixels of the input), ``scores`` [N], ``classes`` [N] (int64, indices into
``class_names``). ``H x W`` is ``--size``, or else the size of the first test image after the config's test
resizing. Then every exported file is run on ``--check-images`` test images (resized to H x W) and must give the
eager model's detections (same class, IoU >= 0.99, score within ``--score-tolerance``); the tool exits with
status 1 when one does not.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from net_detr2.checkpoint import DetectionCheckpointer  # noqa: E402
from net_detr2.config import LazyConfig, instantiate  # noqa: E402
from net_detr2.export import (  # noqa: E402
    ExportContract,
    export_onnx,
    export_torchscript,
    flatten_detections,
    match_detections,
    run_onnx,
)
from net_detr2.utils.logger import setup_logger  # noqa: E402

logger = logging.getLogger("net_detr2.export")


def _test_images(cfg, count: int) -> list[torch.Tensor]:
    """Up to ``count`` images of the config's test loader (after its resizing), float32 [3, H, W]."""
    if "test" not in cfg.get("dataloader", {}):
        return []
    images = []
    for batch in instantiate(cfg.dataloader.test):
        images += [d["image"].float() for d in batch]
        if len(images) >= count:
            break
    return images[:count]


def _resized(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    if tuple(image.shape[-2:]) == (height, width):
        return image
    arr = cv2.resize(image.permute(1, 2, 0).numpy(), (width, height), interpolation=cv2.INTER_LINEAR)
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).float()


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config-file", required=True, metavar="FILE")
    p.add_argument("--weights", default=None, help="checkpoint (default: cfg.train.init_checkpoint)")
    p.add_argument("--output", required=True, help="folder for model.ts / model.onnx / export.json")
    p.add_argument("--format", nargs="+", choices=["torchscript", "onnx"], default=["torchscript", "onnx"])
    p.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), help="input size (default: first test image)")
    p.add_argument("--check-images", type=int, default=3, help="test images the exports are checked on")
    p.add_argument("--score-tolerance", type=float, default=1e-3, help="largest score difference accepted")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides key=value")
    args = p.parse_args(argv)
    setup_logger(name="net_detr2")
    cfg = LazyConfig.apply_overrides(LazyConfig.load(args.config_file), args.opts)
    model = instantiate(cfg.model)
    weights = args.weights if args.weights is not None else cfg.get("train", {}).get("init_checkpoint", "")
    if weights:
        DetectionCheckpointer(model).load(weights)
    else:
        logger.warning("No --weights and no train.init_checkpoint: exporting the randomly initialised model")
    model.eval()

    samples = _test_images(cfg, max(args.check_images, 1))
    if args.size:
        height, width = args.size
    elif samples:
        height, width = (int(s) for s in samples[0].shape[-2:])
    else:
        p.error("no cfg.dataloader.test to take the input size from: give --size H W")
    if not samples:
        g = torch.Generator().manual_seed(0)
        samples = [torch.randint(0, 256, (3, height, width), generator=g).float()]
    samples = [_resized(s, height, width) for s in samples[: max(args.check_images, 1)]]

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    dataset = cfg.dataloader.test.dataset.get("names") if "test" in cfg.get("dataloader", {}) else None
    from net_detr2.data import MetadataCatalog

    names = list(MetadataCatalog.get(dataset).get("thing_classes") or []) if isinstance(dataset, str) else []
    contract = ExportContract(height, width, getattr(model, "input_format", "BGR"), names)
    runners = {}
    if "torchscript" in args.format:
        path = str(out / "model.ts")
        runners["torchscript"] = export_torchscript(model, samples[0], path)
        contract.files["torchscript"] = path
    if "onnx" in args.format:
        path = str(out / "model.onnx")
        export_onnx(model, samples[0], path, opset=args.opset)
        runners["onnx"] = lambda image, path=path: run_onnx(path, image)
        contract.files["onnx"] = path
    contract.save(str(out / "export.json"))

    report: dict = {"size": (height, width), "checks": []}
    ok = True
    with torch.no_grad():
        for i, image in enumerate(samples):
            reference = flatten_detections(model([{"image": image}]))
            for fmt, run in runners.items():
                m = match_detections(reference, run(image), score_tolerance=args.score_tolerance)
                agree = m["matched"] == m["reference"] == m["other"]
                ok &= agree
                report["checks"].append({"image": i, "format": fmt, **m, "agree": agree})
                print(
                    f"image {i} {fmt}: {m['matched']}/{m['reference']} eager detections matched "
                    f"({m['other']} exported){'' if agree else '  MISMATCH'}"
                )
    print(
        f"Exported {', '.join(contract.files.values())} for {height}x{width} inputs; contract in {out / 'export.json'}"
    )
    report["ok"] = ok
    if not ok:
        print("The exported model does not reproduce the eager detections", file=sys.stderr)
        if argv is None:
            sys.exit(1)
    return report


if __name__ == "__main__":
    main()
