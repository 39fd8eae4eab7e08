#!/usr/bin/env python
"""Why SSD's head initialisation matters from scratch: the SSD release's init against ``prior_prob=0.01``.

    OMP_NUM_THREADS=1 python benchmarks/probe_ssd_init.py [N]

For each head init (None: Xavier weights, zero biases; 0.01: RetinaNet's prior), builds
`projects/NETNet/configs/ssd300_shapes.py`'s model, trains N iterations (default 60; AdamW lr 3e-3 with a
50-iteration warm-up, resize + flip, batch 8, fp32) and, at iteration 0 and N, prints on 16 validation
images: the share of dead channels (never positive) per feature level, the L2Norm scale, the share of
negative default boxes whose best foreground score exceeds 0.5, and the positives' mean foreground score.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import net_detr2.data.transforms as T  # noqa: E402
from net_detr2.config import LazyConfig, instantiate  # noqa: E402
from net_detr2.data import DatasetMapper, get_detection_dataset_dicts  # noqa: E402
from net_detr2.solver import get_default_optimizer_params  # noqa: E402

LR = 3e-3


@torch.no_grad()
def report(model, batch, tag: str) -> None:
    model.eval()
    images = model.preprocess_image(batch)
    feats = model.extract_features(images.tensor)
    logits, _ = model.head(feats)
    priors = model.default_boxes(images, feats)
    labels, _ = model.label_default_boxes(priors, [x["instances"] for x in batch])
    neg = labels == model.num_classes
    fg_score = logits.softmax(-1)[..., :-1].max(-1).values
    dead = [f"{(f.amax(dim=(0, 2, 3)) <= 0).float().mean().item():.2f}" for f in feats]
    l2 = model.backbone.bottom_up.conv4_3_norm.weight
    print(
        f"{tag}: dead channels per level {dead}; L2Norm scale mean {l2.mean().item():.1f}; "
        f"negatives with fg score > 0.5: {(fg_score[neg] > 0.5).float().mean().item():.4f} (of {int(neg.sum())}); "
        f"positives' mean fg score {fg_score[~neg].mean().item():.3f}",
        flush=True,
    )
    model.train()


def main() -> None:
    iters = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    dicts = get_detection_dataset_dicts("shapes_train")
    val = get_detection_dataset_dicts("shapes_val")[:16]
    train_mapper = DatasetMapper(True, augmentations=[T.Resize((300, 300)), T.RandomFlip()])
    val_mapper = DatasetMapper(True, augmentations=[T.Resize((300, 300))])  # is_train: keeps the boxes
    val_batch = [val_mapper(copy.deepcopy(d)) for d in val]
    for prior in (None, 0.01):
        torch.manual_seed(0)
        rng = np.random.RandomState(0)
        cfg = LazyConfig.load("projects/NETNet/configs/ssd300_shapes.py")
        cfg.model.head.prior_prob = prior
        model = instantiate(cfg.model).train()
        params = get_default_optimizer_params(model, base_lr=LR, weight_decay_norm=0.0)
        opt = torch.optim.AdamW(params, lr=LR, weight_decay=0.05)
        for it in range(iters + 1):
            if it in (0, iters):
                report(model, val_batch, f"prior_prob={prior} it {it}")
            if it == iters:
                break
            for group in opt.param_groups:
                group["lr"] = LR * min(1.0, 0.01 + it / 50)
            batch = [train_mapper(copy.deepcopy(dicts[i])) for i in rng.choice(len(dicts), 8)]
            losses = model(batch)
            opt.zero_grad()
            sum(losses.values()).backward()
            opt.step()
            if it % 20 == 0:
                print(f"  it {it} " + " ".join(f"{k} {v.item():.2f}" for k, v in losses.items()), flush=True)


if __name__ == "__main__":
    main()
