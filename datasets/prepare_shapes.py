#!/usr/bin/env python
"""Generate the synthetic `shapes` dataset, or one of its claim-shaped variants, now (otherwise it is
generated on first use).

Writes to ``$NET_DETR2_CACHE/<version>`` (default ``~/.cache/net_detr2/shapes_v1``, ``.../shapes_occluded_v1``
...), or ``--out``.
Usage: ``python datasets/prepare_shapes.py [--variant shapes|shapes_small_clutter|shapes_occluded|shapes_irregular|all]
[--out DIR] [--draw PICTURE.jpg]``; ``--draw`` also saves validation images with their ground truth drawn (boxes
with class and recorded attribute; small clutter's unlabelled decals dashed red).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _dashed_rect(img, x0: int, y0: int, x1: int, y1: int, color, dash: int = 3) -> None:
    import cv2

    for xa in range(x0, x1, 2 * dash):
        for y in (y0, y1):
            cv2.line(img, (xa, y), (min(xa + dash, x1), y), color, 1)
    for ya in range(y0, y1, 2 * dash):
        for x in (x0, x1):
            cv2.line(img, (x, ya), (x, min(ya + dash, y1)), color, 1)


def draw_ground_truth(root: Path, out: str, images: int = 4, columns: int = 2, scale: int = 2) -> str:
    """Tile the first ``images`` validation images of a generated dataset at ``root`` with their ground truth."""
    import cv2
    import numpy as np

    coco = json.loads((root / "annotations" / "instances_val.json").read_text())
    names = {c["id"]: c["name"] for c in coco["categories"]}
    font = cv2.FONT_HERSHEY_SIMPLEX
    tiles = []
    for im in coco["images"][:images]:
        img = cv2.imread(str(root / "VOC" / "JPEGImages" / im["file_name"]))
        img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
        for x, y, w, h, _ in im.get("parts", []):  # unlabelled decals: dashed red
            _dashed_rect(img, x * scale, y * scale, (x + w) * scale - 1, (y + h) * scale - 1, (0, 0, 255))
        for a in (a for a in coco["annotations"] if a["image_id"] == im["id"]):
            x, y, w, h = (v * scale for v in a["bbox"])
            cv2.rectangle(img, (x, y), (x + w - 1, y + h - 1), (0, 0, 0), 3)
            cv2.rectangle(img, (x, y), (x + w - 1, y + h - 1), (80, 255, 80), 1)
            label = names[a["category_id"]] + "".join(f" {k}={a[k]:.2f}" for k in ("visible", "fill") if k in a)
            if w >= 40 * scale or "visible" in a or "fill" in a:
                (tw, th), _ = cv2.getTextSize(label, font, 0.45, 1)
                ty = max(y - 3, th + 2)
                cv2.rectangle(img, (x, ty - th - 2), (x + tw + 2, ty + 2), (0, 0, 0), -1)
                cv2.putText(img, label, (x + 1, ty), font, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(img)
    height = max(t.shape[0] for t in tiles)
    tiles = [
        cv2.copyMakeBorder(t, 0, height - t.shape[0], 0, 8, cv2.BORDER_CONSTANT, value=(255, 255, 255)) for t in tiles
    ]
    while len(tiles) % columns:
        tiles.append(np.full_like(tiles[0], 255))
    rows = [np.concatenate(tiles[i : i + columns], axis=1) for i in range(0, len(tiles), columns)]
    grid = np.concatenate([cv2.copyMakeBorder(r, 0, 8, 0, 0, cv2.BORDER_CONSTANT, value=(255, 255, 255)) for r in rows])
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(out, grid, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return out


def main(argv: list[str] | None = None) -> int:
    from net_detr2.data.datasets.shapes import PLAIN_SHAPES, ensure_shapes_dataset
    from net_detr2.data.datasets.shapes_variants import SHAPES_VARIANTS

    family = {"shapes": PLAIN_SHAPES, **SHAPES_VARIANTS}
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", default="shapes", choices=[*family, "all"], help="which dataset (default: shapes)")
    ap.add_argument("--out", default=None, help="output directory (default: the cache directory; one variant only)")
    ap.add_argument("--draw", default=None, metavar="PICTURE", help="also draw validation images with ground truth")
    args = ap.parse_args(argv)
    names = list(family) if args.variant == "all" else [args.variant]
    if (args.out is not None or args.draw is not None) and len(names) > 1:
        ap.error("--out and --draw need a single --variant")
    for name in names:
        root = ensure_shapes_dataset(args.out, variant=family[name])
        print(f"{name} dataset ready at {root}")
        if args.draw:
            print(f"ground truth drawn in {draw_ground_truth(root, args.draw)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
