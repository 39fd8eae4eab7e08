"""``net-detr2 <command> ...``: one entry point for the scripts of a net_detr2 checkout (like ``yolo`` / ``mim``).

Each command runs a script of the checkout with the remaining arguments, exactly as
``python <script> <arguments>`` would; ``net-detr2 <command> -h`` prints that script's help.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

# command -> (script relative to the checkout, arguments put before the user's, one-line help)
COMMANDS: dict[str, tuple[str, list[str], str]] = {
    "train": ("train_net.py", [], "train a LazyConfig (train_net.py)"),
    "eval": ("train_net.py", ["--eval-only"], "evaluate train.init_checkpoint (train_net.py --eval-only)"),
    "demo": ("demo.py", [], "draw a model's detections on images, folders or dataset splits"),
    "convert": ("tools/convert_d2_config.py", [], "detectron2 YAML config -> LazyConfig file"),
    "analyze": ("tools/analyze_model.py", [], "parameters, FLOPs, activations, per-module table"),
    "benchmark": ("tools/benchmark.py", [], "data-loader throughput, training it/s, inference latency"),
    "browse": ("tools/browse_dataset.py", [], "draw ground truth; per-class and box-size statistics"),
    "visualize": ("tools/visualize_json_results.py", [], "draw coco_instances_results.json beside ground truth"),
    "errors": ("tools/error_analysis.py", [], "precision-recall curves and confusion matrix of an evaluation"),
    "export": ("tools/export_model.py", [], "TorchScript / ONNX of the inference graph"),
    "compare": ("tools/compare.py", [], "train a baseline and variants for several seeds; paired differences"),
}


def checkout_root() -> Path:
    """The source checkout this package was imported from (an editable install points there)."""
    return Path(__file__).resolve().parents[1]


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: net-detr2 <command> [arguments...]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, _, help_) in COMMANDS.items()]
    lines += ["", "net-detr2 <command> -h shows the arguments of that command."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return
    command, args = argv[0], argv[1:]
    if command not in COMMANDS:
        import difflib

        near = difflib.get_close_matches(command, COMMANDS, n=1)
        hint = f"; did you mean '{near[0]}'?" if near else ""
        sys.exit(f"net-detr2: unknown command {command!r}{hint}\n\n{_usage()}")
    script, prefix, _ = COMMANDS[command]
    path = checkout_root() / script
    if not path.is_file():
        sys.exit(
            f"net-detr2 {command}: {path} not found. The commands run the scripts of a source checkout: "
            "install net_detr2 from one in editable mode (`make setup`, or pip install -e <checkout>)."
        )
    sys.argv = [str(path), *prefix, *args]
    # the scripts import their siblings as the checkout's root would be on the path when run directly
    sys.path.insert(0, str(path.parent))
    runpy.run_path(str(path), run_name="__main__")


if __name__ == "__main__":
    main()
