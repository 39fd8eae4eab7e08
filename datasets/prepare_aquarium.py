"""Put the Aquarium photo set where `aquarium_train` / `aquarium_valid` look for it: ``$NET_DETR2_DATASETS/aquarium``.

    python datasets/prepare_aquarium.py --source ../shared/data/aquarium        # link (default)
    python datasets/prepare_aquarium.py --source ~/Downloads/aquarium --copy    # or copy

The source must have the Roboflow YOLO layout (``data.yaml``, ``{train,valid}/{images,labels}``). When it
carries a ``SHA256SUMS`` file, every listed file is checked first and a mismatch stops with the file's name.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
from pathlib import Path


def verify(source: Path) -> int:
    """Check ``source`` has the expected layout and, if listed, the expected file hashes; returns #files checked."""
    for rel in ("data.yaml", "train/images", "train/labels", "valid/images", "valid/labels"):
        if not (source / rel).exists():
            raise FileNotFoundError(f"{source / rel} is missing: not an Aquarium (YOLO) folder")
    sums = source / "SHA256SUMS"
    if not sums.is_file():
        return 0
    checked = 0
    for line in sums.read_text().splitlines():
        if not line.strip():
            continue
        digest, rel = line.split(maxsplit=1)
        path = source / rel.lstrip("*")
        if not path.is_file():
            raise FileNotFoundError(f"{path} is listed in {sums} but missing")
        if hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            raise ValueError(f"{path}: sha256 differs from {sums} (corrupt or modified file)")
        checked += 1
    return checked


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", required=True, help="the Aquarium folder (with data.yaml)")
    parser.add_argument(
        "--root",
        default=os.environ.get("NET_DETR2_DATASETS", "datasets"),
        help="datasets root (default: $NET_DETR2_DATASETS or ./datasets)",
    )
    parser.add_argument("--copy", action="store_true", help="copy instead of linking")
    args = parser.parse_args(argv)
    source = Path(args.source).expanduser().resolve()
    checked = verify(source)
    target = Path(args.root) / "aquarium"
    if target.exists() or target.is_symlink():
        if target.resolve() == source:
            print(f"{target} already points at {source} ({checked} files verified)")
            return 0
        raise FileExistsError(f"{target} exists and is not {source}: remove it first")
    target.parent.mkdir(parents=True, exist_ok=True)
    if args.copy:
        shutil.copytree(source, target)
    else:
        target.symlink_to(source, target_is_directory=True)
    print(f"{target} -> {source} ({'copied' if args.copy else 'linked'}; {checked} files verified)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
