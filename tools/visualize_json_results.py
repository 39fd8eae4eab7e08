#!/usr/bin/env python
"""Draw the detections of an evaluation (``coco_instances_results.json``) beside the ground truth.

    python tools/visualize_json_results.py --input out/coco_instances_results.json --dataset shapes_val \\
        --output out/vis_results --conf-threshold 0.5 --num-images 16

Each picture is ``[ground truth | detections >= threshold]`` (a panel without detections says so), saved as
``<output>/<image>.png``; the first 16 are also tiled in ``<output>/grid.png``. Images without any
detection are drawn too, so that misses show. Nothing is overwritten: a name taken already gets a number
(``grid_1.png``). ``--config-file`` is loaded first, so datasets the config
registers are known.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch  # noqa: E402

from net_detr2.data import DatasetCatalog, MetadataCatalog  # noqa: E402
from net_detr2.evaluation.error_analysis import (  # noqa: E402
    add_results_arguments,
    results_from_arguments,
    results_to_instances,
)
from net_detr2.structures import Boxes, Instances  # noqa: E402
from net_detr2.utils.logger import setup_logger  # noqa: E402
from net_detr2.utils.safe_output import check_output_dir, new_file_path  # noqa: E402
from net_detr2.utils.visualizer import (  # noqa: E402
    VisImage,
    _read_rgb,
    draw_ground_truth_and_predictions,
    make_image_grid,
)


def main(argv: list[str] | None = None) -> list[str]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_results_arguments(p)
    p.add_argument("--output", required=True, help="folder for the pictures (must not hold the images)")
    p.add_argument("--conf-threshold", type=float, default=0.5, help="lowest score drawn")
    p.add_argument("--num-images", type=int, default=0, help="draw only the first N images (0: all)")
    args = p.parse_args(argv)
    setup_logger(name="net_detr2")
    records = results_from_arguments(p, args)
    dicts = DatasetCatalog.get(args.dataset)
    ids = {d.get("image_id") for d in dicts}
    unknown = {r["image_id"] for r in records} - ids
    if unknown:
        p.error(
            f"{args.input}: {len(unknown)} image ids are not in {args.dataset}, e.g. {sorted(unknown, key=str)[:3]}"
        )
    output = Path(args.output)
    try:
        check_output_dir(output, {Path(d["file_name"]).parent for d in dicts})
    except ValueError as e:
        p.error(str(e))
    output.mkdir(parents=True, exist_ok=True)
    metadata = MetadataCatalog.get(args.dataset)
    predictions = results_to_instances(records, args.dataset)
    if args.num_images > 0:
        dicts = dicts[: args.num_images]
    written, pictures, used = [], [], set()
    for d in dicts:
        img = _read_rgb(d["file_name"])
        inst = predictions.get(d["image_id"])
        if inst is None:
            inst = Instances(img.shape[:2], pred_boxes=Boxes(torch.zeros(0, 4)), scores=torch.zeros(0))
            inst.pred_classes = torch.zeros(0, dtype=torch.int64)
        drawn = draw_ground_truth_and_predictions(img, d, inst, metadata, args.conf_threshold)
        path = new_file_path(output, Path(d["file_name"]).stem, used)
        VisImage(drawn).save(path)
        written.append(str(path))
        if len(pictures) < 16:
            pictures.append(drawn)
    grid = "no grid"
    if pictures:
        grid = new_file_path(output, "grid", used)
        VisImage(make_image_grid(pictures, columns=2, cell_width=720)).save(grid)
        grid = f"the first {len(pictures)} in {grid.name}"
    print(f"Drew {len(written)} images of {args.dataset} into {output} ({grid})")
    return written


if __name__ == "__main__":
    main()
