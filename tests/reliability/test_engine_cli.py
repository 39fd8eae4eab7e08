"""train_net.py's command line: the README's commands as written (flags anywhere), overrides of the wrong type
named with the key and the expected type, ``--eval-only`` without weights refused."""

from __future__ import annotations

import importlib.util
import shlex
from pathlib import Path

import pytest
from _toy import md5s

from net_detr2.engine import default_argument_parser

REPO = Path(__file__).resolve().parents[2]
# what makes the README's shapes commands take seconds: 2 (then 3) iterations of 2 images, no evaluation/pictures
SHORT = ["dataloader.train.total_batch_size=2", "dataloader.evaluator=None", "train.num_vis_images=0"]


def load_train_net():
    spec = importlib.util.spec_from_file_location("train_net", REPO / "train_net.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def readme_train_net_commands() -> list[list[str]]:
    """The single-process ``train_net.py`` commands of the README's "Using it" block, as argument lists."""
    text = (REPO / "README.md").read_text()
    block = text.split("## Using it", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = []
    for line in block.splitlines():
        words = shlex.split(line, comments=True)
        if words[:2] == [".venv/bin/python", "train_net.py"] and "--num-gpus" not in words:
            commands.append(words[2:])
    return commands


def test_readme_commands_run_as_written(tmp_path, monkeypatch):
    """Train, resume (flag after the overrides) and evaluate, as the README writes them; the output folder and the
    config are mapped into this test's folder, and overrides appended to make them short."""
    commands = readme_train_net_commands()
    assert len(commands) == 4, commands  # train, resume, evaluate a file, evaluate the run's last checkpoint
    train, resume, evaluate, evaluate_last = commands
    assert resume.index("--resume") > resume.index("train.output_dir=output/frcnn")  # a flag after the overrides
    monkeypatch.chdir(tmp_path)
    (tmp_path / "configs").symlink_to(REPO / "configs")
    main, parse = load_train_net().main, default_argument_parser().parse_args
    main(parse(train + SHORT + ["train.max_iter=2"]))
    out = tmp_path / "output" / "frcnn"
    assert (out / "last_checkpoint").read_text() == "model_final.pth"
    main(parse(resume + SHORT + ["train.max_iter=3"]))  # continues the run: one more iteration
    log = (out / "log.txt").read_text()
    assert "Resuming from" in log and "at iteration 2" in log
    metrics = [line for line in (out / "metrics.json").read_text().splitlines() if "total_loss" in line]
    assert [int(m.split('"iteration": ')[1].split(",")[0].rstrip("}")) for m in metrics] == [0, 1, 2]
    before = md5s(out)
    assert main(parse(evaluate + SHORT)) == {}  # loads output/frcnn/model_final.pth (no evaluator: no metrics)
    del before["log.txt"]  # (this process' logger keeps writing to it; a separate process would not)
    assert {k: v for k, v in md5s(out).items() if k != "log.txt"} == before  # the run is untouched
    assert main(parse(evaluate_last + SHORT)) == {}  # the checkpoint last_checkpoint names
    assert "Evaluating output/frcnn/model_final.pth" in (out / "log.txt").read_text()
    after = md5s(out)
    assert all(after[k] == before[k] for k in before if k.endswith(".pth") or k == "last_checkpoint")
    assert (tmp_path / "output" / "configs" / "shapes" / "faster_rcnn_R18_FPN" / "config.yaml").exists()


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.max_iter=abc", "train.max_iter expects an integer (the config has 1000), got 'abc'"),
        ("train.max_iter=2.7", "train.max_iter expects an integer (the config has 1000), got 2.7 (a fraction is "),
        ("optimizer.lr=fast", "optimizer.lr expects a number (the config has 0.001), got 'fast'"),
        ("train.seed=abc", "train.seed expects an integer (the config has 0), got 'abc'"),
        ("train.amp.enabled=yes", "train.amp.enabled expects a boolean (True or False)"),
    ],
)
def test_override_of_the_wrong_type_names_the_key_and_type(tmp_path, override, message):
    argv = ["--config-file", str(REPO / "configs/shapes/faster_rcnn_R18_FPN.py"), f"train.output_dir={tmp_path}/o"]
    with pytest.raises(ValueError) as e:
        load_train_net().main(default_argument_parser().parse_args([*argv, override]))
    assert message in str(e.value) and override in str(e.value)
    assert not (tmp_path / "o").exists()  # refused before anything was written


def test_eval_only_without_weights_is_refused_unless_asked(tmp_path):
    argv = ["--config-file", str(REPO / "configs/shapes/faster_rcnn_R18_FPN.py"), "--eval-only"]
    argv += [f"train.output_dir={tmp_path}/o", *SHORT]
    main, parse = load_train_net().main, default_argument_parser().parse_args
    with pytest.raises(ValueError, match=r"--eval-only needs weights: set train\.init_checkpoint=.*--random-weights"):
        main(parse(argv))
    assert not (tmp_path / "o").exists()
    assert main(parse([*argv, "--random-weights"])) == {}
