#!/usr/bin/env python
"""Run a detector on images and save the drawn detections as PNGs.

    python demo.py --config-file projects/EFPN/configs/x.py --input img.jpg [more.jpg | a_dir/] \\
        --output out/ [--weights model.pth] [--confidence-threshold 0.5] [--opts train.device=cpu]
    python demo.py --config-file CFG --dataset shapes_val --output out/ [--max-images 16]

The model is ``instantiate(cfg.model)``; weights come from ``--weights``, else from
``cfg.train.init_checkpoint`` (none: the model's initialisation, with a warning). It runs with its
BatchNorms folded into the convolutions (`fuse_for_inference`) and, when ``cfg.train.amp.enabled``, under
autocast in ``cfg.train.amp.dtype`` (CPU: bfloat16 where the CPU supports it). Images are
resized like the config's test mapper (``cfg.dataloader.test.mapper.augmentations``, when present)
and the detections, which the model returns in the original image frame, are drawn on the
original picture: ``<output>/<image stem>.png`` (``<stem>_1.png``, ... when stems repeat). With
``--opts train.tta.enabled=True`` the detections are those of the config's test-time augmentation
(`net_detr2.modeling.test_time_augmentation`).

demo.py never writes over a file: it refuses an ``--output`` folder that is, or contains, a folder
the inputs come from, and one that already holds any file this run would write (the check runs
before the model is built, and each file is then created exclusively). Directories given as
``--input`` are read without recursion, so an output folder *inside* an input folder is allowed:
its pictures are never read back as inputs.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

# torch and net_detr2 are imported where needed, so that argument/path errors come back at once.

logger = logging.getLogger("demo")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


class DemoError(RuntimeError):
    """A user-facing error (bad path, unreadable image, bad option): printed without a traceback."""


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="net_detr2 demo: draw a detector's predictions on images.")
    p.add_argument("--config-file", required=True, metavar="FILE", help="LazyConfig .py/.yaml file")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", nargs="+", metavar="PATH", help="image files and/or directories of images")
    src.add_argument("--dataset", metavar="NAME", help="a registered dataset: draw on its images")
    p.add_argument("--output", required=True, metavar="DIR", help="directory for the PNGs")
    p.add_argument(
        "--weights", default=None, metavar="PATH", help="checkpoint (.pth/.pkl); default: cfg.train.init_checkpoint"
    )
    p.add_argument("--confidence-threshold", type=float, default=0.5, help="minimum score to draw")
    p.add_argument("--max-images", type=int, default=None, help="stop after this many images")
    p.add_argument("--device", default=None, help="cpu / cuda (default: cfg.train.device, else cuda if available)")
    p.add_argument("--opts", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides")
    return p


# ---------------------------------------------------------------------------- inputs
def collect_inputs(paths: Sequence[str]) -> list[Path]:
    """Expand files/directories into a sorted list of image files; a missing path is an error naming it."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
            if not found:
                raise DemoError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in directory: {raw}")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise DemoError(f"input not found: {raw}")
    return files


def read_image(path: str | os.PathLike, fmt: str) -> np.ndarray:
    """HxWx3 uint8 image in ``fmt`` ("BGR"/"RGB") as the data loader reads it (EXIF orientation applied,
    16-bit scaled to 8, PIL's pixel limit enforced); errors name the file."""
    from net_detr2.data.detection_utils import UnreadableImageError
    from net_detr2.data.detection_utils import read_image as read_dataset_image

    if not os.path.isfile(path):
        raise DemoError(f"input not found: {path}")
    try:
        return read_dataset_image(str(path), "BGR" if fmt == "BGR" else "RGB")
    except UnreadableImageError as e:
        raise DemoError(f"cannot read image {path}: {e.__cause__ or e}") from None


# ---------------------------------------------------------------------------- outputs
def check_demo_output_dir(out_dir: Path, input_paths: Sequence[Path]) -> None:
    """Refuse an output folder that is a file, or that is or contains a folder the inputs come from (demo.py's rule;
    the other drawing tools refuse a folder inside the images' folders, `net_detr2.utils.safe_output`).

    ``input_paths``: the image files and the directories given as input (symlinks are resolved).
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise DemoError(f"--output {out_dir} is a file, not a folder")
    out = out_dir.resolve()
    folders = {path if path.is_dir() else path.parent: path for path in input_paths}  # one check per folder
    for folder, path in folders.items():
        folder = folder.resolve()
        if folder == out or out in folder.parents:
            relation = "is" if folder == out else "contains"
            raise DemoError(
                f"--output {out_dir} {relation} the folder of the input {path}: demo.py never writes where its "
                "inputs are (it could replace them). Choose an output folder outside the inputs' folders"
            )


def plan_output_paths(files: Sequence[Path], out_dir: Path) -> list[Path]:
    """``out_dir/<stem>.png`` per input, ``<stem>_<k>.png`` for the k-th repeat of a name (compared without
    case, for case-insensitive file systems). Raises if any of them exists already (nothing is overwritten)."""
    taken: set[str] = set()
    planned = []
    for f in files:
        name, k = f"{f.stem}.png", 0
        while name.lower() in taken:
            k += 1
            name = f"{f.stem}_{k}.png"
        taken.add(name.lower())
        planned.append(out_dir / name)
    existing = [p for p in planned if p.exists() or p.is_symlink()]
    if existing:
        shown = ", ".join(p.name for p in existing[:5]) + (
            f" and {len(existing) - 5} more" if len(existing) > 5 else ""
        )
        raise DemoError(
            f"--output {out_dir} already holds {len(existing)} of the {len(planned)} files this run would write "
            f"({shown}): demo.py never overwrites files. Choose a new --output folder, or remove them"
        )
    return planned


def write_new_png(path: Path, rgb: np.ndarray) -> None:
    """Encode ``rgb`` (HxWx3 uint8) as PNG into ``path``, which must not exist (exclusive creation)."""
    import cv2

    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]))
    if not ok:
        raise DemoError(f"cannot encode the picture for {path}")
    try:
        with open(path, "xb") as f:
            try:
                f.write(buf.tobytes())
            except BaseException:
                f.close()
                path.unlink()  # our own partial file (e.g. a full disk): leave nothing half-written
                raise
    except FileExistsError:
        raise DemoError(f"{path} appeared while demo.py was running; it was not overwritten") from None
    except OSError as e:
        raise DemoError(f"cannot write {path}: {e}") from None


# ---------------------------------------------------------------------------- config / model
def _node_get(node: Any, key: str, default: Any = None) -> Any:
    try:
        return node[key] if key in node else default
    except TypeError:
        return getattr(node, key, default)


def setup_cfg(config_file: str, opts: Sequence[str]):
    from net_detr2.config import LazyConfig

    if not os.path.isfile(config_file):
        raise DemoError(f"config file not found: {config_file}")
    cfg = LazyConfig.load(config_file)
    LazyConfig.apply_overrides(cfg, list(opts))
    return cfg


def dataset_name_of(cfg) -> str | None:
    """The test dataset's name (for class names), from the evaluator or the test loader."""
    dl = _node_get(cfg, "dataloader")
    if dl is None:
        return None
    for path in (("evaluator", "dataset_name"), ("test", "dataset", "names"), ("test", "dataset_name")):
        node = dl
        for k in path:
            node = _node_get(node, k)
            if node is None:
                break
        if node:
            return node if isinstance(node, str) else list(node)[0]
    return None


def get_test_augmentations(cfg) -> list:
    """Instantiated ``cfg.dataloader.test.mapper.augmentations`` ([] when the config has none)."""
    from net_detr2.config import instantiate

    mapper = _node_get(_node_get(_node_get(cfg, "dataloader"), "test"), "mapper")
    augs = _node_get(mapper, "augmentations") if mapper is not None else None
    if not augs:
        return []
    return [instantiate(a) for a in augs]


class DemoPredictor:
    """Model + test-time resize for single images (like detectron2's DefaultPredictor)."""

    def __init__(self, cfg, weights: str | None = None, device: str | None = None):
        import torch

        from net_detr2.config import instantiate
        from net_detr2.layers import fuse_for_inference
        from net_detr2.utils.amp import resolve_amp_dtype

        train = _node_get(cfg, "train")
        device = device or _node_get(train, "device") or ("cuda" if torch.cuda.is_available() else "cpu")
        self.device = device
        # the precision the model was trained and evaluated in: train.amp, which every config defines (its train
        # starts from configs/common/train.py); demo.py has no default of its own
        amp = _node_get(train, "amp")
        missing = [f"train.amp.{k}" for k in ("enabled", "dtype") if _node_get(amp, k) is None]
        if missing:
            raise DemoError(
                f"the config has no {' and no '.join(missing)}: demo.py runs the model in the config's precision. "
                "Set them (configs/common/train.py defines train.amp = dict(enabled=False, dtype='bfloat16'); "
                "a config's train usually starts from it)"
            )
        try:
            self.amp_dtype = resolve_amp_dtype(bool(amp["enabled"]), amp["dtype"], device)
        except ValueError as e:
            raise DemoError(str(e)) from None
        model = instantiate(cfg.model)
        model.to(device)
        weights = weights or _node_get(train, "init_checkpoint") or None
        if weights:
            from net_detr2.checkpoint import CheckpointLoadError, DetectionCheckpointer

            if not os.path.exists(weights) and "://" not in str(weights):
                raise DemoError(f"weights file not found: {weights}")
            try:
                DetectionCheckpointer(model).load(weights)
            except (CheckpointLoadError, OSError) as e:
                raise DemoError(str(e)) from None
        else:
            logger.warning("No --weights and no cfg.train.init_checkpoint: the model is randomly initialised")
        self.model = fuse_for_inference(model)
        tta = _node_get(train, "tta")
        if tta is not None and _node_get(tta, "enabled"):
            from net_detr2.modeling.test_time_augmentation import build_tta_model

            self.model = build_tta_model(self.model, tta)
            logger.info(f"Test-time augmentation (train.tta): scales {list(tta.scales)}, flip {tta.flip}")
        self.augmentations = get_test_augmentations(cfg)
        mapper = _node_get(_node_get(_node_get(cfg, "dataloader"), "test"), "mapper")
        self.input_format = (_node_get(mapper, "image_format") if mapper is not None else None) or getattr(
            self.model, "input_format", "BGR"
        )

    def __call__(self, original_image: np.ndarray):
        """``original_image``: HxWx3 uint8 in ``self.input_format``; returns the image's ``Instances`` (CPU)."""
        import torch

        from net_detr2.data import transforms as T
        from net_detr2.utils.amp import autocast

        h, w = original_image.shape[:2]
        image = original_image
        if self.augmentations:
            aug_input = T.AugInput(original_image)
            aug_input.apply_augmentations(self.augmentations)
            image = aug_input.image
        tensor = torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)).astype("float32"))
        with torch.no_grad(), autocast(self.device, self.amp_dtype):
            out = self.model([{"image": tensor, "height": h, "width": w}])[0]
        return out["instances"].to("cpu")


# ---------------------------------------------------------------------------- main
def run(args: argparse.Namespace) -> list[str]:
    # Validate the inputs before the (slow) model build so that a typo fails at once.
    metadata = None
    cfg = None
    if args.input:
        files = collect_inputs(args.input)
        input_paths = [Path(p) for p in args.input] + files
    else:
        from net_detr2.data import DatasetCatalog, MetadataCatalog

        cfg = setup_cfg(args.config_file, args.opts)  # first: the config may register the dataset

        try:
            dicts = DatasetCatalog.get(args.dataset)
        except KeyError as e:
            raise DemoError(str(e.args[0] if e.args else e)) from None
        files = [Path(d["file_name"]) for d in dicts]
        input_paths = files
        metadata = MetadataCatalog.get(args.dataset)
    if args.max_images is not None:
        files = files[: args.max_images]
    out_dir = Path(args.output)
    check_demo_output_dir(out_dir, input_paths)
    out_paths = plan_output_paths(files, out_dir)

    if cfg is None:
        cfg = setup_cfg(args.config_file, args.opts)
    if metadata is None:
        name = dataset_name_of(cfg)
        if name:
            from net_detr2.data import MetadataCatalog

            metadata = MetadataCatalog.get(name)
    predictor = DemoPredictor(cfg, weights=args.weights, device=args.device)
    from net_detr2.utils.visualizer import Visualizer

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for f, path in zip(files, out_paths):
        image = read_image(f, predictor.input_format)
        instances = predictor(image)
        if instances.has("scores"):
            instances = instances[instances.scores >= args.confidence_threshold]
        rgb = image[:, :, ::-1] if predictor.input_format == "BGR" else image
        vis = Visualizer(rgb, metadata).draw_instance_predictions(instances)
        write_new_png(path, vis.get_image())
        logger.info("%s: %d detections -> %s", f, len(instances), path)
        written.append(str(path))
    return written


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(name)s %(levelname)s: %(message)s")
    args = get_parser().parse_args(argv)
    try:
        paths = run(args)
    except DemoError as e:
        print(f"demo.py: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {len(paths)} image(s) to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
