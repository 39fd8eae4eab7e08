"""detectron2 model-zoo configs (tests/fixtures/d2_model_zoo, written from the documented format) converted by
tools/convert_d2_config.py: every key carried over or reported, the result trains through train_net.py, and
the YAML reader refuses what it must refuse (malformed tuples, crafted expressions) with the file and key."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch

from net_detr2.compat import convert_d2_config
from net_detr2.compat.d2_yaml import load_d2_config, safe_eval_expression
from net_detr2.config import LazyConfig, instantiate

REPO = Path(__file__).resolve().parents[1]
ZOO = REPO / "tests" / "fixtures" / "d2_model_zoo"


def _module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _convert(rel: str, tmp_path: Path, *opts: str) -> Path:
    out = tmp_path / (Path(rel).stem + ".py")
    _module(REPO / "tools" / "convert_d2_config.py", "convert_d2_config").main([str(ZOO / rel), str(out), *opts])
    return out


# (file, LR, batch, steps, max_iter, warm-up iterations, classes, train sets, test set)
EXPECTED = {
    "COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml": (0.02, 16, [60000, 80000], 90000, 1000, 80, ["coco_2017_train"]),
    "COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml": (0.02, 16, [210000, 250000], 270000, 1000, 80, ["coco_2017_train"]),
    "COCO-Detection/faster_rcnn_R_101_FPN_3x.yaml": (0.02, 16, [210000, 250000], 270000, 1000, 80, ["coco_2017_train"]),
    "COCO-Detection/faster_rcnn_X_101_32x8d_FPN_3x.yaml": (
        0.02,
        16,
        [210000, 250000],
        270000,
        1000,
        80,
        ["coco_2017_train"],
    ),
    "COCO-Detection/retinanet_R_50_FPN_1x.yaml": (0.01, 16, [60000, 80000], 90000, 1000, 80, ["coco_2017_train"]),
    "COCO-Detection/retinanet_R_50_FPN_3x.yaml": (0.01, 16, [210000, 250000], 270000, 1000, 80, ["coco_2017_train"]),
    "PascalVOC-Detection/faster_rcnn_R_50_FPN.yaml": (
        0.02,
        16,
        [12000, 16000],
        18000,
        100,
        20,
        ["voc_2007_trainval", "voc_2012_trainval"],
    ),
}


@pytest.mark.parametrize("rel", sorted(EXPECTED))
def test_model_zoo_config_converts_whole_experiment(rel, tmp_path, capsys):
    lr, batch, steps, max_iter, warmup, classes, train_sets = EXPECTED[rel]
    cfg = LazyConfig.load(str(_convert(rel, tmp_path)))
    warnings = capsys.readouterr().err
    assert set(cfg) == {"model", "dataloader", "optimizer", "lr_multiplier", "train", "input"}
    # solver and schedule
    assert cfg.optimizer.lr == lr and cfg.optimizer.momentum == 0.9 and cfg.optimizer.weight_decay == 1e-4
    assert cfg.lr_multiplier.scheduler.milestones == steps and cfg.lr_multiplier.scheduler.num_updates == max_iter
    assert cfg.lr_multiplier.warmup_length == pytest.approx(warmup / max_iter)
    assert cfg.train.max_iter == max_iter and cfg.train.checkpointer.period == 5000
    # weights: a model-zoo address becomes a local file, and the warning says where to put it
    weights = "X-101-32x8d.pkl" if "X_101" in rel else "R-101.pkl" if "R_101" in rel else "R-50.pkl"
    assert cfg.train.init_checkpoint == f"pretrained/{weights}"
    assert "downloads nothing" in warnings
    # input, datasets, loader
    train_loader = cfg.dataloader.train
    assert train_loader.total_batch_size == batch and train_loader.num_workers == 4
    assert list(train_loader.dataset.names) == train_sets
    resize = train_loader.mapper.augmentations[0]
    first = 480 if "VOC" in rel else 640
    assert list(resize.short_edge_length) == list(range(first, 801, 32)) and resize.sample_style == "choice"
    assert cfg.dataloader.test.mapper.augmentations[0].short_edge_length == 800
    assert cfg.dataloader.test.dataset.names == ("voc_2007_test" if "VOC" in rel else "coco_2017_val")
    depth = 101 if "101" in rel else 50
    bottom_up = cfg.model.backbone.bottom_up
    assert bottom_up.depth == depth and bottom_up.num_groups == (32 if "X_101" in rel else 1)
    assert bottom_up.stride_in_1x1 == ("X_101" not in rel) and bottom_up.norm == "FrozenBN"
    if depth != 50:
        return  # building the R50 variants below checks the model tree; R101/X101 differ only in these numbers
    # the model builds, with the class count of the config in every head
    with torch.device("meta"):
        model = instantiate(cfg.model)
    if "retinanet" in rel:
        assert model.head.cls_score.out_channels == 9 * classes
    else:
        assert model.roi_heads.box_predictor.cls_score.out_features == classes + 1
        assert "MODEL.ROI_MASK_HEAD.{NAME, NUM_CONV, POOLER_RESOLUTION}" in warnings  # reported once, not dropped
        assert warnings.count("ROI_MASK_HEAD") == 1
    assert sum(1 for n, _ in model.backbone.bottom_up.named_children() if n.startswith("res")) == 4
    assert sum(len(getattr(model.backbone.bottom_up, f"res{k}")) for k in range(2, 6)) == 16  # R50's blocks


def test_c4_configs_stop_with_a_clear_error(tmp_path, capsys):
    for rel in ("COCO-Detection/faster_rcnn_R_50_C4_1x.yaml", "PascalVOC-Detection/faster_rcnn_R_50_C4.yaml"):
        with pytest.raises(SystemExit):
            _convert(rel, tmp_path)
        err = capsys.readouterr().err
        assert "Base-RCNN-C4.yaml: MODEL.ROI_HEADS.NAME = 'Res5ROIHeads' is not supported" in err
        assert "use the FPN variant" in err
        assert not (tmp_path / (Path(rel).stem + ".py")).exists()


@pytest.mark.parametrize(
    "rel,num_classes_key",
    [
        ("COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml", "model.roi_heads.num_classes"),
        ("COCO-Detection/retinanet_R_50_FPN_1x.yaml", "model.num_classes"),
    ],
)
def test_converted_model_zoo_config_trains_on_shapes(rel, num_classes_key, tmp_path):
    """The converted file, unedited, through train_net.py: only dataset names and sizes are overridden."""
    config = _convert(rel, tmp_path)
    out = tmp_path / "out"
    train_net = _module(REPO / "train_net.py", "train_net")
    args = train_net.default_argument_parser().parse_args(
        [
            "--config-file",
            str(config),
            f"train.output_dir={out}",
            "train.max_iter=2",
            "train.init_checkpoint=",  # no ImageNet weights here
            "train.seed=0",
            "train.tensorboard=False",
            "dataloader.train.dataset.names=shapes_train",
            "dataloader.test.dataset.names=shapes_val",
            "dataloader.evaluator=None",  # 2 iterations: nothing to evaluate
            f"{num_classes_key}=6",
            "dataloader.train.total_batch_size=2",
            "dataloader.train.num_workers=0",
            "dataloader.train.mapper.augmentations.0.short_edge_length=[128]",
            "dataloader.train.mapper.augmentations.0.max_size=192",
        ]
    )
    train_net.main(args)
    records = [json.loads(line) for line in (out / "metrics.json").read_text().splitlines()]
    losses = [r["total_loss"] for r in records if "total_loss" in r]
    assert records[-1]["iteration"] == 1 and losses and all(math.isfinite(x) for x in losses)
    state = torch.load(out / "model_final.pth", weights_only=True)
    assert state["iteration"] == 1
    assert (
        "frozen BatchNorm layers (e.g. backbone.bottom_up.stem.conv1.norm) have no pretrained"
        in (out / "log.txt").read_text()
    )


def test_every_key_not_carried_over_is_reported_once(tmp_path):
    (tmp_path / "base.yaml").write_text(
        "MODEL: {META_ARCHITECTURE: RetinaNet, BACKBONE: {NAME: build_retinanet_resnet_fpn_backbone},\n"
        "        RESNETS: {OUT_FEATURES: [res3, res4, res5]}, FPN: {IN_FEATURES: [res3, res4, res5]},\n"
        "        RPN: {NMS_THRESH: 0.6, POST_NMS_TOPK_TEST: 500}}\n"
        "TEST: {AUG: {ENABLED: True}}\n"
        "SOLVER: {REFERENCE_WORLD_SIZE: 8, CLIP_GRADIENTS: {ENABLED: True, CLIP_TYPE: value}}\n"
    )
    text = "_BASE_: base.yaml\nSOLVER: {MY_OPTION: 3}\nMODEL: {WEIGHTS: ''}\n"
    conversion = convert_d2_config(text, base_dir=str(tmp_path), source="top.yaml")
    lines = conversion.not_carried
    assert len(lines) == len(set(lines))
    assert any(line.startswith("SOLVER.MY_OPTION = 3 (set in top.yaml)") for line in lines)
    assert any(line.startswith(f"TEST.AUG.ENABLED = True (set in {tmp_path / 'base.yaml'})") for line in lines)
    assert any(line.startswith("SOLVER.REFERENCE_WORLD_SIZE = 8") for line in lines)
    assert any(line.startswith("SOLVER.CLIP_GRADIENTS.ENABLED = True") for line in lines)
    assert "MODEL.RPN.{NMS_THRESH, POST_NMS_TOPK_TEST}: RetinaNet has no RPN or RoI heads" in lines
    notes = " ".join(conversion.notes)
    assert "CLIP_TYPE = 'value'" in notes and "MODEL.RESNETS.NORM = 'FrozenBN' but MODEL.WEIGHTS is empty" in notes
    assert conversion.config.train.clip_grad is None and conversion.config.train.init_checkpoint == ""


@pytest.mark.parametrize("device", ["cuda", "cpu"])
def test_amp_converts_to_cuda_float16(device):
    """detectron2's SOLVER.AMP is CUDA fp16 with a gradient scaler: train.amp.dtype 'float16', and a note where
    the converted config's device cannot run it."""
    retinanet = "MODEL: {META_ARCHITECTURE: RetinaNet, BACKBONE: {NAME: build_retinanet_resnet_fpn_backbone}, "
    retinanet += "RESNETS: {OUT_FEATURES: [res3, res4, res5]}, FPN: {IN_FEATURES: [res3, res4, res5]}, "
    conversion = convert_d2_config(retinanet + f"DEVICE: {device}}}\nSOLVER: {{AMP: {{ENABLED: True}}}}\n")
    assert dict(conversion.config.train.amp) == {"enabled": True, "dtype": "float16"}
    notes = [n for n in conversion.notes if n.startswith("SOLVER.AMP.ENABLED")]
    if device == "cuda":
        assert notes == []
    else:
        assert len(notes) == 1 and "train.device = 'cpu'" in notes[0] and "train.amp.dtype='bfloat16'" in notes[0]
    plain = convert_d2_config(retinanet + "}\n").config.train.amp
    assert dict(plain) == {"enabled": False, "dtype": "bfloat16"}  # off: configs/common/train.py's setting


def test_detectron2_overrides_and_full_model_clipping():
    conversion = convert_d2_config(
        "SOLVER: {CLIP_GRADIENTS: {ENABLED: True, CLIP_TYPE: full_model, CLIP_VALUE: 5.0}}\n"
        "MODEL: {BACKBONE: {NAME: build_resnet_fpn_backbone}, RESNETS: {OUT_FEATURES: [res4, res5]},\n"
        "        FPN: {IN_FEATURES: [res4, res5]}, RPN: {IN_FEATURES: [p4, p5, p6]},\n"
        "        ROI_HEADS: {NAME: StandardROIHeads, IN_FEATURES: [p4, p5]},\n"
        "        ROI_BOX_HEAD: {NAME: FastRCNNConvFCHead, NUM_FC: 2}}\n",
        overrides=["SOLVER.IMS_PER_BATCH", "2", "INPUT.MIN_SIZE_TRAIN", "(320, 352)", "SOLVER.MAX_ITER", "500"],
        output_dir="output/mine",
    )
    cfg = conversion.config
    assert cfg.train.clip_grad == {"max_norm": 5.0, "norm_type": 2.0}
    assert cfg.dataloader.train.total_batch_size == 2 and cfg.train.output_dir == "output/mine"
    assert list(cfg.dataloader.train.mapper.augmentations[0].short_edge_length) == [320, 352]
    # the default steps (30000,) lie beyond MAX_ITER 500: left out as detectron2 does, and said so;
    # WARMUP_ITERS 1000 >= MAX_ITER: warm-up over the whole run
    assert cfg.lr_multiplier.scheduler.milestones == [] and cfg.lr_multiplier.warmup_length == 1.0
    assert any("SOLVER.STEPS [30000]" in n for n in conversion.notes)
    multiplier = instantiate(cfg.lr_multiplier)
    assert multiplier(0.0) == pytest.approx(0.001) and multiplier(0.5) == pytest.approx(0.5005)


@pytest.mark.parametrize(
    "yaml_text,message",
    [
        ("INPUT: {MIN_SIZE_TRAIN: '(640, 672,'}\n", "base.yaml: INPUT.MIN_SIZE_TRAIN: cannot parse"),
        ("INPUT: {MIN_SIZE_TRAIN: '(" + "1, " * 900 + "1)'}\n", "base.yaml: INPUT.MIN_SIZE_TRAIN: value of 2703"),
        ("INPUT: {MIN_SIZE_TRAIN: '(640, 2 ** 10)'}\n", "base.yaml: INPUT.MIN_SIZE_TRAIN: '(640, 2 ** 10)' is not a"),
        ("SOLVER: {BASE_LR: fast}\n", "base.yaml: SOLVER.BASE_LR = 'fast' is not a finite number"),
        ("SOLVER: {MAX_ITER: 2.5}\n", "base.yaml: SOLVER.MAX_ITER = 2.5 is not an integer"),
    ],
    ids=["malformed", "too-long", "not-literal", "not-number", "not-integer"],
)
def test_bad_values_name_the_file_and_key(tmp_path, yaml_text, message):
    (tmp_path / "base.yaml").write_text(f"_BASE_: {ZOO / 'Base-RCNN-FPN.yaml'}\n{yaml_text}")
    with pytest.raises(ValueError) as e:
        convert_d2_config("_BASE_: base.yaml\n", base_dir=str(tmp_path), source="top.yaml")
    assert str(e.value).startswith(str(tmp_path / message.split(":")[0])) and message.split(": ", 1)[1] in str(e.value)


def test_tuple_strings_are_literals():
    c = load_d2_config("INPUT: {MIN_SIZE_TRAIN: '(640, 672)'}\nDATASETS: {TRAIN: \"('a', 'b')\"}\nOUTPUT_DIR: ./o\n")
    assert c("INPUT.MIN_SIZE_TRAIN") == (640, 672) and c("DATASETS.TRAIN") == ("a", "b") and c("OUTPUT_DIR") == "./o"


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "expr,message",
    [
        ("((9 ** 64) ** 64) ** 64", "has more than 512 bits"),
        ("[[[0 for a in L] for b in L] for c in L]".replace("L", "[" + "0," * 300 + "0]"), "evaluation steps"),
        ("[0] * 10", "arithmetic needs two numbers"),
        ("(10 ** 60) * (10 ** 60) * (10 ** 60)", "more than 512 bits"),
        ("x" * 3000, "longer than 2000"),
        ("1.0e308 * 10", "not finite"),
    ],
    ids=["power-tower", "nested-loops", "list-repeat", "big-product", "too-long", "overflow"],
)
def test_crafted_expressions_are_refused_quickly(expr, message):
    with pytest.raises(ValueError, match=message):
        safe_eval_expression(expr, "f.yaml: MODEL.ANCHOR_GENERATOR.SIZES")


def test_expression_values():
    sizes = safe_eval_expression("[[x, x * 2**(1.0/3), x * 2**(2.0/3) ] for x in [32, 64]]", "w")
    assert sizes[1] == pytest.approx([64, 64 * 2 ** (1 / 3), 64 * 2 ** (2 / 3)])
    assert safe_eval_expression("[a * b for a in [1, 2] for b in (10, 20)]", "w") == [10, 20, 20, 40]


@pytest.mark.skipif(not (REPO.parent / "shared" / "reference").is_dir(), reason="detectron2 reference data absent")
def test_full_dump_reports_only_components_the_model_lacks():
    """A cfg.dump() lists every key; those of switched-off features (crop, clipping, test-time augmentation,
    precise BN, ...) change nothing and are not reported, the sections of absent heads are, one line each."""
    rec = torch.load(REPO.parent / "shared" / "reference" / "parity_frcnn_r50_fpn.pt", weights_only=True)
    lines = convert_d2_config(rec["config"], source="dump.yaml").not_carried
    sections = [line.split(".{")[0] for line in lines]
    assert sections == [
        "MODEL.PANOPTIC_FPN",
        "MODEL.RETINANET",
        "MODEL.ROI_BOX_CASCADE_HEAD",
        "MODEL.ROI_KEYPOINT_HEAD",
        "MODEL.ROI_MASK_HEAD",
        "MODEL.SEM_SEG_HEAD",
    ]
