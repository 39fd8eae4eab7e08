"""The evaluator protocol and the inference loop that feeds it."""

from __future__ import annotations

import datetime
import logging
import time
from collections import OrderedDict, abc
from collections.abc import Callable
from contextlib import ExitStack

import torch
from torch import nn

from net_detr2.utils import comm
from net_detr2.utils.amp import autocast
from net_detr2.utils.eval_mode import eval_mode
from net_detr2.utils.module_utils import model_device

__all__ = [
    "DatasetEvaluator",
    "DatasetEvaluators",
    "NonFinitePredictionError",
    "check_finite_predictions",
    "inference_on_dataset",
    "inference_context",
]

logger = logging.getLogger(__name__)


class NonFinitePredictionError(ValueError):
    """A model predicted a box or score that is NaN or infinite. The message names the image."""


def check_finite_predictions(instances, inp: dict, evaluator: str) -> None:
    """Raise `NonFinitePredictionError` naming the image if any ``pred_boxes``/``scores`` value is NaN or Inf.

    Every evaluator calls it on each image's predictions: pycocotools and the VOC/TT100K matchers would
    otherwise count such boxes as detections (NaN compares as neither above nor below a threshold), so a
    diverged model could score. ``instances``: ``Instances`` with ``pred_boxes`` (Boxes, (N, 4)) and
    ``scores`` (N,); ``inp``: the model's input dict (its ``file_name``/``image_id`` name the image).
    """
    if len(instances) == 0:
        return
    boxes = instances.pred_boxes.tensor
    bad = ~torch.isfinite(boxes).all(dim=1)
    scores = instances.scores if instances.has("scores") else None
    if scores is not None:
        bad |= ~torch.isfinite(scores)
    if not bool(bad.any()):
        return
    k = int(bad.nonzero()[0, 0])
    example = f"box {boxes[k].tolist()}" + (f" with score {float(scores[k])}" if scores is not None else "")
    image = inp.get("file_name", "<no file_name>")
    raise NonFinitePredictionError(
        f"{evaluator}: the model predicted {int(bad.sum())} of {len(instances)} detections with NaN/Inf "
        f"coordinates or scores for image {image} (image_id {inp.get('image_id')!r}), e.g. {example}. "
        "Such predictions are not evaluated as detections: the model (or its weights) is broken"
    )


class DatasetEvaluator:
    """Accumulates model outputs over a dataset and computes metrics at the end.

    Protocol: ``reset()`` once, ``process(inputs, outputs)`` for every batch, ``evaluate()`` once.
    In distributed inference every rank processes its share; ``evaluate`` gathers onto the main
    process, which returns the results (other ranks return ``{}`` or None).
    """

    def reset(self) -> None:
        """Forget everything processed so far (called before a new evaluation)."""

    def process(self, inputs: list[dict], outputs: list[dict]) -> None:
        """Consume one batch: the model's ``inputs`` and the ``outputs`` it returned for them."""

    def evaluate(self) -> dict | None:
        """Return ``{task: {metric: float}}`` (on the main process), or None / ``{}``."""


class DatasetEvaluators(DatasetEvaluator):
    """Runs several evaluators side by side and merges their result dicts (task names must differ)."""

    def __init__(self, evaluators: list[DatasetEvaluator]):
        super().__init__()
        self._evaluators = list(evaluators)

    def reset(self) -> None:
        for e in self._evaluators:
            e.reset()

    def process(self, inputs, outputs) -> None:
        for e in self._evaluators:
            e.process(inputs, outputs)

    def evaluate(self) -> OrderedDict:
        results: OrderedDict = OrderedDict()
        for e in self._evaluators:
            result = e.evaluate()
            if comm.is_main_process() and result is not None:
                for k, v in result.items():
                    if k in results:
                        raise KeyError(
                            f"DatasetEvaluators: two evaluators returned the task {k!r}; "
                            f"rename one of them ({type(e).__name__} is the second)"
                        )
                    results[k] = v
        return results


# detectron2's name for it: the model in eval mode for the block, its training flags restored afterwards
inference_context = eval_mode


def _fmt_eta(seconds: float) -> str:
    return str(datetime.timedelta(seconds=int(round(max(seconds, 0.0)))))


def inference_on_dataset(
    model: nn.Module | Callable,
    data_loader,
    evaluator: DatasetEvaluator | list[DatasetEvaluator] | None,
    callbacks: dict[str, Callable[[], None]] | None = None,
    log_period_s: float = 5.0,
    amp_dtype: torch.dtype | None = None,
) -> dict:
    """Run ``model`` over every batch of ``data_loader`` and evaluate with ``evaluator``.

    The model runs in eval mode (restored afterwards) under ``torch.no_grad``, and under autocast in
    ``amp_dtype`` when one is given (the models return fp32 boxes and scores either way). The first
    ``min(5, len-1)`` batches are a warm-up excluded from the timing; progress (batches done, per-image
    times, ETA) is logged right after it and then at most every ``log_period_s`` seconds.

    Args:
        model: an ``nn.Module`` (or any callable) taking a list of input dicts.
        data_loader: iterable of batches (lists of dicts); ``len()`` is used for the ETA if available.
        evaluator: a DatasetEvaluator, a list of them, or None (inference only, results ``{}``).
        callbacks: optional ``on_start``, ``before_inference``, ``after_inference``, ``on_end``
            zero-argument functions (detectron2's hook points).
        log_period_s: seconds between progress lines.
        amp_dtype: autocast dtype on the model's device (``model.device``, else its parameters', else CPU),
            e.g. ``resolve_amp_dtype(cfg.train.amp.enabled, cfg.train.amp.dtype, device)``; None = fp32.
    Returns:
        the evaluator's results (``{}`` when it returns None or on non-main processes).
    """
    num_devices = comm.get_world_size()
    try:
        total: int | None = len(data_loader)
    except TypeError:
        total = None
    logger.info("Start inference on %s batches", total if total is not None else "an unknown number of")

    if evaluator is None:
        evaluator = DatasetEvaluators([])
    elif isinstance(evaluator, abc.MutableSequence):
        evaluator = DatasetEvaluators(evaluator)
    evaluator.reset()

    num_warmup = min(5, total - 1) if total is not None else 5
    num_warmup = max(num_warmup, 0)
    callbacks = callbacks or {}
    unknown = set(callbacks) - {"on_start", "before_inference", "after_inference", "on_end"}
    if unknown:
        raise KeyError(f"inference_on_dataset: unknown callbacks {sorted(unknown)}")

    start_time = time.perf_counter()
    total_data_time = total_compute_time = total_eval_time = 0.0
    timed_images = 0
    last_log = start_time
    idx = -1
    with ExitStack() as stack:
        if isinstance(model, nn.Module):
            stack.enter_context(inference_context(model))
        stack.enter_context(torch.no_grad())
        stack.enter_context(autocast(model_device(model), amp_dtype))

        if "on_start" in callbacks:
            callbacks["on_start"]()
        start_data_time = time.perf_counter()
        for idx, inputs in enumerate(data_loader):
            if idx == num_warmup:
                # Timing starts after the warm-up (allocators, cudnn autotuning, lazy init).
                start_time = time.perf_counter()
                total_data_time = total_compute_time = total_eval_time = 0.0
                timed_images = 0
            total_data_time += time.perf_counter() - start_data_time

            if "before_inference" in callbacks:
                callbacks["before_inference"]()
            start_compute_time = time.perf_counter()
            outputs = model(inputs)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            total_compute_time += time.perf_counter() - start_compute_time
            if "after_inference" in callbacks:
                callbacks["after_inference"]()

            start_eval_time = time.perf_counter()
            evaluator.process(inputs, outputs)
            total_eval_time += time.perf_counter() - start_eval_time

            if idx >= num_warmup:
                timed_images += len(inputs) if hasattr(inputs, "__len__") else 1
            iters_after_start = idx + 1 - num_warmup * int(idx >= num_warmup)
            now = time.perf_counter()
            if idx >= num_warmup and (idx == num_warmup or now - last_log >= log_period_s):
                last_log = now
                per_iter = (now - start_time) / max(iters_after_start, 1)
                per_img = (now - start_time) / max(timed_images, 1)
                eta = per_iter * (total - idx - 1) if total is not None else float("nan")
                logger.info(
                    "Inference done %d/%s. Dataloading: %.4f s/iter. Inference: %.4f s/iter. Eval: %.4f s/iter. "
                    "Total: %.4f s/iter (%.4f s/img). ETA=%s",
                    idx + 1,
                    total if total is not None else "?",
                    total_data_time / iters_after_start,
                    total_compute_time / iters_after_start,
                    total_eval_time / iters_after_start,
                    per_iter,
                    per_img,
                    _fmt_eta(eta) if eta == eta else "?",
                )
            start_data_time = time.perf_counter()
        if "on_end" in callbacks:
            callbacks["on_end"]()

    num_iters = idx + 1
    timed_iters = max(num_iters - num_warmup, 0)
    total_time = time.perf_counter() - start_time
    if timed_iters > 0:
        logger.info(
            "Total inference time: %s (%.6f s / iter per device, %.6f s / img, on %d devices)",
            _fmt_eta(total_time),
            total_time / timed_iters,
            total_time / max(timed_images, 1),
            num_devices,
        )
        logger.info(
            "Total inference pure compute time: %s (%.6f s / iter per device, on %d devices)",
            _fmt_eta(total_compute_time),
            total_compute_time / timed_iters,
            num_devices,
        )

    results = evaluator.evaluate()
    # An evaluator may return None on non-main processes; callers expect a dict.
    if results is None:
        results = {}
    return results
