#!/usr/bin/env python
"""Convert a detectron2 YAML config into a net_detr2 LazyConfig file that train_net.py runs as it is.

Usage:
    python tools/convert_d2_config.py faster_rcnn_R_50_FPN_1x.yaml out.py     # Python LazyConfig
    python tools/convert_d2_config.py faster_rcnn_R_50_FPN_1x.yaml out.yaml   # YAML LazyConfig
    # detectron2-style KEY VALUE overrides, applied before converting:
    python tools/convert_d2_config.py in.yaml out.py SOLVER.IMS_PER_BATCH 2 DATASETS.TRAIN "('shapes_train',)"

An existing output file is refused (``--overwrite`` replaces it; the input itself, never).

The input may be a full ``cfg.dump()`` or a model-zoo yaml whose ``_BASE_`` files sit where its relative paths
point. The output holds ``model``, ``dataloader``, ``optimizer``, ``lr_multiplier`` and ``train`` (and ``input``,
a record of detectron2's INPUT resize settings). Every key of the yaml files that is not carried over is
printed as a warning and listed in the .py file's docstring. Only box-only GeneralizedRCNN (RPN +
StandardROIHeads) and RetinaNet on ResNet(-FPN) are supported; anything else stops with an error naming the
key and the file.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from net_detr2.checkpoint import atomic_write  # noqa: E402
from net_detr2.compat import convert_d2_config  # noqa: E402
from net_detr2.config import LazyConfig  # noqa: E402


def _docstring(source: str, overrides: list[str], warnings: list[str]) -> str:
    lines = [f"LazyConfig converted from the detectron2 config {source} by tools/convert_d2_config.py."]
    if overrides:
        lines.append("detectron2 overrides applied: " + " ".join(overrides))
    lines.append("")
    lines.append("`input` records detectron2's INPUT resize settings; training uses the loaders in `dataloader`.")
    if warnings:
        lines.append("")
        lines.append("Warnings of the conversion:")
        lines += [f"- {w}" for w in warnings]
    text = "\n".join(lines).replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    return f'"""{text}\n"""\n'


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="detectron2 yaml config")
    parser.add_argument("output", help="output LazyConfig, .py or .yaml")
    parser.add_argument(
        "opts", nargs=argparse.REMAINDER, help="detectron2 overrides: KEY VALUE pairs, e.g. SOLVER.MAX_ITER 100"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing output file (never the input itself)"
    )
    args = parser.parse_args(argv)
    # after the positional arguments the flag lands among the KEY VALUE pairs (no detectron2 key starts with "--")
    keys = args.opts[::2]
    if "--overwrite" in keys:
        del args.opts[2 * keys.index("--overwrite")]
        args.overwrite = True
    ext = os.path.splitext(args.output)[1]
    if ext not in (".py", ".yaml", ".yml"):
        parser.error(f"output {args.output}: extension must be .py or .yaml, got {ext!r}")
    if os.path.lexists(args.output):
        if os.path.exists(args.input) and os.path.exists(args.output) and os.path.samefile(args.input, args.output):
            parser.error(f"output {args.output} is the input file {args.input}: give the converted config another name")
        if not args.overwrite:
            parser.error(
                f"output {args.output} exists: convert_d2_config.py never replaces a file unasked. Choose another "
                "name, remove it, or pass --overwrite"
            )
    try:
        with open(args.input, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        parser.error(f"cannot read {args.input}: {e}")
    default_output_dir = os.path.join("output", os.path.splitext(os.path.basename(args.output))[0])
    try:
        conversion = convert_d2_config(
            text,
            base_dir=os.path.dirname(os.path.abspath(args.input)),
            source=args.input,
            overrides=args.opts,
            output_dir=default_output_dir,
        )
    except (ValueError, KeyError, FileNotFoundError) as e:
        parser.error(str(e).strip("'\""))
    warnings = conversion.warnings()
    for w in warnings:
        print(f"WARNING {args.input}: {w}", file=sys.stderr)
    if ext == ".py":
        text = _docstring(args.input, args.opts, warnings) + LazyConfig.to_py(conversion.config, prefix="")
        atomic_write(args.output, lambda f: f.write(text.encode("utf-8")))
    else:
        LazyConfig.save(conversion.config, args.output)
    print(f"Wrote {args.output} ({len(conversion.not_carried)} keys not carried over)")
    return args.output


if __name__ == "__main__":
    main()
