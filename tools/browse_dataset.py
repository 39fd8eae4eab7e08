#!/usr/bin/env python
"""Look at a dataset: its ground truth drawn on the images, and per-class and box-size statistics.

    python tools/browse_dataset.py --dataset shapes_train --output output/browse --num-images 8
    python tools/browse_dataset.py --dataset aquarium_train --stats-only --output output/aquarium_stats
    # the images as training sees them: after the config's augmentations (resizing, flips, crops ...)
    python tools/browse_dataset.py --config-file configs/shapes/faster_rcnn_R18_FPN.py --source dataloader \\
        --output output/browse_aug

Any registered dataset works: built-in ones, and those a config registers (``--config-file`` is loaded first,
so its ``register_coco_instances`` / ``register_yolo_dataset`` calls run). Without ``--dataset``, the config's
training set is used. Writes ``<output>/<image>.png`` per image, ``<output>/grid.png``, and with the statistics
(on by default) ``<output>/statistics.png`` and ``<output>/statistics.txt``: boxes and images per class, and
the small / medium / large shares (COCO's 32 and 96 px bounds on the box area). Nothing is overwritten: a name
taken already gets a number (``grid_1.png``, ``statistics_1.txt``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402
from tabulate import tabulate  # noqa: E402

from net_detr2.config import LazyConfig, instantiate  # noqa: E402
from net_detr2.data import DatasetCatalog, MetadataCatalog  # noqa: E402
from net_detr2.data.statistics import DatasetStatistics, dataset_statistics  # noqa: E402
from net_detr2.utils.logger import setup_logger  # noqa: E402
from net_detr2.utils.plotting import plot_dataset_statistics  # noqa: E402
from net_detr2.utils.safe_output import check_output_dir, new_file_path  # noqa: E402
from net_detr2.utils.visualizer import VisImage, Visualizer, _read_rgb, make_image_grid  # noqa: E402

logger = logging.getLogger("net_detr2.browse")


def _dataset_names(cfg, name: str | None) -> list[str]:
    if name:
        return [name]
    if cfg is None:
        raise SystemExit("give --dataset NAME, or --config-file whose dataloader.train names a dataset")
    try:
        names = cfg.dataloader.train.dataset.names
    except Exception as e:
        raise SystemExit(f"cfg.dataloader.train.dataset.names not found ({e}); pass --dataset NAME") from e
    return [names] if isinstance(names, str) else list(names)


def draw_annotations(dicts: list[dict], metadata, output: Path, num: int, used: set[str]) -> list[np.ndarray]:
    """The first ``num`` images with their ground truth, each into a new file (``used``: the names this run took)."""
    pictures = []
    for d in dicts[:num]:
        vis = Visualizer(_read_rgb(d["file_name"]), metadata).draw_dataset_dict(d)
        vis.save(new_file_path(output, Path(d["file_name"]).stem, used))
        pictures.append(vis.get_image())
    return pictures


def draw_loader(cfg, metadata, output: Path, num: int, used: set[str]) -> list[np.ndarray]:
    """Training batches after the config's augmentations (the mapped image and its ``instances``)."""
    fmt = cfg.dataloader.train.mapper.get("image_format", "BGR") if "mapper" in cfg.dataloader.train else "BGR"
    pictures = []
    for batch in instantiate(cfg.dataloader.train):
        for d in batch:
            img = d["image"].permute(1, 2, 0).numpy()
            img = img[:, :, ::-1] if fmt == "BGR" else img
            inst = d.get("instances")
            vis = Visualizer(np.ascontiguousarray(img), metadata)
            if inst is not None and len(inst):
                names = metadata.get("thing_classes")
                classes = inst.gt_classes.tolist()
                labels = [names[c] if names and c < len(names) else str(c) for c in classes]
                vis.overlay_instances(boxes=inst.gt_boxes, labels=labels)
            vis.output.save(new_file_path(output, Path(d.get("file_name", "image")).stem + "_aug", used))
            pictures.append(vis.output.get_image())
            if len(pictures) >= num:
                return pictures
    return pictures


def statistics(dicts: list[dict], names: list[str]) -> DatasetStatistics:
    classes = MetadataCatalog.get(names[0]).get("thing_classes")
    if not classes:
        top = max((a["category_id"] for d in dicts for a in d.get("annotations", [])), default=-1)
        classes = [str(i) for i in range(top + 1)]
    return dataset_statistics(dicts, classes)


def main(argv: list[str] | None = None) -> DatasetStatistics | None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config-file", default="", metavar="FILE", help="config (loaded first: it may register data)")
    p.add_argument("--dataset", default="", help="registered dataset name (default: the config's training set)")
    p.add_argument(
        "--source",
        choices=["annotation", "dataloader"],
        default="annotation",
        help="annotation: the images as stored; dataloader: after the config's training augmentations",
    )
    p.add_argument("--output", required=True, help="folder for the pictures (created; must not hold the images)")
    p.add_argument("--num-images", type=int, default=16)
    p.add_argument("--stats-only", action="store_true", help="only the statistics")
    p.add_argument("--no-stats", action="store_true", help="only the pictures")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides key=value")
    args = p.parse_args(argv)
    setup_logger(name="net_detr2")
    cfg = LazyConfig.apply_overrides(LazyConfig.load(args.config_file), args.opts) if args.config_file else None
    if args.source == "dataloader" and cfg is None:
        p.error("--source dataloader needs --config-file")
    names = _dataset_names(cfg, args.dataset or None)
    for n in names:
        if n not in DatasetCatalog:
            p.error(f"dataset {n!r} is not registered; registered: {', '.join(sorted(DatasetCatalog.list()))}")
    metadata = MetadataCatalog.get(names[0])
    output = Path(args.output)
    try:
        dicts = [d for n in names for d in DatasetCatalog.get(n)]
    except (OSError, ValueError) as e:  # missing files, bad annotations: the loaders' messages name them
        raise SystemExit(f"browse_dataset: cannot load {', '.join(names)}: {e}") from e
    try:
        check_output_dir(output, {Path(d["file_name"]).parent for d in dicts if "file_name" in d})
    except ValueError as e:
        p.error(str(e))
    output.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()  # every file goes to a new name: an existing one is never overwritten
    if not args.stats_only:
        if args.source == "dataloader":
            if args.dataset:
                cfg.dataloader.train.dataset.names = args.dataset
            pictures = draw_loader(cfg, metadata, output, args.num_images, used)
        else:
            pictures = draw_annotations(dicts, metadata, output, args.num_images, used)
        if pictures:
            grid = new_file_path(output, "grid", used)
            VisImage(make_image_grid(pictures, columns=4, cell_width=360)).save(grid)
            print(f"Drew {len(pictures)} images of {', '.join(names)} into {output} (tiled in {grid})")
    if args.no_stats:
        return None
    stats = statistics(dicts, names)
    table = tabulate(stats.table_rows(), headers=DatasetStatistics.TABLE_HEADERS, tablefmt="pipe", floatfmt=".1f")
    summary = (
        f"{', '.join(names)}: {stats.num_images} images ({stats.num_images_without_boxes} without boxes), "
        f"{stats.total_instances} boxes ({stats.num_crowd} crowd boxes left out); "
        "small < 32x32 <= medium < 96x96 <= large (box area in pixels)\n" + table
    )
    print(summary)
    text_file, picture = new_file_path(output, "statistics", used, ".txt"), new_file_path(output, "statistics", used)
    with open(text_file, "x", encoding="utf-8") as f:
        f.write(summary + "\n")
    plot_dataset_statistics(stats, str(picture), title=", ".join(names))
    print(f"Statistics: {text_file}, {picture}")
    return stats


if __name__ == "__main__":
    main()
