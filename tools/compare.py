#!/usr/bin/env python
"""Compare variants against a baseline over several seeds, everything else identical.

    python tools/compare.py --output-dir output/sweeps/ia \\
        --baseline configs/shapes/faster_rcnn_R18_FPN.py \\
        --variant ia:projects/InvertedAttention/configs/shapes/ia_faster_rcnn_R18_FPN_shapes.py \\
        --seeds 3 --threads 2 [--jobs 1] [--common train.max_iter=500 ...]

Each of ``--baseline [NAME:]CONFIG [key=value ...]`` and ``--variant NAME:[CONFIG] [key=value ...]``
(repeatable; an empty CONFIG means the baseline's) is trained for every seed by
``train_net.py --config-file CONFIG [--common ...] [its overrides] train.seed=S
train.output_dir=OUT/NAME/seedS`` with ``OMP_NUM_THREADS=--threads``. Runs already finished are skipped,
unfinished ones resumed: rerun the same command after an interruption, or with more ``--seeds`` / another
``--variant`` to extend the sweep. Then, in OUT: ``results.md`` and ``results.json`` (mean +- std per
metric and variant; per variant the paired per-seed differences to the baseline with a 95% t-interval, or
with one seed a bootstrap over the validation images, and a verdict per metric: better / worse / within
noise) and ``comparison.png``. ``--report-only`` rebuilds those from the runs in OUT (``--seed-list`` there
restricts the report to those seeds; with one, the interval comes from a bootstrap over images).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from net_detr2.engine.sweep import Sweep, SweepSpecError, Variant, parse_variant  # noqa: E402
from net_detr2.evaluation.comparison import (  # noqa: E402
    compare_runs,
    comparison_json,
    comparison_markdown,
    extra_iou_thresholds,
    plot_comparison,
)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--output-dir", required=True, help="the sweep folder (runs, logs, results)")
    ap.add_argument("--baseline", nargs="+", metavar="ARG", help="[NAME:]CONFIG [key=value ...] (name: baseline)")
    ap.add_argument(
        "--variant", nargs="+", action="append", default=[], metavar="ARG", help="NAME:[CONFIG] [key=value ...]"
    )
    ap.add_argument("--common", nargs="+", default=[], metavar="KEY=VALUE", help="overrides for every run")
    seeds = ap.add_mutually_exclusive_group()
    seeds.add_argument("--seeds", type=int, default=3, help="seeds 0 .. N-1 (default 3)")
    seeds.add_argument("--seed-list", type=int, nargs="+", help="explicit seeds")
    ap.add_argument("--jobs", type=int, default=1, help="runs at a time (default 1)")
    ap.add_argument(
        "--threads",
        type=int,
        default=int(os.environ.get("OMP_NUM_THREADS", "1") or 1),
        help="OMP_NUM_THREADS of every run (default: this environment's OMP_NUM_THREADS, else 1)",
    )
    ap.add_argument("--train-script", default=str(REPO / "train_net.py"), help="the training entry point")
    ap.add_argument("--bootstrap", type=int, default=1000, help="resamples for a single seed pair (default 1000)")
    ap.add_argument("--per-category", action="store_true", help="also compare the per-category APs")
    ap.add_argument("--metrics", nargs="+", help="compare only these metrics")
    ap.add_argument(
        "--report-only", action="store_true", help="no training: rebuild the report from OUT (of --seed-list only)"
    )
    ap.add_argument("--dry-run", action="store_true", help="print the run commands and stop")
    return ap


def sweep_from_args(args) -> Sweep:
    seeds = args.seed_list if args.seed_list else list(range(args.seeds))
    if args.report_only:
        spec_file = Path(args.output_dir) / "sweep.json"
        if not spec_file.is_file():
            raise SweepSpecError(f"--report-only: {spec_file} not found (no sweep ran in {args.output_dir})")
        spec = json.loads(spec_file.read_text())
        variants = [Variant(v["name"], v["config_file"], tuple(v["overrides"])) for v in spec["variants"]]
        base = [v for v in variants if v.name == spec["baseline"]]
        return Sweep(
            Path(args.output_dir),
            base + [v for v in variants if v.name != spec["baseline"]],
            args.seed_list or spec["seeds"],
            tuple(spec["common_overrides"]),
            spec["threads"],
            args.train_script,
        )
    if not args.baseline:
        raise SweepSpecError("--baseline is required (unless --report-only)")
    baseline = parse_variant(args.baseline, default_name="baseline")
    variants = [parse_variant(v, default_config=baseline.config_file) for v in args.variant]
    if not variants:
        raise SweepSpecError("give at least one --variant to compare with the baseline")
    return Sweep(
        Path(args.output_dir), [baseline, *variants], seeds, tuple(args.common), args.threads, args.train_script
    )


def report(sweep: Sweep, args, command: str) -> tuple[Path, Path, Path]:
    values = sweep.collect()
    base = sweep.baseline.name

    def bootstrap(variant: str, seed: int):
        from net_detr2.evaluation.coco_bootstrap import bootstrap_run_pair

        thresholds = extra_iou_thresholds(list(values[base][seed]))
        return bootstrap_run_pair(
            str(sweep.output_dir / base / f"seed{seed}"),
            str(sweep.output_dir / variant / f"seed{seed}"),
            num_samples=args.bootstrap,
            extra_iou_thresholds=thresholds,
        )

    metrics = args.metrics
    if metrics is None:
        from net_detr2.evaluation.comparison import default_metrics

        metrics = default_metrics({k: v for k, v in values.items() if v}, per_category=args.per_category)
    comp = compare_runs(
        {k: v for k, v in values.items() if v or k == base},
        base,
        metrics,
        bootstrap=bootstrap if args.bootstrap > 0 else None,
    )
    records = sweep.run_records()
    lines = [f"## Sweep `{sweep.output_dir}`", "", f"Command: `{command}`", ""]
    for v in sweep.variants:
        role = "baseline" if v.name == base else "variant"
        over = " ".join(v.overrides)
        times = [r["wall_s"] for k, r in records.items() if k.startswith(f"{v.name}/")]
        cost = f"; mean wall time per run {sum(times) / len(times):.0f} s" if times else ""
        lines.append(f"- {role} `{v.name}`: `{v.config_file}`{f' `{over}`' if over else ''}{cost}")
    codes = sorted({r.get("code", "unknown") for r in records.values()})
    lines.append(
        f"- every run: `{' '.join(sweep.common_overrides) or '(no common overrides)'}`, "
        f"OMP_NUM_THREADS={sweep.threads}, code {', '.join(codes) or 'not recorded'}"
    )
    if len(codes) > 1:
        per = {c: sorted(k for k, r in records.items() if r.get("code") == c) for c in codes}
        lines.append(
            "- **warning: the runs were made with different code** (git commit + digest of uncommitted "
            "changes): " + "; ".join(f"{c}: {', '.join(keys)}" for c, keys in per.items())
        )
    total = len(sweep.runs())
    done = sum(len(v) for v in values.values())
    if done < total:
        lines.append(f"- **incomplete**: {done} of {total} runs finished")
    md = comparison_markdown(comp, "\n".join(lines))
    md_path, json_path, png_path = (sweep.output_dir / n for n in ("results.md", "results.json", "comparison.png"))
    md_path.write_text(md)
    data = comparison_json(comp)
    data.update(command=command, run_records=records, complete=done == total)
    json_path.write_text(json.dumps(data, indent=1))
    plot_comparison(comp, str(png_path), title=str(sweep.output_dir))
    return md_path, json_path, png_path


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    command = "python tools/compare.py " + " ".join(shlex.quote(a) for a in argv)
    try:
        sweep = sweep_from_args(args)
        if args.dry_run:
            for r in sweep.runs():
                state = "done" if r.is_done() else "to do"
                print(
                    f"[{state}] OMP_NUM_THREADS={sweep.threads} "
                    + " ".join(r.command(sys.executable, sweep.train_script, sweep.common_overrides))
                )
            return 0
        failed = []
        if not args.report_only:
            sweep.resolve_configs()
            sweep.check_and_save_spec()
            failed = sweep.run(jobs=args.jobs)
    except SweepSpecError as e:
        print(f"compare.py: error: {e}", file=sys.stderr)
        return 2
    md, js, png = report(sweep, args, command)
    print(md.read_text())
    print(f"[sweep] wrote {md}, {js}, {png}")
    if failed:
        print(f"[sweep] {len(failed)} run(s) failed: {', '.join(r.key for r in failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
