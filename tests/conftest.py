"""Shared pytest set-up (keep small): one intra-op thread so parallel test runs share the 2 CPU cores."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _single_thread_torch():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def _logs_reach_caplog():
    """`setup_logger` (called by tests that run `default_setup`) stops propagation of the package
    logger to avoid double printing; tests that read logs through caplog need it back."""
    import logging

    package_logger = logging.getLogger("net_detr2")
    previous = package_logger.propagate
    package_logger.propagate = True
    yield
    package_logger.propagate = previous


@pytest.fixture(scope="session")
def aquarium_root():
    """The Aquarium photo set: ``$NET_DETR2_DATASETS/aquarium`` when there, else ``<repo>/../shared/data/aquarium``
    (then ``aquarium_train`` / ``aquarium_valid`` are re-registered to point at it). Skips when neither exists."""
    from pathlib import Path

    from net_detr2.data import DatasetCatalog, MetadataCatalog
    from net_detr2.data.datasets import register_yolo_dataset
    from net_detr2.data.datasets.builtin import datasets_root

    shared = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "aquarium"
    root = next((r for r in (Path(datasets_root()) / "aquarium", shared) if (r / "data.yaml").is_file()), None)
    if root is None:
        pytest.skip(f"the Aquarium photo set is in neither {datasets_root()}/aquarium nor {shared}")
    for split in ("train", "valid"):
        name = f"aquarium_{split}"
        if MetadataCatalog.get(name).dirname != str(root):
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)
            register_yolo_dataset(name, str(root), split)
    return root
