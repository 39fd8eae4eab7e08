"""Pick the evaluator a dataset asks for (its metadata's ``evaluator_type``), as detectron2's tools do."""

from __future__ import annotations

from collections.abc import Sequence

from net_detr2.data import MetadataCatalog

from .coco_evaluation import COCOEvaluator
from .evaluator import DatasetEvaluator
from .pascal_voc_evaluation import PascalVOCDetectionEvaluator
from .tt100k_evaluation import TT100KEvaluator

__all__ = ["build_evaluator"]


def build_evaluator(dataset_name: str | Sequence[str], output_dir: str | None = None) -> DatasetEvaluator:
    """The evaluator of a registered dataset by its ``evaluator_type``: ``"coco"`` (also the default when the
    metadata has none) -> `COCOEvaluator`, ``"pascal_voc"`` -> `PascalVOCDetectionEvaluator`, ``"tt100k"`` ->
    `TT100KEvaluator`. A one-element list of names (a config's ``dataset.names``) is accepted.
    """
    if not isinstance(dataset_name, str):
        names = list(dataset_name)
        if len(names) != 1:
            raise ValueError(f"build_evaluator: evaluate one dataset at a time, got {names}")
        dataset_name = names[0]
    kind = MetadataCatalog.get(dataset_name).get("evaluator_type", "coco")
    if kind == "coco":
        return COCOEvaluator(dataset_name, output_dir=output_dir)
    if kind == "pascal_voc":
        return PascalVOCDetectionEvaluator(dataset_name)
    if kind == "tt100k":
        return TT100KEvaluator(dataset_name, output_dir=output_dir)
    raise ValueError(
        f"build_evaluator: dataset {dataset_name!r} has evaluator_type {kind!r}; "
        "net_detr2 has 'coco', 'pascal_voc' and 'tt100k' evaluators"
    )
