"""Parity with detectron2: same weights + same image -> same tensors at every stage (../shared/reference)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import yaml

from net_detr2.config import LazyConfig, instantiate
from net_detr2.structures import Boxes, pairwise_iou

REPO = Path(__file__).resolve().parents[1]


def load_record(main_path: Path) -> dict:
    """A record plus its companion files (the loader of the reference README)."""
    rec = torch.load(main_path, map_location="cpu", weights_only=True)
    folder = os.path.dirname(main_path)
    sliced = {}
    for name in rec["extra_files"]:
        part = torch.load(os.path.join(folder, name), map_location="cpu", weights_only=True)
        part.pop("part_of")
        if "batch_index" in part:
            i = part.pop("batch_index")
            for k, v in part.items():
                sliced.setdefault(k, {})[i] = v
        else:
            rec.update(part)
    for k, by_i in sliced.items():
        chunks = [by_i[i] for i in sorted(by_i)]
        if isinstance(chunks[0], list):
            rec[k] = [torch.cat([c[lv] for c in chunks]) for lv in range(len(chunks[0]))]
        else:
            rec[k] = torch.cat(chunks)
    return rec


# ------------------------------------------------------------------------------------------
# building the model: from our LazyConfig model files, narrowed like the reference config
# ------------------------------------------------------------------------------------------
def _narrow_common(model, m: dict) -> None:
    r = m["RESNETS"]
    bu = model.backbone.bottom_up
    bu.stem_out_channels = r["STEM_OUT_CHANNELS"]
    bu.res2_out_channels = r["RES2_OUT_CHANNELS"]
    bu.num_groups = r["NUM_GROUPS"]
    bu.width_per_group = r["WIDTH_PER_GROUP"]
    bu.depth = r["DEPTH"]
    bu.stride_in_1x1 = r["STRIDE_IN_1X1"]
    model.backbone.out_channels = m["FPN"]["OUT_CHANNELS"]
    model.pixel_mean = m["PIXEL_MEAN"]
    model.pixel_std = m["PIXEL_STD"]


def build_from_model_zoo_config(cfg_yaml: str) -> torch.nn.Module:
    """Our model_zoo-equivalent LazyConfig, edited with the record's widths and test thresholds."""
    m = yaml.safe_load(cfg_yaml)["MODEL"]
    fpn_ch = m["FPN"]["OUT_CHANNELS"]
    if m["META_ARCHITECTURE"] == "GeneralizedRCNN":
        model = LazyConfig.load(str(REPO / "configs/common/models/faster_rcnn_fpn.py"), "model")
        _narrow_common(model, m)
        model.proposal_generator.head.in_channels = fpn_ch
        rh = model.roi_heads
        rh.box_head.input_shape.channels = fpn_ch
        rh.box_head.fc_dims = [m["ROI_BOX_HEAD"]["FC_DIM"]] * m["ROI_BOX_HEAD"]["NUM_FC"]
        rh.box_predictor.input_shape.channels = m["ROI_BOX_HEAD"]["FC_DIM"]
        rh.box_predictor.test_score_thresh = m["ROI_HEADS"]["SCORE_THRESH_TEST"]
    else:
        model = LazyConfig.load(str(REPO / "configs/common/models/retinanet.py"), "model")
        _narrow_common(model, m)
        model.backbone.top_block.in_channels = m["RESNETS"]["RES2_OUT_CHANNELS"] * 8
        model.backbone.top_block.out_channels = fpn_ch
        model.head.input_shape = [{"channels": fpn_ch}] * 5
        model.head.conv_dims = [fpn_ch] * m["RETINANET"]["NUM_CONVS"]
        model.test_score_thresh = m["RETINANET"]["SCORE_THRESH_TEST"]
    model = instantiate(model)
    return model


def build_from_compat(cfg_yaml: str) -> torch.nn.Module:
    from net_detr2.compat import d2_config_to_lazy

    return instantiate(d2_config_to_lazy(cfg_yaml))


BUILDERS = {"model_zoo_config": build_from_model_zoo_config, "compat": build_from_compat}


# ------------------------------------------------------------------------------------------
# comparison helpers
# ------------------------------------------------------------------------------------------
def assert_close_rel(ours: torch.Tensor, ref: torch.Tensor, what: str, rel: float = 1e-4) -> None:
    assert ours.shape == ref.shape, f"{what}: shape {tuple(ours.shape)} != reference {tuple(ref.shape)}"
    tol = rel * max(1.0, ref.abs().max().item())
    err = (ours - ref).abs().max().item()
    assert err <= tol, f"{what}: max |diff| {err:.3g} > {tol:.3g}"


def match_rows(
    ours_boxes,
    ours_scores,
    ours_classes,
    ref_boxes,
    ref_scores,
    ref_classes,
    what: str,
    box_tol=1e-2,
    score_tol=1e-4,
    tie_tol=1e-4,
) -> torch.Tensor:
    """Index into ours for every reference row; rows may only be permuted among near-tied scores.

    Row i matches itself when boxes/scores/classes agree; otherwise a one-to-one match
    (same class, IoU > 0.99, |score diff| < score_tol) must exist, and the swapped rows' reference
    scores must be near-equal (``tie_tol``).
    """
    assert len(ours_boxes) == len(ref_boxes), f"{what}: {len(ours_boxes)} rows, reference has {len(ref_boxes)}"
    n = len(ref_boxes)
    same = ((ours_boxes - ref_boxes).abs().amax(dim=1) <= box_tol) & ((ours_scores - ref_scores).abs() <= score_tol)
    same &= ours_classes == ref_classes
    perm = torch.arange(n)
    if same.all():
        return perm
    iou = pairwise_iou(Boxes(ref_boxes), Boxes(ours_boxes))
    ok = (iou > 0.99) & ((ref_scores[:, None] - ours_scores[None, :]).abs() < score_tol)
    ok &= ref_classes[:, None] == ours_classes[None, :]
    used = torch.zeros(n, dtype=torch.bool)
    for i in range(n):  # test code: a greedy assignment over at most 1000 rows is fine
        if same[i] and not used[i]:
            used[i] = True
            continue
        cands = torch.nonzero(ok[i] & ~used).flatten()
        assert len(cands) > 0, f"{what}: reference row {i} (score {ref_scores[i]:.6f}) has no match in ours"
        j = cands[(ours_scores[cands] - ref_scores[i]).abs().argmin()].item()
        used[j] = True
        perm[i] = j
    moved = perm != torch.arange(n)
    gaps = (ref_scores[moved] - ref_scores[perm[moved]]).abs()
    assert gaps.numel() == 0 or gaps.max() <= tie_tol, f"{what}: rows permuted across score gaps up to {gaps.max():.3g}"
    return perm


class Recorder:
    """Forward hooks that keep the outputs of named submodules."""

    def __init__(self, model, names):
        self.out = {}
        self.handles = []
        mods = dict(model.named_modules())
        for n in names:
            self.handles.append(mods[n].register_forward_hook(self._hook(n)))

    def _hook(self, name):
        def f(module, inputs, output):
            self.out[name] = output

        return f

    def remove(self):
        for h in self.handles:
            h.remove()


def _run(model, rec):
    model.eval()
    inputs = [{"image": rec["image"], "height": rec["height"], "width": rec["width"]}]
    with torch.no_grad():
        images = model.preprocess_image(inputs)
        out = model(inputs)
    return images, out


# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def frcnn_rec(reference_dir):
    return load_record(reference_dir / "parity_frcnn_r50_fpn.pt")


@pytest.fixture(scope="module")
def retina_rec(reference_dir):
    return load_record(reference_dir / "parity_retinanet_r50_fpn.pt")


@pytest.mark.parametrize("builder", sorted(BUILDERS))
def test_faster_rcnn_parity(frcnn_rec, builder):
    rec = frcnn_rec
    model = BUILDERS[builder](rec["config"])
    model.load_state_dict(rec["state_dict"], strict=True)
    assert torch.equal(model.pixel_mean, rec["pixel_mean"]) and torch.equal(model.pixel_std, rec["pixel_std"])
    cell = model.proposal_generator.anchor_generator.cell_anchors
    for lv, ref in enumerate(rec["cell_anchors"]):
        assert_close_rel(cell[lv], ref, f"cell_anchors[{lv}]", rel=1e-6)

    hooks = Recorder(
        model, ["backbone", "proposal_generator.rpn_head", "proposal_generator", "roi_heads.box_predictor"]
    )
    images, out = _run(model, rec)
    hooks.remove()
    assert images.image_sizes == [tuple(rec["image_size"])]
    assert_close_rel(images.tensor, rec["preprocessed"], "preprocessed")
    for name, ref in rec["features"].items():
        assert_close_rel(hooks.out["backbone"][name], ref, f"features[{name}]")
    logits, deltas = hooks.out["proposal_generator.rpn_head"]
    for lv in range(len(logits)):
        assert_close_rel(logits[lv], rec["rpn_objectness_logits"][lv], f"rpn logits[{lv}]")
        assert_close_rel(deltas[lv], rec["rpn_anchor_deltas"][lv], f"rpn deltas[{lv}]")

    props = hooks.out["proposal_generator"][0][0]
    n = len(rec["proposal_logits"])
    perm = match_rows(
        props.proposal_boxes.tensor,
        props.objectness_logits,
        torch.zeros(len(props), dtype=torch.long),
        rec["proposal_boxes"],
        rec["proposal_logits"],
        torch.zeros(n, dtype=torch.long),
        "proposals",
    )

    cls_logits, box_deltas = hooks.out["roi_heads.box_predictor"]
    assert (cls_logits[perm] - rec["box_cls_logits"]).abs().max() <= 1e-3, "box_cls_logits differ"
    assert (box_deltas[perm] - rec["box_deltas"]).abs().max() <= 1e-3, "box_deltas differ"

    inst = out[0]["instances"]
    assert inst.image_size == (rec["height"], rec["width"])
    match_rows(
        inst.pred_boxes.tensor,
        inst.scores,
        inst.pred_classes,
        rec["pred_boxes"],
        rec["scores"],
        rec["pred_classes"],
        "detections",
    )


@pytest.mark.parametrize("builder", sorted(BUILDERS))
def test_retinanet_parity(retina_rec, builder):
    rec = retina_rec
    model = BUILDERS[builder](rec["config"])
    model.load_state_dict(rec["state_dict"], strict=True)
    for lv, ref in enumerate(rec["cell_anchors"]):
        assert_close_rel(model.anchor_generator.cell_anchors[lv], ref, f"cell_anchors[{lv}]", rel=1e-6)

    hooks = Recorder(model, ["backbone", "head"])
    images, out = _run(model, rec)
    hooks.remove()
    assert_close_rel(images.tensor, rec["preprocessed"], "preprocessed")
    for name, ref in rec["features"].items():
        assert_close_rel(hooks.out["backbone"][name], ref, f"features[{name}]")
    logits, deltas = hooks.out["head"]
    for lv in range(len(logits)):
        assert_close_rel(logits[lv], rec["pred_logits"][lv], f"pred_logits[{lv}]")
        assert_close_rel(deltas[lv], rec["pred_anchor_deltas"][lv], f"pred_anchor_deltas[{lv}]")

    inst = out[0]["instances"]
    assert inst.image_size == (rec["height"], rec["width"])
    match_rows(
        inst.pred_boxes.tensor,
        inst.scores,
        inst.pred_classes,
        rec["pred_boxes"],
        rec["scores"],
        rec["pred_classes"],
        "detections",
    )
