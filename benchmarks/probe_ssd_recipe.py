#!/usr/bin/env python
"""Short SSD training probes on `shapes`: one recipe change at a time, AP on the validation split.

    OMP_NUM_THREADS=1 python benchmarks/probe_ssd_recipe.py --iters 300 --bias_prior 0.99 --head_std 0.01 \\
        --lr 3e-3 --aug flip

Builds the model of ``--config`` (default: SSD300 1/8-width VGG + BN on shapes), then, independently of
the config's recipe: optionally re-initialises the head (``--head_std``: N(0, std) weights and zero
biases; ``--bias_prior``: the background logit's bias so every default box starts with background
probability ``bias_prior``, RetinaNet's prior), trains ``--iters`` iterations in fp32 with AdamW (linear
warm-up over ``--warmup`` from 0.01, LR x0.1 at 75% and 90%), batch ``--bs``, with one of the augmentation
lists ``--aug`` (ssd: photometric + zoom-out up to 4x + min-IoU crop + resize + flip; expand2: zoom-out up
to 2x; noexpand; photoflip; flip: resize + flip), then prints ``RESULT`` with COCO AP on ``--val``.
These are the probes behind "Why SSD did not learn" in projects/NETNet/README.md; the configs
(`ssd300_shapes.py`: ``model.head.prior_prob``) carry the findings.
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import net_detr2.data.transforms as T  # noqa: E402
from net_detr2.config import LazyConfig, instantiate  # noqa: E402
from net_detr2.data import DatasetMapper, build_detection_test_loader, get_detection_dataset_dicts  # noqa: E402
from net_detr2.evaluation import COCOEvaluator, inference_on_dataset  # noqa: E402
from net_detr2.solver import get_default_optimizer_params  # noqa: E402

SSD_MEAN_BGR = [104.0, 117.0, 123.0]


def augmentations(name: str, size: int) -> list:
    """The training augmentation list ``name`` at ``size`` x ``size``."""
    resize = T.Resize((size, size))
    lists = {
        "ssd": [T.PhotometricDistort(), T.Expand((1.0, 4.0), 0.5, SSD_MEAN_BGR), T.MinIoURandomCrop(), resize],
        "expand2": [T.PhotometricDistort(), T.Expand((1.0, 2.0), 0.5, SSD_MEAN_BGR), T.MinIoURandomCrop(), resize],
        "noexpand": [T.PhotometricDistort(), T.MinIoURandomCrop(), resize],
        "flip": [resize],
        "photoflip": [T.PhotometricDistort(), resize],
    }
    return lists[name] + [T.RandomFlip()]


def reinit_head(model, head_std: float, bias_prior: float) -> None:
    """N(0, head_std) head weights with zero biases; then the background bias for probability bias_prior."""
    if head_std > 0:
        for m in model.head.modules():
            if isinstance(m, torch.nn.Conv2d):
                torch.nn.init.normal_(m.weight, std=head_std)
                torch.nn.init.zeros_(m.bias)
    if bias_prior > 0:
        k = model.num_classes
        for conv in model.head.cls_score:
            bias = conv.bias.data.view(-1, k + 1)
            bias[:, :k] = 0.0
            bias[:, k] = math.log(k * bias_prior / (1 - bias_prior))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="projects/NETNet/configs/ssd300_shapes.py")
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--bs", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--wd", type=float, default=0.05)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--size", type=int, default=300)
    ap.add_argument("--train", default="shapes_train")
    ap.add_argument("--val", default="shapes_val")
    ap.add_argument("--aug", default="ssd", choices=["ssd", "expand2", "noexpand", "flip", "photoflip"])
    ap.add_argument("--override", nargs="*", default=[], help="config overrides, key=value")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bias_prior", type=float, default=0.0, help="background probability at start (0: keep)")
    ap.add_argument("--head_std", type=float, default=0.0, help="head weights N(0, std) (0: keep the config's)")
    ap.add_argument("--log", type=int, default=25)
    ap.add_argument("--save", default="", help="write the trained state dict here")
    a = ap.parse_args()
    print(vars(a), flush=True)

    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    cfg = LazyConfig.apply_overrides(LazyConfig.load(a.config), a.override)
    model = instantiate(cfg.model)
    model.train()
    reinit_head(model, a.head_std, a.bias_prior)
    dicts = get_detection_dataset_dicts(a.train)
    mapper = DatasetMapper(True, augmentations=augmentations(a.aug, a.size), image_format="BGR")
    params = get_default_optimizer_params(model, base_lr=a.lr, weight_decay_norm=0.0)
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=a.wd)
    steps = (int(a.iters * 0.75), int(a.iters * 0.9))

    start = time.time()
    rng = np.random.RandomState(a.seed)
    order: list[int] = []
    for it in range(a.iters):
        factor = 0.01 + 0.99 * it / a.warmup if it < a.warmup else 1.0
        factor *= 0.1 ** sum(it >= s for s in steps)
        for group in opt.param_groups:
            group["lr"] = a.lr * factor
        batch = []
        while len(batch) < a.bs:  # images without boxes are kept, as SSD's loss allows
            if not order:
                order = list(rng.permutation(len(dicts)))
            batch.append(mapper(copy.deepcopy(dicts[order.pop()])))
        losses = model(batch)
        opt.zero_grad()
        sum(losses.values()).backward()
        opt.step()
        if it % a.log == 0 or it == a.iters - 1:
            values = " ".join(f"{k} {v.item():.3f}" for k, v in losses.items())
            print(f"it {it} {values} t {time.time() - start:.0f}s", flush=True)
    train_s = time.time() - start

    model.eval()
    loader = build_detection_test_loader(
        get_detection_dataset_dicts(a.val, filter_empty=False),
        mapper=DatasetMapper(False, augmentations=[T.Resize((a.size, a.size))], image_format="BGR"),
        num_workers=0,
    )
    res = inference_on_dataset(model, loader, COCOEvaluator(a.val, output_dir=None))
    summary = {k: round(v, 2) for k, v in res["bbox"].items() if not k.startswith("AP-")}
    print("RESULT", summary, f"train {train_s:.0f}s", flush=True)
    if a.save:
        torch.save(model.state_dict(), a.save)


if __name__ == "__main__":
    main()
