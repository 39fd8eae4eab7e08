#!/usr/bin/env python
"""The scale of CL-balanced NMS's ``dis`` term against the scores, on a trained (DC-)RetinaNet's detections.

For every validation image the model's pre-NMS candidates (score > test threshold, top-k per level) are
grouped into greedy NMS's clusters (`nms_clusters`); over the clusters of two or more boxes it reports the
spread of p (max - min) and of dis (Eq. 7's localisation term, `consensus_closeness`) inside a cluster, and
for each beta how often Eq. 7 keeps another box than greedy NMS and whether that box is better localised:
the IoU with the best-matching ground truth of the same class of the box greedy NMS keeps vs the box
CL-balanced NMS keeps (clusters whose greedy box matches a ground truth at IoU >= 0.5).

    python projects/DCRetinaNet/tools/probe_cl_nms.py \\
        --config-file projects/DCRetinaNet/configs/shapes/retinanet_R18_FPN_baseline.py \\
        --weights output/sweeps/dc_shapes/retinanet/seed1/model_final.pth [key=value ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))

from net_detr2.checkpoint import DetectionCheckpointer  # noqa: E402
from net_detr2.config import LazyConfig, instantiate  # noqa: E402
from net_detr2.data import DatasetCatalog  # noqa: E402
from net_detr2.structures import Boxes, BoxMode, pairwise_iou  # noqa: E402
from net_detr2_projects.DCRetinaNet.dc_retinanet.cl_balanced_nms import (  # noqa: E402
    cl_balanced_nms,
    consensus_closeness,
    nms_clusters,
)

BETAS = (0.1, 0.25, 0.5, 1.0)


def ground_truth_by_image(dataset: str) -> dict:
    """image_id -> (boxes XYXY in the original image [G, 4], classes [G])."""
    out = {}
    for record in DatasetCatalog.get(dataset):
        annos = [a for a in record.get("annotations", []) if not a.get("iscrowd", 0)]
        boxes = [BoxMode.convert(a["bbox"], a["bbox_mode"], BoxMode.XYXY_ABS) for a in annos]
        out[record["image_id"]] = (
            torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            torch.tensor([a["category_id"] for a in annos], dtype=torch.int64),
        )
    return out


def probe_image(candidates, gt_boxes: torch.Tensor, gt_classes: torch.Tensor, iou_threshold: float) -> dict:
    """Per-cluster numbers of one image's candidates (in the network's input coordinates, as ``gt_boxes``)."""
    boxes, scores, classes = candidates.pred_boxes.tensor, candidates.scores, candidates.pred_classes
    if len(boxes) == 0:
        return {}
    leaders, cluster = nms_clusters(boxes, scores, classes, iou_threshold)
    p = scores.clamp(1e-6, 1 - 1e-6)
    dis = consensus_closeness(boxes, torch.log(p) - torch.log1p(-p), cluster, len(leaders))
    k = len(leaders)
    size = torch.bincount(cluster, minlength=k)

    def spread(values):
        hi = torch.full((k,), -1e9).scatter_reduce(0, cluster, values, "amax")
        lo = torch.full((k,), 1e9).scatter_reduce(0, cluster, values, "amin")
        return hi - lo

    multi = size >= 2
    # IoU of each box with the ground truths of its class (0 for other classes)
    iou = pairwise_iou(Boxes(boxes), Boxes(gt_boxes)) if len(gt_boxes) else torch.zeros(len(boxes), 0)
    same_class = classes[:, None] == gt_classes[None, :]
    best_iou = (iou * same_class).amax(dim=1) if iou.numel() else torch.zeros(len(boxes))
    matched = multi & (best_iou[leaders] >= 0.5)
    out = {
        "clusters": int(multi.sum()),
        "members": size[multi].float().tolist(),
        "p_spread": spread(scores.float())[multi].tolist(),
        "dis_spread": spread(dis)[multi].tolist(),
        "leader_iou": best_iou[leaders][matched].tolist(),
    }
    for beta in BETAS:
        keep, _ = cl_balanced_nms(boxes, scores, classes, iou_threshold, beta=beta)
        # keep is in the order of the leaders (by decreasing cluster score)
        out[f"changed_{beta}"] = int((keep != leaders)[multi].sum())
        out[f"kept_iou_{beta}"] = best_iou[keep][matched].tolist()
    return out


def summarise(rows: list[dict]) -> dict:
    def flat(key):
        return torch.tensor([v for r in rows for v in r.get(key, [])])

    def quantiles(t):
        if t.numel() == 0:
            return None
        q = torch.quantile(t.float(), torch.tensor([0.1, 0.5, 0.9])).tolist()
        return {
            "p10": round(q[0], 3),
            "median": round(q[1], 3),
            "p90": round(q[2], 3),
            "mean": round(t.mean().item(), 3),
        }

    clusters = sum(r.get("clusters", 0) for r in rows)
    leader_iou = flat("leader_iou")
    summary = {
        "clusters_with_2_or_more_boxes": clusters,
        "boxes_per_cluster": quantiles(flat("members")),
        "p_spread_in_cluster": quantiles(flat("p_spread")),
        "dis_spread_in_cluster": quantiles(flat("dis_spread")),
        "matched_clusters": int(leader_iou.numel()),
        "greedy_box_iou_with_gt": quantiles(leader_iou),
    }
    for beta in BETAS:
        kept = flat(f"kept_iou_{beta}")
        summary[f"beta_{beta}"] = {
            "clusters_changed": round(sum(r.get(f"changed_{beta}", 0) for r in rows) / max(clusters, 1), 3),
            "kept_box_iou_with_gt": quantiles(kept),
            "iou_gain_mean": round((kept - leader_iou).mean().item(), 4) if kept.numel() else None,
            "share_better": round(((kept - leader_iou) > 1e-6).float().mean().item(), 3) if kept.numel() else None,
            "share_worse": round(((kept - leader_iou) < -1e-6).float().mean().item(), 3) if kept.numel() else None,
        }
    return summary


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config-file", required=True)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--output", help="also write the summary here (json)")
    ap.add_argument("opts", nargs="*", help="config overrides key=value")
    args = ap.parse_args(argv)
    cfg = LazyConfig.apply_overrides(LazyConfig.load(args.config_file), args.opts)
    model = instantiate(cfg.model).eval()
    DetectionCheckpointer(model).load(args.weights)
    loader = instantiate(cfg.dataloader.test)
    gt = ground_truth_by_image(cfg.dataloader.test.dataset.names)
    recorded = []
    greedy_nms = model.nms

    def recording_nms(candidates):
        recorded.append(candidates)
        return greedy_nms(candidates)

    model.nms = recording_nms  # the candidates each image's NMS sees
    rows = []
    with torch.no_grad():
        for batch in loader:
            recorded.clear()
            model(batch)
            for inputs, candidates in zip(batch, recorded):
                boxes, classes = gt[inputs["image_id"]]
                h, w = inputs["image"].shape[1:]
                scale = torch.tensor([w / inputs["width"], h / inputs["height"]] * 2)
                rows.append(probe_image(candidates, boxes * scale, classes, model.test_nms_thresh))
    summary = summarise(rows)
    text = json.dumps(summary, indent=1)
    print(text)
    if args.output:
        Path(args.output).write_text(text + "\n")
    return summary


if __name__ == "__main__":
    main()
