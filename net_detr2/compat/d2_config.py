"""detectron2 YAML configs (``cfg.dump()`` files, model-zoo yamls with ``_BASE_``) -> LazyConfig.

``d2_config_to_lazy`` converts the model; ``convert_d2_config`` converts the whole experiment: ``model``,
``dataloader`` (datasets, input resizing / flip / crop, batch size, workers, sampler, evaluator),
``optimizer`` (SGD with detectron2's parameter groups), ``lr_multiplier`` (schedule and warm-up) and ``train``
(weights, iterations, checkpoint and evaluation periods, AMP, gradient clipping, seed, output folder), so that
``train_net.py`` runs the result as it is. Every key a file sets that is not carried over is reported (once).

Supported models: box-only ``GeneralizedRCNN`` (RPN + StandardROIHeads + FastRCNNConvFCHead) and
``RetinaNet``, on ``build_resnet_backbone``, ``build_resnet_fpn_backbone`` or
``build_retinanet_resnet_fpn_backbone``. Options outside that set (masks, keypoints, cascade, C4's
Res5ROIHeads, deformable convs, rotated boxes, ...) raise ``ValueError`` naming the key and the file.

Keys the YAML leaves out take detectron2's defaults (`net_detr2.compat.d2_yaml.D2_DEFAULTS`).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig

from net_detr2.config import LazyCall as L

from .d2_yaml import (
    D2Config,
    _merge,  # noqa: F401  (callers merge yaml trees the converter's way)
    load_d2_config,
    load_d2_yaml,
)

__all__ = [
    "load_d2_yaml",
    "d2_config_to_lazy",
    "d2_config_to_lazy_experiment",
    "d2_input_config",
    "convert_d2_config",
    "D2Conversion",
]

logger = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------------
# Backbone
# ------------------------------------------------------------------------------------------------
def _resnet_node(c: D2Config, out_features: list[str]) -> DictConfig:
    if any(c("MODEL.RESNETS.DEFORM_ON_PER_STAGE")):
        raise ValueError(
            f"{c.source}: MODEL.RESNETS.DEFORM_ON_PER_STAGE = {c('MODEL.RESNETS.DEFORM_ON_PER_STAGE')} "
            "is not supported (no deformable convolutions in net_detr2)"
        )
    return L("net_detr2.modeling.backbone.build_resnet_backbone")(
        depth=c.int("MODEL.RESNETS.DEPTH"),
        in_channels=len(c("MODEL.PIXEL_MEAN")),
        norm=c("MODEL.RESNETS.NORM"),
        stem_out_channels=c.int("MODEL.RESNETS.STEM_OUT_CHANNELS"),
        res2_out_channels=c.int("MODEL.RESNETS.RES2_OUT_CHANNELS"),
        num_groups=c.int("MODEL.RESNETS.NUM_GROUPS"),
        width_per_group=c.int("MODEL.RESNETS.WIDTH_PER_GROUP"),
        stride_in_1x1=c.bool("MODEL.RESNETS.STRIDE_IN_1X1"),
        res5_dilation=c.int("MODEL.RESNETS.RES5_DILATION"),
        out_features=list(out_features),
        freeze_at=c.int("MODEL.BACKBONE.FREEZE_AT"),
    )


def _resnet_shapes(c: D2Config) -> dict[str, tuple[int, int]]:
    """{name: (channels, stride)} of every ResNet stage for this config."""
    res2 = c.int("MODEL.RESNETS.RES2_OUT_CHANNELS")
    shapes = {"stem": (c.int("MODEL.RESNETS.STEM_OUT_CHANNELS"), 4)}
    for k in range(2, 6):
        stride = 2**k
        if k == 5 and c.int("MODEL.RESNETS.RES5_DILATION") == 2:
            stride = 16
        shapes[f"res{k}"] = (res2 * 2 ** (k - 2), stride)
    return shapes


def _backbone(c: D2Config) -> tuple[DictConfig, dict[str, tuple[int, int]]]:
    """(backbone node, {output name: (channels, stride)})."""
    name = c.require(
        "MODEL.BACKBONE.NAME",
        ["build_resnet_backbone", "build_resnet_fpn_backbone", "build_retinanet_resnet_fpn_backbone"],
    )
    res_shapes = _resnet_shapes(c)
    resnet_out = list(c("MODEL.RESNETS.OUT_FEATURES"))
    for f in resnet_out:
        if f not in res_shapes:
            raise ValueError(f"{c.source}: MODEL.RESNETS.OUT_FEATURES has unknown name {f!r}")
    bottom_up = _resnet_node(c, resnet_out)
    if name == "build_resnet_backbone":
        return bottom_up, {f: res_shapes[f] for f in resnet_out}

    in_features = list(c("MODEL.FPN.IN_FEATURES"))
    bad = [f for f in in_features if f not in resnet_out]
    if not in_features or bad:
        raise ValueError(
            f"{c.source}: MODEL.FPN.IN_FEATURES = {in_features} must be a non-empty subset of "
            f"MODEL.RESNETS.OUT_FEATURES = {resnet_out}"
        )
    out_ch = c.int("MODEL.FPN.OUT_CHANNELS")
    if name == "build_resnet_fpn_backbone":
        top_block, extra = L("net_detr2.modeling.backbone.LastLevelMaxPool")(), 1
    else:
        if "res5" not in resnet_out:
            raise ValueError(
                f"{c.source}: build_retinanet_resnet_fpn_backbone needs res5 in MODEL.RESNETS.OUT_FEATURES"
            )
        top_block = L("net_detr2.modeling.backbone.LastLevelP6P7")(
            in_channels=res_shapes["res5"][0], out_channels=out_ch, in_feature="res5"
        )
        extra = 2
    node = L("net_detr2.modeling.backbone.FPN")(
        bottom_up=bottom_up,
        in_features=in_features,
        out_channels=out_ch,
        norm=c("MODEL.FPN.NORM"),
        top_block=top_block,
        fuse_type=c.require("MODEL.FPN.FUSE_TYPE", ["sum", "avg"]),
    )
    shapes = {}
    for f in in_features:
        s = res_shapes[f][1]
        shapes[f"p{int(math.log2(s))}"] = (out_ch, s)
    last = int(math.log2(res_shapes[in_features[-1]][1]))
    for k in range(last + 1, last + 1 + extra):
        shapes[f"p{k}"] = (out_ch, 2**k)
    return node, shapes


# ------------------------------------------------------------------------------------------------
# Heads
# ------------------------------------------------------------------------------------------------
def _select(c: D2Config, shapes, key: str) -> list[str]:
    names = list(c(key))
    missing = [f for f in names if f not in shapes]
    if not names or missing:
        raise ValueError(
            f"{c.source}: {key} = {names} names features the backbone does not produce (it gives {list(shapes)})"
        )
    return names


def _anchor_generator(c: D2Config, strides: list[int]) -> tuple[DictConfig, int]:
    """(DefaultAnchorGenerator node, anchors per location)."""
    c.require("MODEL.ANCHOR_GENERATOR.NAME", ["DefaultAnchorGenerator"])
    sizes = [list(map(float, s)) for s in c("MODEL.ANCHOR_GENERATOR.SIZES")]
    ratios = [list(map(float, r)) for r in c("MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS")]
    n = len(strides)
    for key, v in (("SIZES", sizes), ("ASPECT_RATIOS", ratios)):
        if len(v) not in (1, n):
            raise ValueError(f"{c.source}: MODEL.ANCHOR_GENERATOR.{key} has {len(v)} entries for {n} feature levels")
    per_level = {len(sizes[i if len(sizes) > 1 else 0]) * len(ratios[i if len(ratios) > 1 else 0]) for i in range(n)}
    if len(per_level) != 1:
        raise ValueError(
            f"{c.source}: MODEL.ANCHOR_GENERATOR gives a different number of anchors per level "
            f"({sorted(per_level)}); the shared head needs one"
        )
    node = L("net_detr2.modeling.anchor_generator.DefaultAnchorGenerator")(
        sizes=sizes, aspect_ratios=ratios, strides=list(strides), offset=c.float("MODEL.ANCHOR_GENERATOR.OFFSET")
    )
    return node, per_level.pop()


def _box2box(weights) -> DictConfig:
    return L("net_detr2.modeling.box_regression.Box2BoxTransform")(weights=[float(w) for w in weights])


def _rpn(c: D2Config, shapes) -> DictConfig:
    c.require("MODEL.PROPOSAL_GENERATOR.NAME", ["RPN"])
    c.require("MODEL.RPN.HEAD_NAME", ["StandardRPNHead"])
    in_features = _select(c, shapes, "MODEL.RPN.IN_FEATURES")
    channels = {shapes[f][0] for f in in_features}
    if len(channels) != 1:
        raise ValueError(f"{c.source}: MODEL.RPN.IN_FEATURES {in_features} have different channel counts {channels}")
    anchors, num_anchors = _anchor_generator(c, [shapes[f][1] for f in in_features])
    loss_w = c.float("MODEL.RPN.LOSS_WEIGHT")
    return L("net_detr2.modeling.proposal_generator.rpn.RPN")(
        in_features=in_features,
        head=L("net_detr2.modeling.proposal_generator.rpn.StandardRPNHead")(
            in_channels=channels.pop(),
            num_anchors=num_anchors,
            box_dim=4,
            conv_dims=[int(d) for d in c("MODEL.RPN.CONV_DIMS")],
        ),
        anchor_generator=anchors,
        anchor_matcher=L("net_detr2.modeling.matcher.Matcher")(
            thresholds=[float(t) for t in c("MODEL.RPN.IOU_THRESHOLDS")],
            labels=[int(x) for x in c("MODEL.RPN.IOU_LABELS")],
            allow_low_quality_matches=True,
        ),
        box2box_transform=_box2box(c("MODEL.RPN.BBOX_REG_WEIGHTS")),
        batch_size_per_image=c.int("MODEL.RPN.BATCH_SIZE_PER_IMAGE"),
        positive_fraction=c.float("MODEL.RPN.POSITIVE_FRACTION"),
        pre_nms_topk=[c.int("MODEL.RPN.PRE_NMS_TOPK_TRAIN"), c.int("MODEL.RPN.PRE_NMS_TOPK_TEST")],
        post_nms_topk=[c.int("MODEL.RPN.POST_NMS_TOPK_TRAIN"), c.int("MODEL.RPN.POST_NMS_TOPK_TEST")],
        nms_thresh=c.float("MODEL.RPN.NMS_THRESH"),
        min_box_size=c.float("MODEL.PROPOSAL_GENERATOR.MIN_SIZE"),
        anchor_boundary_thresh=c.float("MODEL.RPN.BOUNDARY_THRESH"),
        loss_weight={"loss_rpn_cls": loss_w, "loss_rpn_loc": c.float("MODEL.RPN.BBOX_REG_LOSS_WEIGHT") * loss_w},
        box_reg_loss_type=c("MODEL.RPN.BBOX_REG_LOSS_TYPE"),
        smooth_l1_beta=c.float("MODEL.RPN.SMOOTH_L1_BETA"),
    )


def _shape_spec(**kwargs) -> DictConfig:
    return L("net_detr2.layers.ShapeSpec")(**kwargs)


def _roi_heads(c: D2Config, shapes) -> DictConfig:
    c.require(
        "MODEL.ROI_HEADS.NAME",
        ["StandardROIHeads"],
        "(box heads on FPN features; net_detr2 has no Res5ROIHeads, so C4 models such as faster_rcnn_R_50_C4 "
        "cannot be converted: use the FPN variant of the config)",
    )
    c.require("MODEL.ROI_BOX_HEAD.NAME", ["FastRCNNConvFCHead"])
    for key in ("TRAIN_ON_PRED_BOXES", "USE_FED_LOSS", "USE_SIGMOID_CE"):
        c.require(f"MODEL.ROI_BOX_HEAD.{key}", [False])
    in_features = _select(c, shapes, "MODEL.ROI_HEADS.IN_FEATURES")
    channels = {shapes[f][0] for f in in_features}
    if len(channels) != 1:
        raise ValueError(f"{c.source}: MODEL.ROI_HEADS.IN_FEATURES {in_features} have different channel counts")
    in_ch = channels.pop()
    res = c.int("MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION")
    num_conv, conv_dim = c.int("MODEL.ROI_BOX_HEAD.NUM_CONV"), c.int("MODEL.ROI_BOX_HEAD.CONV_DIM")
    num_fc, fc_dim = c.int("MODEL.ROI_BOX_HEAD.NUM_FC"), c.int("MODEL.ROI_BOX_HEAD.FC_DIM")
    if num_fc > 0:
        head_out = _shape_spec(channels=fc_dim)
    else:
        head_out = _shape_spec(channels=conv_dim if num_conv > 0 else in_ch, height=res, width=res)
    num_classes = c.int("MODEL.ROI_HEADS.NUM_CLASSES")
    return L("net_detr2.modeling.roi_heads.roi_heads.StandardROIHeads")(
        box_in_features=in_features,
        box_pooler=L("net_detr2.modeling.poolers.ROIPooler")(
            output_size=res,
            scales=[1.0 / shapes[f][1] for f in in_features],
            sampling_ratio=c.int("MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO"),
            pooler_type=c("MODEL.ROI_BOX_HEAD.POOLER_TYPE"),
        ),
        box_head=L("net_detr2.modeling.roi_heads.box_head.FastRCNNConvFCHead")(
            input_shape=_shape_spec(channels=in_ch, height=res, width=res),
            conv_dims=[conv_dim] * num_conv,
            fc_dims=[fc_dim] * num_fc,
            conv_norm=c("MODEL.ROI_BOX_HEAD.NORM"),
        ),
        box_predictor=L("net_detr2.modeling.roi_heads.fast_rcnn.FastRCNNOutputLayers")(
            input_shape=head_out,
            box2box_transform=_box2box(c("MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS")),
            num_classes="${..num_classes}",  # one key to override: roi_heads.num_classes
            test_score_thresh=c.float("MODEL.ROI_HEADS.SCORE_THRESH_TEST"),
            test_nms_thresh=c.float("MODEL.ROI_HEADS.NMS_THRESH_TEST"),
            test_topk_per_image=c.int("TEST.DETECTIONS_PER_IMAGE"),
            cls_agnostic_bbox_reg=c.bool("MODEL.ROI_BOX_HEAD.CLS_AGNOSTIC_BBOX_REG"),
            smooth_l1_beta=c.float("MODEL.ROI_BOX_HEAD.SMOOTH_L1_BETA"),
            box_reg_loss_type=c("MODEL.ROI_BOX_HEAD.BBOX_REG_LOSS_TYPE"),
            loss_weight={"loss_box_reg": c.float("MODEL.ROI_BOX_HEAD.BBOX_REG_LOSS_WEIGHT")},
        ),
        num_classes=num_classes,
        batch_size_per_image=c.int("MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE"),
        positive_fraction=c.float("MODEL.ROI_HEADS.POSITIVE_FRACTION"),
        proposal_matcher=L("net_detr2.modeling.matcher.Matcher")(
            thresholds=[float(t) for t in c("MODEL.ROI_HEADS.IOU_THRESHOLDS")],
            labels=[int(x) for x in c("MODEL.ROI_HEADS.IOU_LABELS")],
            allow_low_quality_matches=False,
        ),
        proposal_append_gt=c.bool("MODEL.ROI_HEADS.PROPOSAL_APPEND_GT"),
    )


def _pixel_stats(c: D2Config):
    mean = [float(x) for x in c("MODEL.PIXEL_MEAN")]
    std = [float(x) for x in c("MODEL.PIXEL_STD")]
    if len(mean) != len(std):
        raise ValueError(f"{c.source}: MODEL.PIXEL_MEAN has {len(mean)} values but MODEL.PIXEL_STD {len(std)}")
    return mean, std


def _check_box_only(c: D2Config) -> None:
    for key in ("MODEL.MASK_ON", "MODEL.KEYPOINT_ON", "MODEL.LOAD_PROPOSALS"):
        c.require(key, [False], "(box-only detectors)")


def _model(c: D2Config) -> DictConfig:
    arch = c.require("MODEL.META_ARCHITECTURE", ["GeneralizedRCNN", "RetinaNet"])
    backbone, shapes = _backbone(c)
    mean, std = _pixel_stats(c)
    fmt = c.require("INPUT.FORMAT", ["BGR", "RGB"])
    if arch == "GeneralizedRCNN":
        _check_box_only(c)
        return L("net_detr2.modeling.meta_arch.rcnn.GeneralizedRCNN")(
            backbone=backbone,
            proposal_generator=_rpn(c, shapes),
            roi_heads=_roi_heads(c, shapes),
            pixel_mean=mean,
            pixel_std=std,
            input_format=fmt,
            vis_period=c.int("VIS_PERIOD"),
        )

    in_features = _select(c, shapes, "MODEL.RETINANET.IN_FEATURES")
    anchors, num_anchors = _anchor_generator(c, [shapes[f][1] for f in in_features])
    channels = shapes[in_features[0]][0]
    return L("net_detr2.modeling.meta_arch.retinanet.RetinaNet")(
        backbone=backbone,
        head=L("net_detr2.modeling.meta_arch.retinanet.RetinaNetHead")(
            input_shape=[_shape_spec(channels=shapes[f][0], stride=shapes[f][1]) for f in in_features],
            num_classes="${..num_classes}",  # one key to override: model.num_classes
            num_anchors=num_anchors,
            conv_dims=[channels] * c.int("MODEL.RETINANET.NUM_CONVS"),
            norm=c("MODEL.RETINANET.NORM"),
            prior_prob=c.float("MODEL.RETINANET.PRIOR_PROB"),
        ),
        head_in_features=in_features,
        anchor_generator=anchors,
        box2box_transform=_box2box(c("MODEL.RETINANET.BBOX_REG_WEIGHTS")),
        anchor_matcher=L("net_detr2.modeling.matcher.Matcher")(
            thresholds=[float(t) for t in c("MODEL.RETINANET.IOU_THRESHOLDS")],
            labels=[int(x) for x in c("MODEL.RETINANET.IOU_LABELS")],
            allow_low_quality_matches=True,
        ),
        num_classes=c.int("MODEL.RETINANET.NUM_CLASSES"),
        focal_loss_alpha=c.float("MODEL.RETINANET.FOCAL_LOSS_ALPHA"),
        focal_loss_gamma=c.float("MODEL.RETINANET.FOCAL_LOSS_GAMMA"),
        smooth_l1_beta=c.float("MODEL.RETINANET.SMOOTH_L1_LOSS_BETA"),
        box_reg_loss_type=c("MODEL.RETINANET.BBOX_REG_LOSS_TYPE"),
        test_score_thresh=c.float("MODEL.RETINANET.SCORE_THRESH_TEST"),
        test_topk_candidates=c.int("MODEL.RETINANET.TOPK_CANDIDATES_TEST"),
        test_nms_thresh=c.float("MODEL.RETINANET.NMS_THRESH_TEST"),
        max_detections_per_image=c.int("TEST.DETECTIONS_PER_IMAGE"),
        pixel_mean=mean,
        pixel_std=std,
        input_format=fmt,
        vis_period=c.int("VIS_PERIOD"),
    )


def d2_config_to_lazy(yaml_text: str, base_dir: str | None = None, source: str = "<yaml>") -> DictConfig:
    """LazyCall node of the model a detectron2 yaml describes; ``instantiate(node)`` builds it.

    Args:
        yaml_text: the yaml (a full ``cfg.dump()`` or a model-zoo file).
        base_dir: folder against which ``_BASE_`` paths are resolved (the yaml's own folder).
        source: name used in error messages (e.g. the file path).
    """
    return _model(load_d2_config(yaml_text, base_dir, source))


def _input_settings(c: D2Config) -> dict[str, Any]:
    min_train = c.list("INPUT.MIN_SIZE_TRAIN", int, allow_scalar=True)
    return {
        "format": c.str("INPUT.FORMAT"),
        "min_size_test": c.int("INPUT.MIN_SIZE_TEST"),
        "max_size_test": c.int("INPUT.MAX_SIZE_TEST"),
        "min_size_train": min_train,
        "max_size_train": c.int("INPUT.MAX_SIZE_TRAIN"),
        "min_size_train_sampling": c.require("INPUT.MIN_SIZE_TRAIN_SAMPLING", ["choice", "range"]),
    }


def d2_input_config(yaml_text: str, base_dir: str | None = None, source: str = "<yaml>") -> dict[str, Any]:
    """The resize settings of ``INPUT`` as plain values.

    Returns ``{"format", "min_size_test", "max_size_test", "min_size_train", "max_size_train",
    "min_size_train_sampling"}``; test-time resizing is ResizeShortestEdge(min_size_test, max_size_test).
    """
    return _input_settings(load_d2_config(yaml_text, base_dir, source))


# ------------------------------------------------------------------------------------------------
# The rest of the experiment
# ------------------------------------------------------------------------------------------------
_T = "net_detr2.data.transforms"


def _train_augmentations(c: D2Config, inp: dict[str, Any]) -> list:
    augs = []
    if c.bool("INPUT.CROP.ENABLED"):
        # detectron2 crops before resizing
        augs.append(
            L(f"{_T}.RandomCrop")(
                crop_type=c.require("INPUT.CROP.TYPE", ["relative_range", "relative", "absolute", "absolute_range"]),
                crop_size=c.list("INPUT.CROP.SIZE", (int, float)),
            )
        )
    sizes = inp["min_size_train"]
    if inp["min_size_train_sampling"] == "range" and len(sizes) != 2:
        raise ValueError(
            f"{c.where('INPUT.MIN_SIZE_TRAIN')}: INPUT.MIN_SIZE_TRAIN = {sizes} must be (min, max) with "
            "INPUT.MIN_SIZE_TRAIN_SAMPLING = 'range'"
        )
    augs.append(
        L(f"{_T}.ResizeShortestEdge")(
            short_edge_length=sizes, max_size=inp["max_size_train"], sample_style=inp["min_size_train_sampling"]
        )
    )
    flip = c.require("INPUT.RANDOM_FLIP", ["horizontal", "vertical", "none"])
    if flip != "none":
        augs.append(L(f"{_T}.RandomFlip")(horizontal=flip == "horizontal", vertical=flip == "vertical"))
    return augs


def _dataloader(c: D2Config, notes: list[str]) -> DictConfig:
    inp = _input_settings(c)
    train_names = c.list("DATASETS.TRAIN", str, allow_scalar=True)
    test_names = c.list("DATASETS.TEST", str, allow_scalar=True)
    if not train_names:
        notes.append("DATASETS.TRAIN is empty: set dataloader.train.dataset.names before training")
    dataset = L("net_detr2.data.get_detection_dataset_dicts")(
        names=train_names, filter_empty=c.bool("DATALOADER.FILTER_EMPTY_ANNOTATIONS")
    )
    sampler_name = c.require("DATALOADER.SAMPLER_TRAIN", ["TrainingSampler", "RepeatFactorTrainingSampler"])
    sampler = None
    if sampler_name == "RepeatFactorTrainingSampler":
        sampler_cls = "net_detr2.data.samplers.distributed_sampler.RepeatFactorTrainingSampler"
        sampler = L(sampler_cls)(
            repeat_factors=L(f"{sampler_cls}.repeat_factors_from_category_frequency")(
                dataset_dicts=dataset,
                repeat_thresh=c.float("DATALOADER.REPEAT_THRESHOLD"),
                sqrt=c.bool("DATALOADER.REPEAT_SQRT"),
            )
        )
    workers = c.int("DATALOADER.NUM_WORKERS")
    dl = DictConfig({}, flags={"allow_objects": True})
    dl.train = L("net_detr2.data.build_detection_train_loader")(
        dataset=dataset,
        mapper=L("net_detr2.data.DatasetMapper")(
            is_train=True, augmentations=_train_augmentations(c, inp), image_format=inp["format"]
        ),
        total_batch_size=c.int("SOLVER.IMS_PER_BATCH"),
        aspect_ratio_grouping=c.bool("DATALOADER.ASPECT_RATIO_GROUPING"),
        num_workers=workers,
    )
    if sampler is not None:
        dl.train.sampler = sampler
    if not test_names:
        notes.append("DATASETS.TEST is empty: no evaluation (set dataloader.test and dataloader.evaluator to add one)")
        return dl
    if len(test_names) > 1:
        notes.append(
            f"DATASETS.TEST = {test_names}: net_detr2 evaluates one test set per config; converted "
            f"{test_names[0]!r} (override dataloader.test.dataset.names for the others)"
        )
    test_augs = []
    if inp["min_size_test"] > 0:
        test_augs.append(
            L(f"{_T}.ResizeShortestEdge")(short_edge_length=inp["min_size_test"], max_size=inp["max_size_test"])
        )
    dl.test = L("net_detr2.data.build_detection_test_loader")(
        dataset=L("net_detr2.data.get_detection_dataset_dicts")(names=test_names[0], filter_empty=False),
        mapper=L("net_detr2.data.DatasetMapper")(
            is_train=False, augmentations=test_augs, image_format="${...train.mapper.image_format}"
        ),
        num_workers=workers,
    )
    dl.evaluator = L("net_detr2.evaluation.build_evaluator")(
        dataset_name="${..test.dataset.names}",
        output_dir="${train.output_dir}",  # predictions beside the checkpoints
    )
    return dl


def _optimizer(c: D2Config) -> DictConfig:
    params = L("net_detr2.solver.get_default_optimizer_params")(
        weight_decay_norm=c.float("SOLVER.WEIGHT_DECAY_NORM"),
        # detectron2: None = the same decay as the weights
        weight_decay_bias=None if c("SOLVER.WEIGHT_DECAY_BIAS") is None else c.float("SOLVER.WEIGHT_DECAY_BIAS"),
    )
    bias_factor = c.float("SOLVER.BIAS_LR_FACTOR")
    if bias_factor != 1.0:
        params.base_lr = "${..lr}"
        bias = {"lr": c.float("SOLVER.BASE_LR") * bias_factor}
        if params.weight_decay_bias is not None:
            bias["weight_decay"] = params.weight_decay_bias
        params.weight_decay_bias = None
        params.overrides = {"bias": bias}
    return L("torch.optim.SGD")(
        params=params,
        lr=c.float("SOLVER.BASE_LR"),
        momentum=c.float("SOLVER.MOMENTUM"),
        nesterov=c.bool("SOLVER.NESTEROV"),
        weight_decay=c.float("SOLVER.WEIGHT_DECAY"),
    )


def _lr_multiplier(c: D2Config, notes: list[str]) -> DictConfig:
    max_iter = c.int("SOLVER.MAX_ITER")
    if max_iter <= 0:
        raise ValueError(f"{c.where('SOLVER.MAX_ITER')}: SOLVER.MAX_ITER = {max_iter} must be positive")
    name = c.require("SOLVER.LR_SCHEDULER_NAME", ["WarmupMultiStepLR", "WarmupCosineLR"])
    if name == "WarmupMultiStepLR":
        all_steps = c.list("SOLVER.STEPS", int, allow_scalar=True)
        steps = [s for s in all_steps if s <= max_iter]
        if len(steps) != len(all_steps):
            notes.append(
                f"SOLVER.STEPS {all_steps} has steps beyond SOLVER.MAX_ITER = {max_iter}: they are left out "
                "(as detectron2 does)"
            )
        gamma = c.float("SOLVER.GAMMA")
        main = L("fvcore.common.param_scheduler.MultiStepParamScheduler")(
            values=[gamma**k for k in range(len(steps) + 1)], milestones=steps, num_updates=max_iter
        )
    else:
        base_lr = c.float("SOLVER.BASE_LR")
        end = c.float("SOLVER.BASE_LR_END") / base_lr if base_lr else 0.0
        main = L("fvcore.common.param_scheduler.CosineParamScheduler")(start_value=1.0, end_value=end)
    return L("net_detr2.solver.WarmupParamScheduler")(
        scheduler=main,
        warmup_factor=c.float("SOLVER.WARMUP_FACTOR"),
        warmup_length=min(c.int("SOLVER.WARMUP_ITERS") / max_iter, 1.0),
        warmup_method=c.require("SOLVER.WARMUP_METHOD", ["linear", "constant"]),
        rescale_interval=c.bool("SOLVER.RESCALE_INTERVAL"),
    )


def _common_train() -> dict[str, Any]:
    """``train`` of configs/common/train.py (every key the trainer reads, with its default)."""
    path = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "common", "train.py")
    if os.path.isfile(path):
        from net_detr2.config import LazyConfig

        return dict(LazyConfig.to_plain(LazyConfig.load(path, "train")))
    return {}


# Where a missing model-zoo file would be expected: detectron2://X/Y.pkl -> pretrained/Y.pkl.
PRETRAINED_DIR = "pretrained"


def _weights(c: D2Config, notes: list[str]) -> str:
    weights = c.str("MODEL.WEIGHTS")
    if weights.startswith("detectron2://"):
        local = f"{PRETRAINED_DIR}/{weights.rsplit('/', 1)[-1]}"
        notes.append(
            f"MODEL.WEIGHTS = {weights!r} is a detectron2 model-zoo address and net_detr2 downloads nothing: "
            f"train.init_checkpoint = {local!r}; put the file there (https://dl.fbaipublicfiles.com/detectron2/"
            f"{weights[len('detectron2://') :]}) or override train.init_checkpoint"
        )
        return local
    return weights


def _train(c: D2Config, notes: list[str], output_dir: str) -> dict[str, Any]:
    train = _common_train()
    clip = None
    if c.bool("SOLVER.CLIP_GRADIENTS.ENABLED"):
        kind = c.str("SOLVER.CLIP_GRADIENTS.CLIP_TYPE")
        if kind == "full_model":
            clip = {
                "max_norm": c.float("SOLVER.CLIP_GRADIENTS.CLIP_VALUE"),
                "norm_type": c.float("SOLVER.CLIP_GRADIENTS.NORM_TYPE"),
            }
        else:
            c.used.discard("SOLVER.CLIP_GRADIENTS.ENABLED")  # reported as not carried over
            notes.append(
                f"SOLVER.CLIP_GRADIENTS.CLIP_TYPE = {kind!r}: net_detr2 clips the norm of the whole model's "
                "gradient only (CLIP_TYPE 'full_model'); set train.clip_grad = dict(max_norm=...) for that"
            )
    if c.int("SOLVER.REFERENCE_WORLD_SIZE"):
        c.used.discard("SOLVER.REFERENCE_WORLD_SIZE")
    train.update(
        output_dir=output_dir,
        init_checkpoint=_weights(c, notes),
        max_iter=c.int("SOLVER.MAX_ITER"),
        checkpointer={"period": c.int("SOLVER.CHECKPOINT_PERIOD"), "max_to_keep": None},
        eval_period=c.int("TEST.EVAL_PERIOD"),
        seed=c.int("SEED"),
        clip_grad=clip,
        cudnn_benchmark=c.bool("CUDNN_BENCHMARK"),
    )
    if c.is_set("MODEL.DEVICE"):
        train["device"] = c.str("MODEL.DEVICE")
    amp = {**dict(train.get("amp") or {}), "enabled": c.bool("SOLVER.AMP.ENABLED")}
    if amp["enabled"]:
        amp["dtype"] = "float16"  # detectron2's AMP: CUDA autocast to float16, with a gradient scaler
        device = str(train.get("device"))
        if not device.startswith("cuda"):
            notes.append(
                "SOLVER.AMP.ENABLED = True is detectron2's CUDA float16 mixed precision (with a gradient scaler): "
                f"train.amp.dtype = 'float16', which runs on CUDA only, but train.device = {device!r}. Train on "
                "CUDA (train.device='cuda'), or on this CPU with train.amp.dtype='bfloat16' or train.amp.enabled=False"
            )
    train["amp"] = amp
    return train


def _frozen_bn_note(c: D2Config, init_checkpoint: str) -> str | None:
    norms = {c("MODEL.RESNETS.NORM")}
    if "FrozenBN" in norms and not init_checkpoint:
        return (
            "MODEL.RESNETS.NORM = 'FrozenBN' but MODEL.WEIGHTS is empty: frozen BatchNorm keeps the statistics of "
            "pretrained weights, and from random initialisation it normalises nothing, so a deep ResNet's "
            "activations and losses blow up. Give pretrained weights (train.init_checkpoint) or train with "
            "norm='BN'/'GN' (model.backbone...norm)"
        )
    return None


@dataclass
class D2Conversion:
    """The converted experiment and what the user must know about it.

    ``config``: ``model``, ``dataloader``, ``optimizer``, ``lr_multiplier``, ``train`` and ``input`` (a record of
    detectron2's INPUT resize settings; the loaders in ``dataloader`` are what training uses).
    ``not_carried``: one line per key (or unused section) a file sets that the config does not carry over.
    ``notes``: other warnings (weights to place by hand, frozen BatchNorm without weights, ...).
    """

    config: DictConfig
    not_carried: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def warnings(self) -> list[str]:
        return [f"not carried over: {k}" for k in self.not_carried] + self.notes


# Sections of components a converted model does not have: their keys are reported one line per section.
def _unused_sections(c: D2Config) -> dict[str, str]:
    arch = c("MODEL.META_ARCHITECTURE")
    sections = {
        "MODEL.ROI_MASK_HEAD": "no mask head (box-only detector)",
        "MODEL.ROI_KEYPOINT_HEAD": "no keypoint head (box-only detector)",
        "MODEL.SEM_SEG_HEAD": "no semantic segmentation head",
        "MODEL.PANOPTIC_FPN": "not a PanopticFPN",
        "MODEL.ROI_BOX_CASCADE_HEAD": "no cascade heads",
    }
    if arch == "RetinaNet":
        for s in ("MODEL.RPN", "MODEL.PROPOSAL_GENERATOR", "MODEL.ROI_HEADS", "MODEL.ROI_BOX_HEAD"):
            sections[s] = "RetinaNet has no RPN or RoI heads"
    else:
        sections["MODEL.RETINANET"] = "not a RetinaNet"
    return sections


def _mark_inactive(c: D2Config) -> None:
    """Mark as carried over the keys of features the config leaves switched off: dropping their parameters
    changes nothing (a ``cfg.dump()`` lists them all). A switched-on feature keeps them reported."""
    if not c.peek("INPUT.CROP.ENABLED"):
        c.mark_used("INPUT.CROP")
    if not c.peek("SOLVER.CLIP_GRADIENTS.ENABLED"):
        c.mark_used("SOLVER.CLIP_GRADIENTS")
    if c.peek("DATALOADER.SAMPLER_TRAIN") == "TrainingSampler":
        c.mark_used("DATALOADER.REPEAT_THRESHOLD", "DATALOADER.REPEAT_SQRT")
    if c.peek("SOLVER.LR_SCHEDULER_NAME") != "WarmupCosineLR":
        c.mark_used("SOLVER.BASE_LR_END")
    if c.peek("SOLVER.LR_SCHEDULER_NAME") != "WarmupStepWithFixedGammaLR":
        c.mark_used("SOLVER.NUM_DECAYS")
    for switch, section in (("TEST.AUG.ENABLED", "TEST.AUG"), ("TEST.PRECISE_BN.ENABLED", "TEST.PRECISE_BN")):
        if not c.peek(switch):
            c.mark_used(section)
    for split in ("TRAIN", "TEST"):
        if not c.peek(f"DATASETS.PROPOSAL_FILES_{split}"):
            c.mark_used(f"DATASETS.PROPOSAL_FILES_{split}", f"DATASETS.PRECOMPUTED_PROPOSAL_TOPK_{split}")
    if not any(c.peek("MODEL.RESNETS.DEFORM_ON_PER_STAGE", [])):
        c.mark_used("MODEL.RESNETS.DEFORM_MODULATED", "MODEL.RESNETS.DEFORM_NUM_GROUPS")
    if not c.peek("MODEL.ROI_BOX_HEAD.USE_FED_LOSS"):
        c.mark_used("MODEL.ROI_BOX_HEAD.FED_LOSS_FREQ_WEIGHT_POWER", "MODEL.ROI_BOX_HEAD.FED_LOSS_NUM_CLASSES")
    if not c.peek("MODEL.MASK_ON"):
        c.mark_used("INPUT.MASK_FORMAT")
    if c.peek("MODEL.ANCHOR_GENERATOR.NAME") == "DefaultAnchorGenerator":
        c.mark_used("MODEL.ANCHOR_GENERATOR.ANGLES")  # rotated anchors only
    for key in ("TEST.EXPECTED_RESULTS", "TEST.KEYPOINT_OKS_SIGMAS", "FLOAT32_PRECISION"):
        if not c.peek(key):  # empty: detectron2 does nothing with them
            c.mark_used(key)
    c.mark_used("GLOBAL.HACK")  # a placeholder key of detectron2 that nothing reads


def _not_carried(c: D2Config) -> list[str]:
    sections = _unused_sections(c)
    grouped: dict[str, list[str]] = {}
    lines = []
    for key in c.unused_keys():
        if key == "VERSION" and c("VERSION") == 2:
            continue
        section = next((s for s in sections if key.startswith(s + ".")), None)
        if section is not None:
            grouped.setdefault(section, []).append(key[len(section) + 1 :])
            continue
        lines.append(f"{key} = {c(key)!r} (set in {c.where(key)})")
    for section, keys in grouped.items():
        lines.append(f"{section}.{{{', '.join(keys)}}}: {sections[section]}")
    return lines


def convert_d2_config(
    yaml_text: str,
    base_dir: str | None = None,
    source: str = "<yaml>",
    overrides: list[str] | None = None,
    output_dir: str | None = None,
) -> D2Conversion:
    """Convert a whole detectron2 experiment (see the module docstring).

    Args:
        yaml_text, base_dir, source: as in `d2_config_to_lazy`.
        overrides: detectron2-style ``KEY VALUE`` words applied on top of the files
            (``["SOLVER.IMS_PER_BATCH", "2", "DATASETS.TRAIN", "('shapes_train',)"]``).
        output_dir: ``train.output_dir`` when the files leave ``OUTPUT_DIR`` at detectron2's default
            (default: ``./output``).
    """
    c = load_d2_config(yaml_text, base_dir, source, overrides)
    notes: list[str] = []
    version = c("VERSION")
    if version != 2:
        notes.append(f"VERSION = {version!r}: written for detectron2 config version 2; older key names are not read")
    model = _model(c)
    dataloader = _dataloader(c, notes)
    out = c.str("OUTPUT_DIR") if c.is_set("OUTPUT_DIR") or output_dir is None else output_dir
    train = _train(c, notes, out)
    frozen = _frozen_bn_note(c, train["init_checkpoint"])
    if frozen:
        notes.append(frozen)
    _mark_inactive(c)
    cfg = DictConfig(
        {
            "model": model,
            "dataloader": dataloader,
            "optimizer": _optimizer(c),
            "lr_multiplier": _lr_multiplier(c, notes),
            "train": train,
            "input": _input_settings(c),
        },
        flags={"allow_objects": True},
    )
    return D2Conversion(cfg, _not_carried(c), notes)


def d2_config_to_lazy_experiment(yaml_text: str, base_dir: str | None = None, source: str = "<yaml>") -> DictConfig:
    """`convert_d2_config`'s config; its warnings go to the log, one line each."""
    conversion = convert_d2_config(yaml_text, base_dir, source)
    for line in conversion.warnings():
        logger.warning(f"{source}: {line}")
    return conversion.config
