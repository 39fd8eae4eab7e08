"""A few-iteration shapes Faster R-CNN config (the real model, small images) for the reliability tests."""

from __future__ import annotations

from pathlib import Path

import torch

import net_detr2.data.transforms as T
from net_detr2.config import LazyCall as L
from net_detr2.config import LazyConfig
from net_detr2.solver import multistep_with_warmup

REPO = Path(__file__).resolve().parents[2]
SHAPES_FRCNN = REPO / "configs" / "shapes" / "faster_rcnn_R18_FPN.py"


def shapes_frcnn_cfg(output_dir, *overrides: str, max_iter: int = 4, evaluate: bool = False):
    """``configs/shapes/faster_rcnn_R18_FPN.py`` for ``max_iter`` iterations of 2 images at 96-128 px, a checkpoint
    every 2 iterations, no pictures; with ``evaluate`` a final COCO evaluation on 8 validation images."""
    cfg = LazyConfig.load(str(SHAPES_FRCNN))
    LazyConfig.apply_overrides(
        cfg,
        [
            f"train.output_dir={output_dir}",
            f"train.max_iter={max_iter}",
            "train.checkpointer.period=2",
            "train.log_period=1",
            "train.num_vis_images=0",
            "train.tensorboard=False",
            "dataloader.train.total_batch_size=2",
            *overrides,
        ],
    )
    cfg.dataloader.train.mapper.augmentations = [
        L(T.ResizeShortestEdge)(short_edge_length=(96, 128), max_size=160, sample_style="choice"),
        L(T.RandomFlip)(horizontal=True),
    ]
    cfg.lr_multiplier = multistep_with_warmup(max_iter=max_iter, steps=(max_iter - 1,), warmup_iters=1)
    if evaluate:
        cfg.dataloader.test.mapper.augmentations = [L(T.ResizeShortestEdge)(short_edge_length=128, max_size=160)]
        cfg.dataloader.test.dataset = L(_first_images)(dataset=cfg.dataloader.test.dataset, n=8)
    else:
        cfg.dataloader.evaluator = None
    return cfg


def _first_images(dataset: list[dict], n: int) -> list[dict]:
    return dataset[:n]


def load_checkpoint(path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def differing_tensors(a, b, prefix: str = "") -> list[str]:
    """Paths of the tensors (and other leaves) that differ between two nested checkpoint structures."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{prefix}: keys {sorted(map(str, a.keys() ^ b.keys()))}"]
        return [d for k in a for d in differing_tensors(a[k], b[k], f"{prefix}/{k}")]
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return [f"{prefix}: lengths {len(a)} != {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differing_tensors(x, y, f"{prefix}/{i}")]
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return [] if a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b) else [prefix]
    return [] if a == b else [prefix]
