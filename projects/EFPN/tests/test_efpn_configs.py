"""The three-stage LazyConfigs: they load, chain their checkpoints, and the shapes ones build and train."""

from __future__ import annotations

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
DATASETS = ["shapes", "coco_R50", "tt100k_R50"]


def _load(name):
    return LazyConfig.load(str(CONFIGS / f"{name}.py"))


@pytest.mark.parametrize("dataset", DATASETS)
def test_stages_chain_their_checkpoints(dataset):
    s1, s2, s3 = (_load(f"{dataset}_stage{i}_{kind}") for i, kind in [(1, "fpn"), (2, "distill"), (3, "p2head")])
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
    threshold = {"shapes": 56.0, "coco_R50": 112.0, "tt100k_R50": 56.0}[dataset]
    assert s2.model.roi_heads.small_roi_threshold == s3.model.roi_heads.small_roi_threshold == threshold


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
