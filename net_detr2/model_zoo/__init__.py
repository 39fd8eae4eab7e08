"""The configs that come with net_detr2 (the repository's ``configs/`` folder), by name.

In a config file anywhere (a project's, your own), import from them by their absolute name instead of a
chain of relative dots: ``from net_detr2.model_zoo.configs.common.data.coco import dataloader``
(`LazyConfig.load` resolves the name to ``configs/common/data/coco.py``; plain Python cannot import it).
Outside config files, `get_config` loads one: ``get_config("common/models/retinanet.py").model``.
Nothing is downloaded: these are configs only, no weights.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["CONFIGS_MODULE", "configs_root", "get_config", "get_config_file"]

# The absolute module name under which config files import the configs folder.
CONFIGS_MODULE = "net_detr2.model_zoo.configs"


def configs_root() -> Path:
    """The ``configs/`` folder beside the ``net_detr2`` package (the checkout setup.sh installed)."""
    root = Path(__file__).resolve().parents[2] / "configs"
    if not root.is_dir():
        raise FileNotFoundError(
            f"net_detr2's configs folder is not at {root}: the package was installed without its checkout "
            "(run setup.sh, which installs the repository in editable mode)"
        )
    return root


def get_config_file(config_path: str) -> str:
    """Path of a config in ``configs/``, e.g. ``get_config_file("common/data/coco.py")``."""
    path = configs_root() / config_path
    if not path.is_file():
        raise FileNotFoundError(f"get_config_file: no config {config_path!r} in {configs_root()} ({path} is missing)")
    return str(path)


def get_config(config_path: str):
    """`LazyConfig.load` of a config in ``configs/`` (a fresh copy at every call)."""
    from net_detr2.config import LazyConfig

    return LazyConfig.load(get_config_file(config_path))
