#!/usr/bin/env python
"""Generate the synthetic `shapes` dataset now (otherwise it is generated on first use).

Writes to ``$NET_DETR2_CACHE/shapes_v1`` (default ``~/.cache/net_detr2/shapes_v1``), or ``--out``.
Usage: ``python datasets/prepare_shapes.py [--out DIR]``
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    from net_detr2.data.datasets.shapes import ensure_shapes_dataset

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="output directory (default: the cache directory)")
    args = ap.parse_args(argv)
    root = ensure_shapes_dataset(args.out)
    print(f"shapes dataset ready at {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
