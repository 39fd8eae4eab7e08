"""detectron2 YAML configs (``cfg.dump()`` files, model-zoo yamls with ``_BASE_``) -> LazyConfig nodes.

Supported: box-only ``GeneralizedRCNN`` (RPN + StandardROIHeads + FastRCNNConvFCHead) and
``RetinaNet``, on ``build_resnet_backbone``, ``build_resnet_fpn_backbone`` or
``build_retinanet_resnet_fpn_backbone``. Options outside that set (masks, keypoints, cascade,
deformable convs, rotated boxes, ...) raise ``ValueError`` naming the key, instead of being dropped.

Keys the YAML leaves out take detectron2's defaults (``_D2_DEFAULTS`` below, the subset read here).
"""

from __future__ import annotations

import ast
import copy
import math
import os
from typing import Any

import yaml
from omegaconf import DictConfig

from net_detr2.config import LazyCall as L

__all__ = ["load_d2_yaml", "d2_config_to_lazy", "d2_config_to_lazy_experiment", "d2_input_config"]

# detectron2 defaults of every key this module reads.
_D2_DEFAULTS: dict[str, Any] = {
    "MODEL": {
        "META_ARCHITECTURE": "GeneralizedRCNN",
        "MASK_ON": False,
        "KEYPOINT_ON": False,
        "LOAD_PROPOSALS": False,
        "PIXEL_MEAN": [103.530, 116.280, 123.675],
        "PIXEL_STD": [1.0, 1.0, 1.0],
        "BACKBONE": {"NAME": "build_resnet_backbone", "FREEZE_AT": 2},
        "FPN": {"IN_FEATURES": [], "OUT_CHANNELS": 256, "NORM": "", "FUSE_TYPE": "sum"},
        "PROPOSAL_GENERATOR": {"NAME": "RPN", "MIN_SIZE": 0},
        "ANCHOR_GENERATOR": {
            "NAME": "DefaultAnchorGenerator",
            "SIZES": [[32, 64, 128, 256, 512]],
            "ASPECT_RATIOS": [[0.5, 1.0, 2.0]],
            "OFFSET": 0.0,
        },
        "RPN": {
            "HEAD_NAME": "StandardRPNHead",
            "IN_FEATURES": ["res4"],
            "BOUNDARY_THRESH": -1,
            "IOU_THRESHOLDS": [0.3, 0.7],
            "IOU_LABELS": [0, -1, 1],
            "BATCH_SIZE_PER_IMAGE": 256,
            "POSITIVE_FRACTION": 0.5,
            "BBOX_REG_LOSS_TYPE": "smooth_l1",
            "BBOX_REG_LOSS_WEIGHT": 1.0,
            "BBOX_REG_WEIGHTS": [1.0, 1.0, 1.0, 1.0],
            "SMOOTH_L1_BETA": 0.0,
            "LOSS_WEIGHT": 1.0,
            "PRE_NMS_TOPK_TRAIN": 12000,
            "PRE_NMS_TOPK_TEST": 6000,
            "POST_NMS_TOPK_TRAIN": 2000,
            "POST_NMS_TOPK_TEST": 1000,
            "NMS_THRESH": 0.7,
            "CONV_DIMS": [-1],
        },
        "ROI_HEADS": {
            "NAME": "Res5ROIHeads",
            "NUM_CLASSES": 80,
            "IN_FEATURES": ["res4"],
            "IOU_THRESHOLDS": [0.5],
            "IOU_LABELS": [0, 1],
            "BATCH_SIZE_PER_IMAGE": 512,
            "POSITIVE_FRACTION": 0.25,
            "SCORE_THRESH_TEST": 0.05,
            "NMS_THRESH_TEST": 0.5,
            "PROPOSAL_APPEND_GT": True,
        },
        "ROI_BOX_HEAD": {
            "NAME": "",
            "BBOX_REG_LOSS_TYPE": "smooth_l1",
            "BBOX_REG_LOSS_WEIGHT": 1.0,
            "BBOX_REG_WEIGHTS": [10.0, 10.0, 5.0, 5.0],
            "SMOOTH_L1_BETA": 0.0,
            "POOLER_RESOLUTION": 14,
            "POOLER_SAMPLING_RATIO": 0,
            "POOLER_TYPE": "ROIAlignV2",
            "NUM_FC": 0,
            "FC_DIM": 1024,
            "NUM_CONV": 0,
            "CONV_DIM": 256,
            "NORM": "",
            "CLS_AGNOSTIC_BBOX_REG": False,
            "TRAIN_ON_PRED_BOXES": False,
            "USE_FED_LOSS": False,
            "USE_SIGMOID_CE": False,
        },
        "RETINANET": {
            "NUM_CLASSES": 80,
            "IN_FEATURES": ["p3", "p4", "p5", "p6", "p7"],
            "NUM_CONVS": 4,
            "IOU_THRESHOLDS": [0.4, 0.5],
            "IOU_LABELS": [0, -1, 1],
            "PRIOR_PROB": 0.01,
            "SCORE_THRESH_TEST": 0.05,
            "TOPK_CANDIDATES_TEST": 1000,
            "NMS_THRESH_TEST": 0.5,
            "BBOX_REG_WEIGHTS": [1.0, 1.0, 1.0, 1.0],
            "FOCAL_LOSS_GAMMA": 2.0,
            "FOCAL_LOSS_ALPHA": 0.25,
            "SMOOTH_L1_LOSS_BETA": 0.1,
            "BBOX_REG_LOSS_TYPE": "smooth_l1",
            "NORM": "",
        },
        "RESNETS": {
            "DEPTH": 50,
            "OUT_FEATURES": ["res4"],
            "NUM_GROUPS": 1,
            "NORM": "FrozenBN",
            "WIDTH_PER_GROUP": 64,
            "STRIDE_IN_1X1": True,
            "RES5_DILATION": 1,
            "RES2_OUT_CHANNELS": 256,
            "STEM_OUT_CHANNELS": 64,
            "DEFORM_ON_PER_STAGE": [False, False, False, False],
        },
    },
    "INPUT": {
        "MIN_SIZE_TRAIN": [800],
        "MIN_SIZE_TRAIN_SAMPLING": "choice",
        "MAX_SIZE_TRAIN": 1333,
        "MIN_SIZE_TEST": 800,
        "MAX_SIZE_TEST": 1333,
        "FORMAT": "BGR",
    },
    "TEST": {"DETECTIONS_PER_IMAGE": 100},
    "VIS_PERIOD": 0,
}


def _merge(base: dict, override: dict, where: str) -> dict:
    """Deep-merge `override` into a copy of `base` (dicts merge, everything else replaces)."""
    out = copy.deepcopy(base)
    for k, v in override.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v, f"{where}.{k}" if where else k)
        elif isinstance(out.get(k), dict) and v is not None:
            raise ValueError(f"detectron2 config key {where + '.' if where else ''}{k} must be a mapping, got {v!r}")
        else:
            out[k] = v
    return out


# Node types allowed in the `!!python/object/apply:eval` expressions of model-zoo yamls (e.g. RetinaNet's
# anchor sizes "[[x, x * 2**(1.0/3), x * 2**(2.0/3)] for x in [32, 64, 128, 256, 512]]"): numbers,
# lists/tuples, arithmetic and list comprehensions. Nothing else is evaluated, so no code runs.
_SAFE_EXPR_NODES = (
    ast.Expression,
    ast.List,
    ast.Tuple,
    ast.ListComp,
    ast.comprehension,
    ast.Name,
    ast.Constant,
    ast.BinOp,
    ast.UnaryOp,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.FloorDiv,
    ast.Pow,
    ast.Mod,
    ast.USub,
    ast.UAdd,
    ast.Load,
    ast.Store,
)


def _safe_eval(expr: str, source: str):
    """Evaluate an arithmetic/list expression; anything else raises ValueError naming `source`."""
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as e:
        raise ValueError(f"{source}: cannot parse !!python/object/apply:eval expression {expr!r}: {e}") from e
    bound = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    for n in ast.walk(tree):
        if not isinstance(n, _SAFE_EXPR_NODES) or (
            isinstance(n, ast.Constant) and not isinstance(n.value, (int, float))
        ):
            raise ValueError(
                f"{source}: !!python/object/apply:eval expression {expr!r} uses "
                f"{type(n).__name__}; only numbers, lists, arithmetic and list comprehensions are allowed"
            )
        if isinstance(n, ast.Name) and n.id not in bound:
            raise ValueError(f"{source}: !!python/object/apply:eval expression {expr!r} uses unknown name {n.id!r}")
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Pow):
            # Exponents must be small constant arithmetic, so that no expression can take forever.
            inner = list(ast.walk(n.right))
            if any(isinstance(m, ast.Name) or (isinstance(m, ast.BinOp) and isinstance(m.op, ast.Pow)) for m in inner):
                raise ValueError(
                    f"{source}: !!python/object/apply:eval expression {expr!r}: an exponent must be constant arithmetic"
                )
            exponent = eval(compile(ast.Expression(n.right), "<d2 yaml>", "eval"), {"__builtins__": {}}, {})
            if abs(exponent) > 64:
                raise ValueError(
                    f"{source}: !!python/object/apply:eval expression {expr!r}: exponent {exponent} is larger than 64"
                )
    return eval(compile(tree, "<d2 yaml>", "eval"), {"__builtins__": {}}, {})  # validated above


def _make_loader(source: str):
    class _D2Loader(yaml.SafeLoader):
        pass

    def construct_eval(loader, node):
        args = loader.construct_sequence(node)
        if len(args) != 1 or not isinstance(args[0], str):
            raise ValueError(f"{source}: !!python/object/apply:eval takes one string, got {args!r}")
        return _safe_eval(args[0], source)

    _D2Loader.add_constructor("tag:yaml.org,2002:python/object/apply:eval", construct_eval)
    return _D2Loader


def _parse(text: str, source: str) -> dict:
    try:
        data = yaml.load(text, Loader=_make_loader(source))  # a SafeLoader plus the restricted eval above
    except yaml.YAMLError as e:
        raise ValueError(f"{source}: invalid YAML: {e}") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{source}: a detectron2 config must be a YAML mapping, got {type(data).__name__}")
    return data


def _load_with_bases(text: str, base_dir: str | None, source: str, seen: tuple[str, ...]) -> dict:
    data = _parse(text, source)
    base = data.pop("_BASE_", None)
    if base is None:
        return data
    if base_dir is None:
        raise ValueError(f"{source}: has _BASE_: {base!r}; pass base_dir (the folder of the yaml) to resolve it")
    base_path = os.path.normpath(os.path.join(base_dir, os.path.expanduser(base)))
    if base_path in seen:
        raise ValueError(f"{source}: _BASE_ cycle through {base_path}")
    if not os.path.isfile(base_path):
        raise FileNotFoundError(f"{source}: _BASE_ file {base_path} not found")
    with open(base_path, encoding="utf-8") as f:
        parent = _load_with_bases(f.read(), os.path.dirname(base_path), base_path, seen + (base_path,))
    return _merge(parent, data, "")


def load_d2_yaml(yaml_text: str, base_dir: str | None = None, source: str = "<yaml>") -> dict:
    """Parse a detectron2 yaml, resolve ``_BASE_`` chains (relative to `base_dir`), fill defaults.

    Returns a plain nested dict (``{"MODEL": {...}, "INPUT": {...}, ...}``).
    """
    data = _load_with_bases(yaml_text, base_dir, source, ())
    return _merge(_D2_DEFAULTS, data, "")


class _Cfg:
    """Read-only access by dotted key, with errors naming the key and the source."""

    def __init__(self, data: dict, source: str):
        self.data, self.source = data, source

    def __call__(self, key: str) -> Any:
        node = self.data
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise KeyError(f"{self.source}: detectron2 config has no key {key}")
            node = node[part]
        return node

    def require(self, key: str, allowed, why: str = "") -> Any:
        value = self(key)
        if value not in allowed:
            raise ValueError(
                f"{self.source}: {key} = {value!r} is not supported by net_detr2's converter "
                f"(supported: {list(allowed)}){' ' + why if why else ''}"
            )
        return value


# ------------------------------------------------------------------------------------------------
# Backbone
# ------------------------------------------------------------------------------------------------
def _resnet_node(c: _Cfg, out_features: list[str]) -> DictConfig:
    if any(c("MODEL.RESNETS.DEFORM_ON_PER_STAGE")):
        raise ValueError(
            f"{c.source}: MODEL.RESNETS.DEFORM_ON_PER_STAGE = {c('MODEL.RESNETS.DEFORM_ON_PER_STAGE')} "
            "is not supported (no deformable convolutions in net_detr2)"
        )
    return L("net_detr2.modeling.backbone.build_resnet_backbone")(
        depth=int(c("MODEL.RESNETS.DEPTH")),
        in_channels=len(c("MODEL.PIXEL_MEAN")),
        norm=c("MODEL.RESNETS.NORM"),
        stem_out_channels=int(c("MODEL.RESNETS.STEM_OUT_CHANNELS")),
        res2_out_channels=int(c("MODEL.RESNETS.RES2_OUT_CHANNELS")),
        num_groups=int(c("MODEL.RESNETS.NUM_GROUPS")),
        width_per_group=int(c("MODEL.RESNETS.WIDTH_PER_GROUP")),
        stride_in_1x1=bool(c("MODEL.RESNETS.STRIDE_IN_1X1")),
        res5_dilation=int(c("MODEL.RESNETS.RES5_DILATION")),
        out_features=list(out_features),
        freeze_at=int(c("MODEL.BACKBONE.FREEZE_AT")),
    )


def _resnet_shapes(c: _Cfg) -> dict[str, tuple[int, int]]:
    """{name: (channels, stride)} of every ResNet stage for this config."""
    res2 = int(c("MODEL.RESNETS.RES2_OUT_CHANNELS"))
    shapes = {"stem": (int(c("MODEL.RESNETS.STEM_OUT_CHANNELS")), 4)}
    for k in range(2, 6):
        stride = 2**k
        if k == 5 and int(c("MODEL.RESNETS.RES5_DILATION")) == 2:
            stride = 16
        shapes[f"res{k}"] = (res2 * 2 ** (k - 2), stride)
    return shapes


def _backbone(c: _Cfg) -> tuple[DictConfig, dict[str, tuple[int, int]]]:
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
    out_ch = int(c("MODEL.FPN.OUT_CHANNELS"))
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
def _select(c: _Cfg, shapes, key: str) -> list[str]:
    names = list(c(key))
    missing = [f for f in names if f not in shapes]
    if not names or missing:
        raise ValueError(
            f"{c.source}: {key} = {names} names features the backbone does not produce (it gives {list(shapes)})"
        )
    return names


def _anchor_generator(c: _Cfg, strides: list[int]) -> tuple[DictConfig, int]:
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
        sizes=sizes, aspect_ratios=ratios, strides=list(strides), offset=float(c("MODEL.ANCHOR_GENERATOR.OFFSET"))
    )
    return node, per_level.pop()


def _box2box(weights) -> DictConfig:
    return L("net_detr2.modeling.box_regression.Box2BoxTransform")(weights=[float(w) for w in weights])


def _rpn(c: _Cfg, shapes) -> DictConfig:
    c.require("MODEL.PROPOSAL_GENERATOR.NAME", ["RPN"])
    c.require("MODEL.RPN.HEAD_NAME", ["StandardRPNHead"])
    in_features = _select(c, shapes, "MODEL.RPN.IN_FEATURES")
    channels = {shapes[f][0] for f in in_features}
    if len(channels) != 1:
        raise ValueError(f"{c.source}: MODEL.RPN.IN_FEATURES {in_features} have different channel counts {channels}")
    anchors, num_anchors = _anchor_generator(c, [shapes[f][1] for f in in_features])
    loss_w = float(c("MODEL.RPN.LOSS_WEIGHT"))
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
        batch_size_per_image=int(c("MODEL.RPN.BATCH_SIZE_PER_IMAGE")),
        positive_fraction=float(c("MODEL.RPN.POSITIVE_FRACTION")),
        pre_nms_topk=[int(c("MODEL.RPN.PRE_NMS_TOPK_TRAIN")), int(c("MODEL.RPN.PRE_NMS_TOPK_TEST"))],
        post_nms_topk=[int(c("MODEL.RPN.POST_NMS_TOPK_TRAIN")), int(c("MODEL.RPN.POST_NMS_TOPK_TEST"))],
        nms_thresh=float(c("MODEL.RPN.NMS_THRESH")),
        min_box_size=float(c("MODEL.PROPOSAL_GENERATOR.MIN_SIZE")),
        anchor_boundary_thresh=float(c("MODEL.RPN.BOUNDARY_THRESH")),
        loss_weight={"loss_rpn_cls": loss_w, "loss_rpn_loc": float(c("MODEL.RPN.BBOX_REG_LOSS_WEIGHT")) * loss_w},
        box_reg_loss_type=c("MODEL.RPN.BBOX_REG_LOSS_TYPE"),
        smooth_l1_beta=float(c("MODEL.RPN.SMOOTH_L1_BETA")),
    )


def _shape_spec(**kwargs) -> DictConfig:
    return L("net_detr2.layers.ShapeSpec")(**kwargs)


def _roi_heads(c: _Cfg, shapes) -> DictConfig:
    c.require("MODEL.ROI_HEADS.NAME", ["StandardROIHeads"], "(box-only FPN heads; Res5ROIHeads is not converted)")
    c.require("MODEL.ROI_BOX_HEAD.NAME", ["FastRCNNConvFCHead"])
    for key in ("TRAIN_ON_PRED_BOXES", "USE_FED_LOSS", "USE_SIGMOID_CE"):
        c.require(f"MODEL.ROI_BOX_HEAD.{key}", [False])
    in_features = _select(c, shapes, "MODEL.ROI_HEADS.IN_FEATURES")
    channels = {shapes[f][0] for f in in_features}
    if len(channels) != 1:
        raise ValueError(f"{c.source}: MODEL.ROI_HEADS.IN_FEATURES {in_features} have different channel counts")
    in_ch = channels.pop()
    res = int(c("MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION"))
    num_conv, conv_dim = int(c("MODEL.ROI_BOX_HEAD.NUM_CONV")), int(c("MODEL.ROI_BOX_HEAD.CONV_DIM"))
    num_fc, fc_dim = int(c("MODEL.ROI_BOX_HEAD.NUM_FC")), int(c("MODEL.ROI_BOX_HEAD.FC_DIM"))
    if num_fc > 0:
        head_out = _shape_spec(channels=fc_dim)
    else:
        head_out = _shape_spec(channels=conv_dim if num_conv > 0 else in_ch, height=res, width=res)
    num_classes = int(c("MODEL.ROI_HEADS.NUM_CLASSES"))
    return L("net_detr2.modeling.roi_heads.roi_heads.StandardROIHeads")(
        box_in_features=in_features,
        box_pooler=L("net_detr2.modeling.poolers.ROIPooler")(
            output_size=res,
            scales=[1.0 / shapes[f][1] for f in in_features],
            sampling_ratio=int(c("MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO")),
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
            num_classes=num_classes,
            test_score_thresh=float(c("MODEL.ROI_HEADS.SCORE_THRESH_TEST")),
            test_nms_thresh=float(c("MODEL.ROI_HEADS.NMS_THRESH_TEST")),
            test_topk_per_image=int(c("TEST.DETECTIONS_PER_IMAGE")),
            cls_agnostic_bbox_reg=bool(c("MODEL.ROI_BOX_HEAD.CLS_AGNOSTIC_BBOX_REG")),
            smooth_l1_beta=float(c("MODEL.ROI_BOX_HEAD.SMOOTH_L1_BETA")),
            box_reg_loss_type=c("MODEL.ROI_BOX_HEAD.BBOX_REG_LOSS_TYPE"),
            loss_weight={"loss_box_reg": float(c("MODEL.ROI_BOX_HEAD.BBOX_REG_LOSS_WEIGHT"))},
        ),
        num_classes=num_classes,
        batch_size_per_image=int(c("MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE")),
        positive_fraction=float(c("MODEL.ROI_HEADS.POSITIVE_FRACTION")),
        proposal_matcher=L("net_detr2.modeling.matcher.Matcher")(
            thresholds=[float(t) for t in c("MODEL.ROI_HEADS.IOU_THRESHOLDS")],
            labels=[int(x) for x in c("MODEL.ROI_HEADS.IOU_LABELS")],
            allow_low_quality_matches=False,
        ),
        proposal_append_gt=bool(c("MODEL.ROI_HEADS.PROPOSAL_APPEND_GT")),
    )


def _pixel_stats(c: _Cfg):
    mean = [float(x) for x in c("MODEL.PIXEL_MEAN")]
    std = [float(x) for x in c("MODEL.PIXEL_STD")]
    if len(mean) != len(std):
        raise ValueError(f"{c.source}: MODEL.PIXEL_MEAN has {len(mean)} values but MODEL.PIXEL_STD {len(std)}")
    return mean, std


def _check_box_only(c: _Cfg) -> None:
    for key in ("MODEL.MASK_ON", "MODEL.KEYPOINT_ON", "MODEL.LOAD_PROPOSALS"):
        c.require(key, [False], "(box-only detectors)")


def d2_config_to_lazy(yaml_text: str, base_dir: str | None = None, source: str = "<yaml>") -> DictConfig:
    """LazyCall node of the model a detectron2 yaml describes; ``instantiate(node)`` builds it.

    Args:
        yaml_text: the yaml (a full ``cfg.dump()`` or a model-zoo file).
        base_dir: folder against which ``_BASE_`` paths are resolved (the yaml's own folder).
        source: name used in error messages (e.g. the file path).
    """
    c = _Cfg(load_d2_yaml(yaml_text, base_dir, source), source)
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
            vis_period=int(c("VIS_PERIOD")),
        )

    in_features = _select(c, shapes, "MODEL.RETINANET.IN_FEATURES")
    anchors, num_anchors = _anchor_generator(c, [shapes[f][1] for f in in_features])
    channels = shapes[in_features[0]][0]
    return L("net_detr2.modeling.meta_arch.retinanet.RetinaNet")(
        backbone=backbone,
        head=L("net_detr2.modeling.meta_arch.retinanet.RetinaNetHead")(
            input_shape=[_shape_spec(channels=shapes[f][0], stride=shapes[f][1]) for f in in_features],
            num_classes=int(c("MODEL.RETINANET.NUM_CLASSES")),
            num_anchors=num_anchors,
            conv_dims=[channels] * int(c("MODEL.RETINANET.NUM_CONVS")),
            norm=c("MODEL.RETINANET.NORM"),
            prior_prob=float(c("MODEL.RETINANET.PRIOR_PROB")),
        ),
        head_in_features=in_features,
        anchor_generator=anchors,
        box2box_transform=_box2box(c("MODEL.RETINANET.BBOX_REG_WEIGHTS")),
        anchor_matcher=L("net_detr2.modeling.matcher.Matcher")(
            thresholds=[float(t) for t in c("MODEL.RETINANET.IOU_THRESHOLDS")],
            labels=[int(x) for x in c("MODEL.RETINANET.IOU_LABELS")],
            allow_low_quality_matches=True,
        ),
        num_classes=int(c("MODEL.RETINANET.NUM_CLASSES")),
        focal_loss_alpha=float(c("MODEL.RETINANET.FOCAL_LOSS_ALPHA")),
        focal_loss_gamma=float(c("MODEL.RETINANET.FOCAL_LOSS_GAMMA")),
        smooth_l1_beta=float(c("MODEL.RETINANET.SMOOTH_L1_LOSS_BETA")),
        box_reg_loss_type=c("MODEL.RETINANET.BBOX_REG_LOSS_TYPE"),
        test_score_thresh=float(c("MODEL.RETINANET.SCORE_THRESH_TEST")),
        test_topk_candidates=int(c("MODEL.RETINANET.TOPK_CANDIDATES_TEST")),
        test_nms_thresh=float(c("MODEL.RETINANET.NMS_THRESH_TEST")),
        max_detections_per_image=int(c("TEST.DETECTIONS_PER_IMAGE")),
        pixel_mean=mean,
        pixel_std=std,
        input_format=fmt,
        vis_period=int(c("VIS_PERIOD")),
    )


def d2_input_config(yaml_text: str, base_dir: str | None = None, source: str = "<yaml>") -> dict[str, Any]:
    """The resize settings of ``INPUT`` as plain values.

    Returns ``{"format", "min_size_test", "max_size_test", "min_size_train", "max_size_train",
    "min_size_train_sampling"}``; test-time resizing is ResizeShortestEdge(min_size_test, max_size_test).
    """
    c = _Cfg(load_d2_yaml(yaml_text, base_dir, source), source)
    min_train = c("INPUT.MIN_SIZE_TRAIN")
    return {
        "format": c("INPUT.FORMAT"),
        "min_size_test": int(c("INPUT.MIN_SIZE_TEST")),
        "max_size_test": int(c("INPUT.MAX_SIZE_TEST")),
        "min_size_train": [int(x) for x in (min_train if isinstance(min_train, (list, tuple)) else [min_train])],
        "max_size_train": int(c("INPUT.MAX_SIZE_TRAIN")),
        "min_size_train_sampling": c("INPUT.MIN_SIZE_TRAIN_SAMPLING"),
    }


def d2_config_to_lazy_experiment(yaml_text: str, base_dir: str | None = None, source: str = "<yaml>") -> DictConfig:
    """``{"model": <d2_config_to_lazy node>, "input": <d2_input_config dict>}`` as one DictConfig."""
    model = d2_config_to_lazy(yaml_text, base_dir, source)
    cfg = DictConfig(
        {"model": model, "input": d2_input_config(yaml_text, base_dir, source)}, flags={"allow_objects": True}
    )
    return cfg
