#!/usr/bin/env python
"""Attention heat-maps of a baseline and an IA-trained Faster R-CNN on a few `shapes` objects (paper, Fig. 1/2).

For each ground-truth box: the RoI is pooled from the model's features, the gradient of its
ground-truth-class logit gives the channel weights w, and the overall attention is
``ReLU(sum_c w_c F_c)`` (Eq. 1, with Grad-CAM's ReLU for display), min-max normalised, bilinearly
upsampled to the crop and overlaid on it. Columns: the object; the baseline's attention; the mask IA
applies to that RoI during training (soft threshold from the IA model's attention; zeroed cells dark);
the IA model's attention.

    python projects/InvertedAttention/tools/plot_attention.py \\
        --baseline output/shapes_frcnn/model_final.pth --ia output/shapes_ia_frcnn/model_final.pth
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))

from net_detr2.checkpoint import DetectionCheckpointer  # noqa: E402
from net_detr2.config import LazyConfig, instantiate  # noqa: E402
from net_detr2.data import get_detection_dataset_dicts  # noqa: E402
from net_detr2.structures import Boxes, BoxMode, Instances  # noqa: E402
from net_detr2_projects.InvertedAttention.inverted_attention.attention import (  # noqa: E402
    gradient_attention,
    spatial_inversion_mask,
)
from net_detr2_projects.InvertedAttention.inverted_attention.ia_roi_heads import ground_truth_logit_gradient  # noqa: E402


def load_model(config: str, checkpoint: str) -> torch.nn.Module:
    cfg = LazyConfig.load(config)
    model = instantiate(cfg.model)
    DetectionCheckpointer(model).load(checkpoint)
    return model.eval()


def pick_objects(dataset: str, num: int, min_side: float) -> list[tuple[dict, np.ndarray, int]]:
    """(dataset dict, XYXY box, category) of the first ``num`` objects with both sides >= min_side."""
    picked = []
    for d in get_detection_dataset_dicts(dataset, filter_empty=False):
        for ann in d.get("annotations", []):
            box = np.asarray(BoxMode.convert(list(ann["bbox"]), ann["bbox_mode"], BoxMode.XYXY_ABS), dtype=np.float32)
            if min(box[2] - box[0], box[3] - box[1]) >= min_side:
                picked.append((d, box, int(ann["category_id"])))
                if len(picked) == num:
                    return picked
    return picked


def attention_maps(model, image_bgr: np.ndarray, box: np.ndarray, category: int, scale: float):
    """(attention (H, W) in [0, 1], inverted soft-threshold mask (H, W)) of one ground-truth RoI."""
    h, w = image_bgr.shape[:2]
    resized = cv2.resize(image_bgr, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_LINEAR)
    tensor = torch.as_tensor(np.ascontiguousarray(resized.transpose(2, 0, 1)))
    with torch.no_grad():
        images = model.preprocess_image([{"image": tensor}])
        features = model.backbone(images.tensor)
    heads = model.roi_heads
    proposals = [Instances(images.image_sizes[0], proposal_boxes=Boxes(torch.as_tensor(box[None] * scale)))]
    with torch.no_grad():
        pooled = heads._pool_box_features(features, proposals)
    gt = torch.tensor([category])
    grads, _ = ground_truth_logit_gradient(heads.box_head, heads.box_predictor, pooled, gt)
    attention, _ = gradient_attention(pooled, grads)
    mask = spatial_inversion_mask(attention, "soft")
    shown = attention.clamp_min(0)
    shown = shown / shown.flatten(1).max(dim=1).values.clamp_min(1e-12)[:, None, None]
    return shown[0], mask[0]


def overlay(crop_rgb: np.ndarray, heat: torch.Tensor) -> np.ndarray:
    up = F.interpolate(heat[None, None], size=crop_rgb.shape[:2], mode="bilinear", align_corners=False)[0, 0]
    colored = plt.get_cmap("jet")(up.numpy())[..., :3]
    return 0.5 * crop_rgb / 255.0 + 0.5 * colored


def darken(crop_rgb: np.ndarray, mask: torch.Tensor) -> np.ndarray:
    """The crop with the zeroed RoI cells (mask 0) darkened: what the box head sees under IA."""
    up = F.interpolate(mask[None, None], size=crop_rgb.shape[:2], mode="nearest")[0, 0].numpy()
    return crop_rgb / 255.0 * (0.2 + 0.8 * up[..., None])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True, help="baseline checkpoint (.pth)")
    parser.add_argument("--ia", required=True, help="IA checkpoint (.pth)")
    parser.add_argument("--baseline-config", default=str(REPO / "configs/shapes/faster_rcnn_R18_FPN.py"))
    parser.add_argument(
        "--ia-config", default=str(REPO / "projects/InvertedAttention/configs/shapes/ia_faster_rcnn_R18_FPN_shapes.py")
    )
    parser.add_argument("--dataset", default="shapes_val")
    parser.add_argument("--num", type=int, default=6, help="objects shown")
    parser.add_argument("--min-side", type=float, default=40.0, help="smallest object side shown (pixels)")
    parser.add_argument("--test-size", type=int, default=320, help="short side the models see (test resize)")
    parser.add_argument("--output", default=str(REPO / "projects/InvertedAttention/attention_maps.png"))
    args = parser.parse_args(argv)

    baseline = load_model(args.baseline_config, args.baseline)
    ia = load_model(args.ia_config, args.ia)
    objects = pick_objects(args.dataset, args.num, args.min_side)
    if not objects:
        raise SystemExit(f"{args.dataset}: no object with both sides >= {args.min_side} px")
    titles = ["object", "baseline attention", "IA mask (dark = zeroed)", "IA-trained attention"]
    fig, axes = plt.subplots(len(objects), 4, figsize=(8, 2.1 * len(objects)), squeeze=False)
    for row, (d, box, category) in enumerate(objects):
        image = cv2.imread(d["file_name"], cv2.IMREAD_COLOR)
        if image is None:
            raise SystemExit(f"cannot read image {d['file_name']}")
        scale = args.test_size / min(image.shape[:2])
        heat_base, _ = attention_maps(baseline, image, box, category, scale)
        heat_ia, ia_mask = attention_maps(ia, image, box, category, scale)
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        crop = cv2.cvtColor(image[y0:y1, x0:x1], cv2.COLOR_BGR2RGB).astype(np.float32)
        panels = [crop / 255.0, overlay(crop, heat_base), darken(crop, ia_mask), overlay(crop, heat_ia)]
        for col, panel in enumerate(panels):
            ax = axes[row, col]
            ax.imshow(np.clip(panel, 0, 1))
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(titles[col], fontsize=9)
    fig.tight_layout()
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output, dpi=110)
    print(f"wrote {args.output} ({len(objects)} objects)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
