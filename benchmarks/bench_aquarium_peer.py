"""Peer comparison on the Aquarium photos: torchvision's Faster R-CNN MobileNetV3-Large-FPN trained from scratch
for the same wall-clock budget as our CPU recipes, evaluated the same way, AP50s printed side by side.

The peer is ``fasterrcnn_mobilenet_v3_large_fpn(weights=None, weights_backbone=None, num_classes=8)``
(7 classes + background; without weights its BatchNorms train and every backbone layer is trainable),
given what our Faster R-CNN recipe gets:
  * the same data: ``aquarium_train`` dicts (our YOLO loader), random horizontal flip, short edge drawn from
    320/352/384/416 with the long side at most 576 (torchvision's own resize), batch 4;
  * the same optimiser: AdamW, lr 1e-3, weight decay 0.05, 100-iteration linear warm-up, lr x0.1 at 80% and
    93% of the budget (by elapsed time, since the budget is time);
  * the same evaluation: short edge 384 (max 512), our ``COCOEvaluator`` on ``aquarium_valid``.
Otherwise the peer keeps torchvision's defaults (2000 proposals per image, 512 sampled RoIs, a 1024-d box
head on 256-channel 7x7 RoI features); ``--our-sampling`` trains it with our recipe's counts instead
(1000 proposals before NMS, 500 after, 128 RoIs), which makes its step cheaper.
Our side is read from finished runs of the recipes (their ``metrics.json`` and ``log.txt``), so the
comparison costs one peer training, not three:

    OMP_NUM_THREADS=2 python train_net.py --config-file configs/aquarium/faster_rcnn_R18_FPN.py
    OMP_NUM_THREADS=2 python train_net.py --config-file projects/NETNet/configs/netnet300_aquarium.py
    OMP_NUM_THREADS=2 python benchmarks/bench_aquarium_peer.py \\
        --ours "Faster R-CNN R18-FPN=output/aquarium/faster_rcnn_R18_FPN" \\
        --ours "NETNet300=output/aquarium/netnet300"          # and again with --our-sampling

``--budget-min`` defaults to the longest training time among ``--ours``. Use ``--budget-min 0.5`` for a
smoke run.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import re
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TRAIN_SHORT_EDGES = (320, 352, 384, 416)
TRAIN_MAX_SIZE = 576
TEST_SHORT_EDGE, TEST_MAX_SIZE = 384, 512
BATCH_SIZE = 4
LR, WEIGHT_DECAY, WARMUP_ITERS = 1e-3, 0.05, 100
LR_STEPS = (0.8, 0.93)  # fractions of the budget


def build_peer(num_classes: int, our_sampling: bool):
    """torchvision's model; with ``our_sampling`` its training-time proposal and RoI counts are our recipe's."""
    from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_fpn

    sampling = (
        dict(rpn_pre_nms_top_n_train=1000, rpn_post_nms_top_n_train=500, box_batch_size_per_image=128)
        if our_sampling
        else {}
    )
    return fasterrcnn_mobilenet_v3_large_fpn(
        weights=None,
        weights_backbone=None,
        num_classes=num_classes + 1,
        min_size=TRAIN_SHORT_EDGES,
        max_size=TRAIN_MAX_SIZE,
        **sampling,
    )


def _to_tensor(file_name: str) -> torch.Tensor:
    from net_detr2.data.detection_utils import read_image

    return torch.from_numpy(read_image(file_name, format="RGB").copy()).permute(2, 0, 1).float().div_(255)


def _sample(d: dict, flip: bool) -> tuple[torch.Tensor, dict]:
    from net_detr2.data.transforms import HFlipTransform

    image = _to_tensor(d["file_name"])
    boxes = np.array([a["bbox"] for a in d["annotations"]], dtype=np.float32).reshape(-1, 4)
    labels = torch.tensor([a["category_id"] + 1 for a in d["annotations"]], dtype=torch.int64)
    if flip:
        image = image.flip(-1)
        boxes = HFlipTransform(d["width"]).apply_box(boxes)
    return image, {"boxes": torch.as_tensor(boxes, dtype=torch.float32), "labels": labels}


def train_peer(model, dicts: list[dict], budget_s: float, log_period: int, seed: int) -> dict:
    """Train until ``budget_s`` seconds of training have passed; returns iterations, images and seconds."""
    rng = random.Random(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    model.train()
    order: list[dict] = []
    it, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < budget_s:
        if len(order) < BATCH_SIZE:
            order += rng.sample(dicts, len(dicts))
        batch, order = order[:BATCH_SIZE], order[BATCH_SIZE:]
        images, targets = zip(*(_sample(d, rng.random() < 0.5) for d in batch))
        factor = min(1.0, 0.001 + (1 - 0.001) * it / WARMUP_ITERS) * 0.1 ** sum(
            elapsed >= f * budget_s for f in LR_STEPS
        )
        for group in optimizer.param_groups:
            group["lr"] = LR * factor
        losses = model(list(images), list(targets))
        loss = sum(losses.values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        it += 1
        if it % log_period == 0:
            left = budget_s - (time.perf_counter() - start)
            print(
                f"peer iter {it}: total_loss {loss.item():.3f} "
                + " ".join(f"{k} {v.item():.3f}" for k, v in losses.items())
                + f" lr {LR * factor:.2e} time left {left / 60:.1f} min",
                flush=True,
            )
    seconds = time.perf_counter() - start
    return {"iterations": it, "images": it * BATCH_SIZE, "seconds": seconds}


@torch.no_grad()
def evaluate_peer(model, dataset_name: str) -> dict:
    from net_detr2.data import DatasetCatalog
    from net_detr2.evaluation import COCOEvaluator
    from net_detr2.structures import Boxes, Instances

    model.eval()
    model.transform.min_size = (TEST_SHORT_EDGE,)
    model.transform.max_size = TEST_MAX_SIZE
    evaluator = COCOEvaluator(dataset_name, distributed=False)
    evaluator.reset()
    for d in DatasetCatalog.get(dataset_name):
        out = model([_to_tensor(d["file_name"])])[0]
        instances = Instances((d["height"], d["width"]))
        instances.pred_boxes = Boxes(out["boxes"])
        instances.scores = out["scores"]
        instances.pred_classes = out["labels"] - 1
        evaluator.process([d], [{"instances": instances}])
    return evaluator.evaluate()["bbox"]


def read_our_run(output_dir: Path) -> dict:
    """Final box AP of a finished run (``metrics.json``) and its training time and images/s (``log.txt``)."""
    results = [json.loads(line) for line in (output_dir / "metrics.json").read_text().splitlines() if "bbox/AP" in line]
    if not results:
        raise ValueError(f"{output_dir}/metrics.json has no evaluation result: did the run finish?")
    log = (output_dir / "log.txt").read_text()
    speed = re.search(r"Overall training speed: \d+ iterations in [\d:]+ \(([\d.]+) s / it\)", log)
    total = re.search(r"Total training time: (\d+):(\d+):(\d+)", log)
    if not (speed and total):
        raise ValueError(f"{output_dir}/log.txt has no training-time lines: did the run finish?")
    import yaml

    batch = yaml.safe_load((output_dir / "config.yaml").read_text())["dataloader"]["train"]["total_batch_size"]
    h, mi, s = (int(v) for v in total.groups())
    return {
        "bbox": {k[5:]: v for k, v in results[-1].items() if k.startswith("bbox/")},
        "seconds": h * 3600 + mi * 60 + s,
        "images_per_s": batch / float(speed.group(1)),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--ours",
        action="append",
        default=[],
        metavar="NAME=OUTPUT_DIR",
        help="a finished run of one of our recipes (repeatable)",
    )
    parser.add_argument(
        "--budget-min",
        type=float,
        default=None,
        help="peer training budget in minutes (default: the longest of --ours)",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log-period", type=int, default=20)
    parser.add_argument(
        "--our-sampling",
        action="store_true",
        help="train the peer with our recipe's proposal/RoI counts (1000/500 proposals, 128 RoIs per "
        "image) instead of torchvision's (2000/2000, 512)",
    )
    parser.add_argument(
        "--output",
        default=None,
        help="where the peer's results go (default: output/aquarium/peer_mobilenet_v3[_our_sampling])",
    )
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    ours = {}
    for spec in args.ours:
        name, _, path = spec.partition("=")
        if not path:
            parser.error(f"--ours {spec!r}: expected NAME=OUTPUT_DIR")
        ours[name] = read_our_run(Path(path))
    if args.budget_min is None and not ours:
        parser.error("give --budget-min or at least one --ours run")
    budget_s = args.budget_min * 60 if args.budget_min is not None else max(r["seconds"] for r in ours.values())

    from net_detr2.data import DatasetCatalog, MetadataCatalog

    dicts = [d for d in DatasetCatalog.get("aquarium_train") if d["annotations"]]
    num_classes = len(MetadataCatalog.get("aquarium_train").thing_classes)
    model = build_peer(num_classes, args.our_sampling)
    print(
        f"{datetime.now():%H:%M:%S} training the peer for {budget_s / 60:.1f} min "
        f"on {len(dicts)} images with {args.threads} threads",
        flush=True,
    )
    run = train_peer(model, dicts, budget_s, args.log_period, args.seed)
    bbox = evaluate_peer(model, "aquarium_valid")
    out = Path(args.output or "output/aquarium/peer_mobilenet_v3" + ("_our_sampling" if args.our_sampling else ""))
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"bbox": bbox, **run, "budget_s": budget_s}, indent=1))

    rows = [(name, r["bbox"], r["seconds"], r["images_per_s"]) for name, r in ours.items()]
    peer = "torchvision fasterrcnn_mobilenet_v3_large_fpn" + (" (our sampling)" if args.our_sampling else "")
    rows.append((peer, bbox, run["seconds"], run["images"] / run["seconds"]))
    print(f"\nAquarium valid, trained from scratch, {args.threads} threads, peer budget {budget_s / 60:.1f} min")
    print(f"{'model':62s} {'train min':>9s} {'img/s':>6s} {'AP':>6s} {'AP50':>6s} {'APs':>6s}")
    for name, b, seconds, ips in rows:
        print(f"{name:62s} {seconds / 60:9.1f} {ips:6.2f} {b['AP']:6.2f} {b['AP50']:6.2f} {b['APs']:6.2f}")
    for name, b, _, _ in rows[:-1]:
        print(f"AP50 ratio {name} / peer: {b['AP50'] / max(bbox['AP50'], 1e-6):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
