"""The three-stage LazyConfigs: they load, chain their checkpoints, and the shapes ones build and train."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import pytest
import torch

from net_detr2.config import LazyConfig, instantiate
from net_detr2.data import DatasetMapper
from net_detr2.data.datasets.shapes import render_shapes_image
from net_detr2.layers import FrozenBatchNorm2d
from net_detr2.solver import freeze_parameters
from net_detr2_projects.EFPN.efpn import TeacherImageMapper

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
DATASETS = ["shapes", "aquarium", "coco_R50", "tt100k_R50"]


def _load(name):
    return LazyConfig.load(str(CONFIGS / f"{name}.py"))


def _stages(dataset):
    return [_load(f"{dataset}_stage{i}_{kind}") for i, kind in [(1, "fpn"), (2, "distill"), (3, "p2head")]]


@pytest.mark.parametrize("dataset", DATASETS)
def test_stages_chain_their_checkpoints(dataset):
    s1, s2, s3 = _stages(dataset)
    norm = os.path.normpath
    assert norm(s2.train.init_checkpoint) == norm(os.path.join(s1.train.output_dir, "model_final.pth"))
    assert norm(s3.train.init_checkpoint) == norm(os.path.join(s2.train.output_dir, "model_final.pth"))
    assert len({norm(s.train.output_dir) for s in (s1, s2, s3)}) == 3
    assert s1.train.get("trainable_params") is None
    assert s2.train.trainable_params == [r"backbone\.(c2_prime_lateral|ftt|p2_prime_output)\."]
    assert s3.train.trainable_params == [r"roi_heads\.p2_box_(head|predictor)\."]
    assert s2.dataloader.train.mapper._target_ is TeacherImageMapper and s2.dataloader.train.mapper.teacher_scale == 2
    assert s3.dataloader.train.mapper._target_ is DatasetMapper and "teacher_scale" not in s3.dataloader.train.mapper
    assert s2.model.distillation and not s2.model.detection_losses
    assert not s3.model.distillation and s3.model.roi_heads.p2_ohem and not s3.model.roi_heads.train_base_head
    threshold = {"shapes": 56.0, "aquarium": 112.0, "coco_R50": 112.0, "tt100k_R50": 56.0}[dataset]
    assert s2.model.roi_heads.small_roi_threshold == s3.model.roi_heads.small_roi_threshold == threshold


@pytest.mark.parametrize("dataset", DATASETS)
def test_stage_optimizers_keep_stage_one_s(dataset):
    """Stages 2 and 3 fine-tune a trained detector: stage 1's optimizer, at most its LR, at least a tenth of it
    (issue 21: an AdamW stage 3 at 10x stage 1's LR lost small-object AP and made the distillation diverge)."""
    s1, s2, s3 = _stages(dataset)
    for stage, cfg in [(2, s2), (3, s3)]:
        opt, ref = cfg.optimizer, s1.optimizer
        assert opt._target_ is ref._target_, f"{dataset} stage {stage}: {opt._target_} vs stage 1's {ref._target_}"
        assert ref.lr / 10 <= opt.lr <= ref.lr, f"{dataset} stage {stage}: LR {opt.lr} vs stage 1's {ref.lr}"
        assert {k: v for k, v in opt.items() if k not in ("lr", "params")} == {
            k: v for k, v in ref.items() if k not in ("lr", "params")
        }
        multipliers = instantiate(cfg.lr_multiplier)
        assert max(multipliers(t / 100) for t in range(100)) <= 1.0


def test_shapes_stage_optimizers_train_the_stage_parameters_at_stage_one_lr():
    s1 = _load("shapes_stage1_fpn")
    for name in ("shapes_stage2_distill", "shapes_stage3_p2head"):
        cfg = _load(name)
        model = instantiate(cfg.model)
        freeze_parameters(model, cfg.train.trainable_params)
        cfg.optimizer.params.model = model
        opt = instantiate(cfg.optimizer)
        trainable = {id(p) for p in model.parameters() if p.requires_grad}
        assert {id(p) for g in opt.param_groups for p in g["params"]} == trainable
        assert {g["lr"] for g in opt.param_groups} == {s1.optimizer.lr}


def _randomize_bn(model):
    g = torch.Generator().manual_seed(3)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)


def test_shapes_stage2_loads_the_stage1_checkpoint_and_keeps_its_pyramid():
    stage1 = instantiate(_load("shapes_stage1_fpn").model).eval()
    _randomize_bn(stage1)
    cfg = _load("shapes_stage2_distill")
    efpn = instantiate(cfg.model).eval()
    # BN of the from-scratch backbone is frozen for stages 2/3 (eval-mode BN, loads the same entries).
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in efpn.backbone.bottom_up.modules())
    assert any(isinstance(m, FrozenBatchNorm2d) for m in efpn.backbone.bottom_up.modules())
    result = efpn.load_state_dict(stage1.state_dict(), strict=False)
    assert result.unexpected_keys == [] or all(k.endswith("num_batches_tracked") for k in result.unexpected_keys)
    assert result.missing_keys and all(
        k.startswith(("backbone.c2_prime_lateral", "backbone.ftt", "backbone.p2_prime_output"))
        for k in result.missing_keys
    )
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        expected = stage1.backbone(x)
        got = efpn.backbone(x)
    for k in expected:
        torch.testing.assert_close(got[k], expected[k], rtol=1e-4, atol=1e-4)
    assert got["p2_prime"].shape[-2:] == (32, 48)
    torch.testing.assert_close(
        efpn.roi_heads.p2_box_predictor.cls_score.weight, stage1.roi_heads.box_predictor.cls_score.weight
    )


def test_shapes_stage2_step_with_the_real_mapper(tmp_path):
    cfg = _load("shapes_stage2_distill")
    img, objects = render_shapes_image(7)
    path = str(tmp_path / "img.png")
    cv2.imwrite(path, img)
    record = {
        "file_name": path,
        "height": img.shape[0],
        "width": img.shape[1],
        "image_id": 0,
        "annotations": [{"bbox": o["bbox"], "bbox_mode": 0, "category_id": o["category_id"]} for o in objects],
    }
    mapper = instantiate(cfg.dataloader.train.mapper)
    batch = [mapper(record)]
    assert batch[0]["image_2x"].shape[-2:] == tuple(2 * s for s in batch[0]["image"].shape[-2:])
    model = instantiate(cfg.model).train()
    freeze_parameters(model, cfg.train.trainable_params)
    frozen = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("backbone.ftt")}
    losses = model(batch)
    assert set(losses) == {"loss_distill_p2", "loss_distill_p3"}
    sum(losses.values()).backward()
    assert model.backbone.ftt.upsample.conv.weight.grad.abs().sum() > 0
    assert all(p.grad is None for n, p in model.named_parameters() if not p.requires_grad)
    for k, v in model.state_dict().items():  # a forward in train mode moved no statistics
        if k in frozen:
            assert torch.equal(v, frozen[k]), k


def test_set_stage_rejects_unknown_stage():
    from net_detr2_projects.EFPN.efpn import set_stage

    cfg = _load("shapes_stage1_fpn")
    with pytest.raises(ValueError, match="stage must be 2 or 3"):
        set_stage(1, model=cfg.model, dataloader=cfg.dataloader, train=cfg.train)


@pytest.mark.parametrize("name", sorted(p.stem for p in CONFIGS.glob("*.py")))
def test_every_config_loads(name):
    cfg = _load(name)
    assert {"model", "dataloader", "train", "optimizer", "lr_multiplier"} <= set(cfg)


@pytest.mark.parametrize(
    "name, teacher_outputs, layer, stride",
    [
        ("tt100k_R50_oracle_p2_2x", {"p2": "p2_prime"}, None, None),
        ("tt100k_R50_table5_p3", None, "p3", 8),
        ("tt100k_R50_table5_p3_2x", {"p3": "p3_2x"}, "p3_2x", 4),
        ("tt100k_R50_table5_p3_prime", None, "p3_prime", 4),
    ],
)
def test_table3_oracle_and_table5_configs_build(name, teacher_outputs, layer, stride):
    cfg = _load(name)
    model = instantiate(cfg.model)
    assert model.teacher_outputs == (teacher_outputs or {})
    assert model.roi_heads.detection_layer == layer
    if layer is not None:
        assert model.roi_heads.detection_layer_pooler.level_poolers[0].spatial_scale == 1.0 / stride
    # a test-time teacher needs the 2x image at test time
    assert (cfg.dataloader.test.mapper._target_ is TeacherImageMapper) == bool(teacher_outputs)
    start = "stage1" if "oracle" in name else "stage2"
    assert cfg.train.init_checkpoint.endswith(f"tt100k_R50/{start}/model_final.pth")


def test_tt100k_protocol_label_sets_and_balancing(tmp_path):
    from net_detr2.data import DatasetCatalog, MetadataCatalog
    from net_detr2.data.datasets.tt100k import convert_tt100k_to_coco, register_tt100k
    from net_detr2.evaluation import TT100KEvaluator
    from net_detr2_projects.EFPN.efpn import EvaluatedClassesOnly, tt100k_protocol

    common = Path(__file__).resolve().parents[3] / "configs" / "common"
    for label_set, num_classes, train_name in [("45", 45, "tt100k_train"), ("45+other", 46, "tt100k_train_other")]:
        cfg = LazyConfig.load(str(common / "data" / "tt100k.py"))
        cfg.model = LazyConfig.load(str(common / "models" / "faster_rcnn_fpn.py")).model
        assert "sampler" not in cfg.dataloader.train and len(cfg.dataloader.train.mapper.augmentations) == 1
        tt100k_protocol(model=cfg.model, dataloader=cfg.dataloader, label_set=label_set, balance_instances=3)
        assert cfg.model.roi_heads.num_classes == num_classes
        assert cfg.dataloader.train.dataset.names == train_name
        evaluator = cfg.dataloader.evaluator
        wrapped = evaluator._target_ is EvaluatedClassesOnly
        assert wrapped == (label_set == "45+other")
        inner = evaluator.evaluator if wrapped else evaluator
        assert inner._target_ is TT100KEvaluator and inner.dataset_name == "tt100k_test"
        names = [a._target_.__name__ for a in cfg.dataloader.train.mapper.augmentations]
        assert names == ["ResizeShortestEdge", "RandomApply", "RandomBrightness", "RandomContrast", "RandomSaturation"]

    # the balancing sampler on a fixture: "i2" has 1 instance, "pl80" 3, "other" signs 2 -> target 3
    ann = {"imgs": {}}
    for i, cats in enumerate([["i2", "pl80"], ["pl80"], ["pl80", "zz"], ["zz"]]):
        box = {"xmin": 1, "ymin": 1, "xmax": 9, "ymax": 9}
        ann["imgs"][str(i)] = {"path": f"{i}.jpg", "id": i + 1, "objects": [{"category": c, "bbox": box} for c in cats]}
    coco = convert_tt100k_to_coco(ann, [str(i) for i in range(4)], other_class="other")
    json_file = tmp_path / "fixture.json"
    json_file.write_text(json.dumps(coco))
    name = f"efpn_tt100k_fixture_{id(tmp_path)}"
    register_tt100k(name, str(json_file), str(tmp_path), [c["name"] for c in coco["categories"]])
    try:
        node = cfg.dataloader.train.sampler.repeat_factors
        assert node.target_instances == 3
        node.dataset_dicts.names = name
        factors = instantiate(node)
    finally:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    # image 0 holds the single "i2" (x3), images 2 and 3 the two "other" signs (x1.5), pl80 has 3 already
    assert factors.tolist() == [3.0, 1.0, 1.5, 1.5]
    with pytest.raises(ValueError, match="label_set"):
        tt100k_protocol(model=cfg.model, dataloader=cfg.dataloader, label_set="all")


def test_evaluated_classes_only_drops_the_extra_class():
    from net_detr2.structures import Boxes, Instances
    from net_detr2_projects.EFPN.efpn import EvaluatedClassesOnly

    class Recorder:
        def reset(self):
            self.seen = []

        def process(self, inputs, outputs):
            self.seen += [o["instances"].pred_classes.tolist() for o in outputs]

        def evaluate(self):
            return {"bbox": {"AP": 1.0}}

    inst = Instances((10, 10))
    inst.pred_boxes = Boxes(torch.zeros(4, 4))
    inst.scores = torch.ones(4)
    inst.pred_classes = torch.tensor([0, 45, 44, 45])
    evaluator = EvaluatedClassesOnly(Recorder(), num_classes=45)
    evaluator.reset()
    evaluator.process([{"image_id": 1}], [{"instances": inst}])
    assert evaluator.evaluator.seen == [[0, 44]] and evaluator.evaluate() == {"bbox": {"AP": 1.0}}


def test_shapes_control_fine_tunes_only_the_fpn_box_head_with_frozen_bn():
    stage3, control = _load("shapes_stage3_p2head"), _load("shapes_control_head_ft")
    model = instantiate(control.model)
    freeze_parameters(model, control.train.trainable_params)
    trainable = {n.split(".")[1] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"box_head", "box_predictor"}
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    # the budget and optimizer of the stage it controls for
    assert control.train.max_iter == stage3.train.max_iter and control.optimizer == stage3.optimizer
    assert control.lr_multiplier == stage3.lr_multiplier
