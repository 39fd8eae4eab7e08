"""Evaluators (COCO, PASCAL VOC, TT100K) and the inference loop that feeds them."""

from __future__ import annotations

from .build import build_evaluator
from .coco_evaluation import COCOEvaluator, convert_to_coco_dict, instances_to_coco_json
from .evaluator import (
    DatasetEvaluator,
    DatasetEvaluators,
    NonFinitePredictionError,
    check_finite_predictions,
    inference_context,
    inference_on_dataset,
)
from .pascal_voc_evaluation import PascalVOCDetectionEvaluator
from .testing import flatten_results_dict, print_csv_format
from .tt100k_evaluation import TT100KEvaluator

__all__ = [k for k in globals().keys() if not k.startswith("_")]
