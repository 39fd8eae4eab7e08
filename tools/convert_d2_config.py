#!/usr/bin/env python
"""Convert a detectron2 YAML config into a net_detr2 LazyConfig file.

Usage:
    python tools/convert_d2_config.py faster_rcnn_R_50_FPN_1x.yaml out.py     # Python LazyConfig
    python tools/convert_d2_config.py faster_rcnn_R_50_FPN_1x.yaml out.yaml   # YAML LazyConfig

The input may be a full ``cfg.dump()`` or a model-zoo yaml whose ``_BASE_`` files sit where its
relative paths point. The output holds ``model`` (a LazyCall tree; ``instantiate(cfg.model)`` builds
the detector) and ``input`` (detectron2's INPUT resize settings: format, min/max size for train/test).
Only box-only GeneralizedRCNN (RPN + StandardROIHeads) and RetinaNet on ResNet(-FPN) are supported;
anything else stops with an error naming the key.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from net_detr2.compat import d2_config_to_lazy_experiment  # noqa: E402
from net_detr2.config import LazyConfig  # noqa: E402


def _write_atomic(text: str, filename: str) -> None:
    directory = os.path.dirname(os.path.abspath(filename))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, filename)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="detectron2 yaml config")
    parser.add_argument("output", help="output LazyConfig, .py or .yaml")
    args = parser.parse_args(argv)
    ext = os.path.splitext(args.output)[1]
    if ext not in (".py", ".yaml", ".yml"):
        parser.error(f"output {args.output}: extension must be .py or .yaml, got {ext!r}")
    try:
        with open(args.input, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        parser.error(f"cannot read {args.input}: {e}")
    try:
        cfg = d2_config_to_lazy_experiment(
            text, base_dir=os.path.dirname(os.path.abspath(args.input)), source=args.input
        )
    except (ValueError, KeyError, FileNotFoundError) as e:
        parser.error(str(e).strip("'\""))
    if ext == ".py":
        header = f'"""LazyConfig converted from the detectron2 config {os.path.basename(args.input)}."""\n'
        _write_atomic(header + LazyConfig.to_py(cfg, prefix=""), args.output)
    else:
        LazyConfig.save(cfg, args.output)
    print(f"Wrote {args.output}")


if __name__ == "__main__":
    main()
