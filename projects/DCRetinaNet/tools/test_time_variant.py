#!/usr/bin/env python
"""A test-time-only variant of a finished multi-seed sweep (`tools/compare.py`): the same weights, evaluated
with other inference settings (CL-balanced NMS: ``model.cl_nms=True``).

For every finished run of ``--source`` in the sweep, its ``model_final.pth`` is evaluated with the source's
config, the sweep's common overrides, the source's overrides and then the given ``key=value`` overrides,
into ``SWEEP/test_time/NAME/seedS`` (predictions and ``final_results.json``; finished ones are skipped).
Then, with the protocol's statistics (paired differences per seed, 95% t-interval; one seed: a bootstrap
over the validation images), ``SWEEP/test_time/NAME.md`` compares NAME with its source (the effect of the
inference setting alone, on identical weights) and with the sweep's baseline.

    python projects/DCRetinaNet/tools/test_time_variant.py --sweep output/sweeps/dc_shapes \\
        --source iac_dc --name iac_dc_cl model.cl_nms=True
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))

from net_detr2.config import LazyConfig  # noqa: E402
from net_detr2.engine.defaults import FINAL_RESULTS_FILE, evaluate_checkpoint, write_final_results  # noqa: E402
from net_detr2.engine.sweep import flat_metrics  # noqa: E402
from net_detr2.evaluation.comparison import (  # noqa: E402
    compare_runs,
    comparison_markdown,
    default_metrics,
    extra_iou_thresholds,
)
from net_detr2.utils.logger import setup_logger  # noqa: E402


def _final(folder: Path) -> dict | None:
    path = folder / FINAL_RESULTS_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def evaluate(config_file: str, overrides: list[str], checkpoint: Path, output_dir: Path, seed: int) -> None:
    """Evaluate ``checkpoint`` under the config + overrides into ``output_dir`` (+ ``final_results.json``)."""
    cfg = LazyConfig.apply_overrides(
        LazyConfig.load(str(REPO / config_file) if not Path(config_file).is_absolute() else config_file),
        [*overrides, f"train.output_dir={output_dir}", f"train.init_checkpoint={checkpoint}", f"train.seed={seed}"],
    )
    output_dir.mkdir(parents=True, exist_ok=True)
    LazyConfig.save(cfg, str(output_dir / "config.yaml"))
    evaluation = evaluate_checkpoint(cfg, str(checkpoint))
    # a checkpoint's iteration is the last one completed; final_results counts the iterations run
    write_final_results(str(output_dir), evaluation.results, evaluation.iteration + 1, seed)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__)
    ap.add_argument("--sweep", required=True, help="a sweep folder of tools/compare.py")
    ap.add_argument("--source", required=True, help="the sweep variant whose weights are evaluated")
    ap.add_argument("--name", required=True, help="name of the test-time variant")
    ap.add_argument("--seed-list", type=int, nargs="+", help="only these seeds (default: the sweep's)")
    ap.add_argument("--threads", type=int, help="torch threads (default: the sweep's)")
    ap.add_argument("--bootstrap", type=int, default=1000, help="resamples for a single seed (default 1000)")
    ap.add_argument("overrides", nargs="+", metavar="KEY=VALUE", help="the inference settings of the variant")
    args = ap.parse_args(argv)
    sweep = Path(args.sweep)
    spec_file = sweep / "sweep.json"
    if not spec_file.is_file():
        raise SystemExit(f"test_time_variant: {spec_file} not found (not a tools/compare.py sweep folder)")
    spec = json.loads(spec_file.read_text())
    variants = {v["name"]: v for v in spec["variants"]}
    if args.source not in variants:
        raise SystemExit(f"test_time_variant: no variant {args.source!r} in {spec_file} (have {sorted(variants)})")
    source = variants[args.source]
    torch.set_num_threads(args.threads or int(spec["threads"]))
    setup_logger(name="net_detr2")
    seeds = args.seed_list or spec["seeds"]
    out_root = sweep / "test_time" / args.name
    values: dict[str, dict[int, dict[str, float]]] = {spec["baseline"]: {}, args.source: {}, args.name: {}}
    folders: dict[str, Path] = {
        spec["baseline"]: sweep / spec["baseline"],
        args.source: sweep / args.source,
        args.name: out_root,
    }
    for seed in seeds:
        src = sweep / args.source / f"seed{seed}"
        if _final(src) is None:
            print(f"[test_time] {src}: not finished, skipped")
            continue
        out = out_root / f"seed{seed}"
        if _final(out) is None:
            overrides = [*spec["common_overrides"], *source["overrides"], *args.overrides]
            evaluate(source["config_file"], overrides, src / "model_final.pth", out, seed)
        for name, folder in folders.items():
            final = _final(folder / f"seed{seed}")
            if final is not None:
                values[name][seed] = flat_metrics(final["results"])

    def bootstrap(variant: str, seed: int):
        from net_detr2.evaluation.coco_bootstrap import bootstrap_run_pair

        return bootstrap_run_pair(
            str(folders[reference] / f"seed{seed}"),
            str(folders[variant] / f"seed{seed}"),
            num_samples=args.bootstrap,
            extra_iou_thresholds=extra_iou_thresholds(list(values[variant][seed])),
        )

    command = "python projects/DCRetinaNet/tools/test_time_variant.py " + " ".join(shlex.quote(a) for a in argv)
    parts = [f"Command: `{command}`", ""]
    references = [args.source] + ([spec["baseline"]] if spec["baseline"] != args.source else [])
    for reference in references:  # the baseline's own weights: one comparison
        subset = {reference: values[reference], args.name: values[args.name]}
        if not values[reference] or not values[args.name]:
            continue
        comp = compare_runs(subset, reference, default_metrics(subset), bootstrap=bootstrap)
        header = f"### `{args.name}` (`{args.source}` weights, {' '.join(args.overrides)}) vs `{reference}`"
        parts.append(comparison_markdown(comp, header))
    text = "\n".join(parts)
    out_root.parent.mkdir(parents=True, exist_ok=True)
    (out_root.parent / f"{args.name}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
