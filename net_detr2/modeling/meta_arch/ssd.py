"""SSD: the single-shot multibox detector (Liu et al., ECCV 2016) as a detectron2-style meta-architecture.

Parts, in data-flow order:

* `SSDBackbone`: a bottom-up backbone (VGG-16 or ResNet) plus SSD's extra layers (1x1 reduce, 3x3
  stride-2 or valid conv), giving the 6 (300 input) or 7 (512 input) pyramid levels.
* `DefaultBoxGenerator`: SSD's default boxes ("priors"): per level a min size s_k, sqrt(s_k*s_k+1) and
  s_k with each aspect ratio r and 1/r, centred on a grid with the level's step, clipped to the image.
* `SSDHead`: one 3x3 conv per level for box deltas and one for class logits.
* `match_default_boxes` / `multibox_loss`: best prior per ground truth + IoU >= 0.5 matching, smooth-L1 +
  softmax cross-entropy with 3:1 hard negative mining, normalised by the number of positives.
* `SSD`: the `list[dict]` in / `Instances` out detector tying them together.

Class convention (as detectron2's Fast R-CNN): foreground classes are 0..K-1 and *background is K*.
Box deltas are SSD's encoding with variances (0.1, 0.2), i.e. `Box2BoxTransform(weights=(10, 10, 5, 5))`.
"""

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ...layers import Conv2d, ShapeSpec, batched_nms, get_norm
from ...structures import Boxes, ImageList, Instances, pairwise_iou
from ..backbone import Backbone
from ..box_regression import Box2BoxTransform
from ..postprocessing import detector_postprocess
from ..registry import META_ARCH_REGISTRY

__all__ = [
    "SSD",
    "SSDBackbone",
    "SSDHead",
    "DefaultBoxGenerator",
    "ssd_default_box_sizes",
    "ssd_extra_layers",
    "match_default_boxes",
    "multibox_loss",
]

# ---------------------------------------------------------------------------------------------
# Default-box presets of the original SSD release (they differ by dataset and input size).
# ---------------------------------------------------------------------------------------------
_RATIOS_300 = ((2,), (2, 3), (2, 3), (2, 3), (2,), (2,))
_RATIOS_512 = ((2,), (2, 3), (2, 3), (2, 3), (2, 3), (2,), (2,))
_PRESETS = {
    (300, "coco"): dict(
        steps=(8, 16, 32, 64, 100, 300),
        min_sizes=(21, 45, 99, 153, 207, 261),
        max_sizes=(45, 99, 153, 207, 261, 315),
        aspect_ratios=_RATIOS_300,
    ),
    (300, "voc"): dict(
        steps=(8, 16, 32, 64, 100, 300),
        min_sizes=(30, 60, 111, 162, 213, 264),
        max_sizes=(60, 111, 162, 213, 264, 315),
        aspect_ratios=_RATIOS_300,
    ),
    (512, "coco"): dict(
        steps=(8, 16, 32, 64, 128, 256, 512),
        min_sizes=(20.48, 51.2, 133.12, 215.04, 296.96, 378.88, 460.8),
        max_sizes=(51.2, 133.12, 215.04, 296.96, 378.88, 460.8, 542.72),
        aspect_ratios=_RATIOS_512,
    ),
    (512, "voc"): dict(
        steps=(8, 16, 32, 64, 128, 256, 512),
        min_sizes=(35.84, 76.8, 153.6, 230.4, 307.2, 384.0, 460.8),
        max_sizes=(76.8, 153.6, 230.4, 307.2, 384.0, 460.8, 537.6),
        aspect_ratios=_RATIOS_512,
    ),
}


def ssd_default_box_sizes(input_size: int, dataset: str) -> dict[str, tuple]:
    """The SSD release's default-box settings for ``input_size`` in {300, 512} and ``dataset`` in {coco, voc}.

    Returns:
        dict with ``steps``, ``min_sizes``, ``max_sizes`` (pixels) and ``aspect_ratios`` per level, ready to
        be passed as keyword arguments to `DefaultBoxGenerator`.
    """
    key = (int(input_size), str(dataset).lower())
    if key not in _PRESETS:
        raise ValueError(
            f"ssd_default_box_sizes: no preset for input_size={input_size!r}, dataset={dataset!r}; "
            f"known: {sorted(_PRESETS)}"
        )
    return dict(_PRESETS[key])


def ssd_extra_layers(input_size: int, width_mult: float = 1.0) -> list[tuple[int, int, int, int, int]]:
    """SSD's extra layers after fc7 as (reduce channels, out channels, kernel, stride, padding).

    300: 19 -> 10 -> 5 -> 3 -> 1 (two stride-2 convs, two valid 3x3 convs).
    512: 32 -> 16 -> 8 -> 4 -> 2 -> 1 (four stride-2 convs, one 4x4 conv with padding 1).
    """
    if input_size == 300:
        spec = [(256, 512, 3, 2, 1), (128, 256, 3, 2, 1), (128, 256, 3, 1, 0), (128, 256, 3, 1, 0)]
    elif input_size == 512:
        spec = [(256, 512, 3, 2, 1), (128, 256, 3, 2, 1), (128, 256, 3, 2, 1), (128, 256, 3, 2, 1), (128, 256, 4, 1, 1)]
    else:
        raise ValueError(f"ssd_extra_layers: input_size must be 300 or 512, got {input_size!r}")
    s = lambda c: max(4, int(round(c * width_mult)))  # noqa: E731
    return [(s(m), s(o), k, st, p) for m, o, k, st, p in spec]


# ---------------------------------------------------------------------------------------------
# Backbone with extra layers
# ---------------------------------------------------------------------------------------------
class SSDBackbone(Backbone):
    """A bottom-up backbone followed by SSD's extra layers.

    Args:
        bottom_up: any `Backbone`; its ``in_features`` outputs are the first pyramid levels.
        in_features: names of bottom-up outputs used as levels, shallow to deep; the extra layers start
            from the last one.
        extra_layers: list of (reduce channels, out channels, kernel, stride, padding) (see
            `ssd_extra_layers`); each is conv1x1+ReLU then convKxK+ReLU. Outputs are named ``extra1``...
        norm: normalisation inside the extra layers ("" as in SSD; "BN" for from-scratch training).
    """

    def __init__(
        self, *, bottom_up: Backbone, in_features: Sequence[str], extra_layers: Sequence[Sequence[int]], norm: str = ""
    ):
        super().__init__()
        self.bottom_up = bottom_up
        shapes = bottom_up.output_shape()
        for f in in_features:
            if f not in shapes:
                raise ValueError(f"SSDBackbone: in_feature {f!r} is not a bottom-up output; available: {list(shapes)}")
        self.in_features = list(in_features)
        self._out_features = list(in_features)
        self._out_feature_channels = {f: shapes[f].channels for f in in_features}
        self._out_feature_strides = {f: shapes[f].stride for f in in_features}
        c_in = shapes[in_features[-1]].channels
        stride = shapes[in_features[-1]].stride
        self.extras = nn.ModuleList()
        for i, (mid, out, k, s, p) in enumerate(extra_layers, start=1):
            block = nn.Sequential(
                Conv2d(
                    c_in, mid, kernel_size=1, bias=not norm, norm=get_norm(norm, mid), activation=nn.ReLU(inplace=True)
                ),
                Conv2d(
                    mid,
                    out,
                    kernel_size=k,
                    stride=s,
                    padding=p,
                    bias=not norm,
                    norm=get_norm(norm, out),
                    activation=nn.ReLU(inplace=True),
                ),
            )
            self.extras.append(block)
            name = f"extra{i}"
            stride = stride * s
            self._out_features.append(name)
            self._out_feature_channels[name] = out
            self._out_feature_strides[name] = stride
            c_in = out
        for m in self.extras.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        bottom = self.bottom_up(x)
        out = {f: bottom[f] for f in self.in_features}
        y = out[self.in_features[-1]]
        for i, block in enumerate(self.extras, start=1):
            y = block(y)
            out[f"extra{i}"] = y
        return out

    def output_shape(self) -> dict[str, ShapeSpec]:
        return {
            f: ShapeSpec(channels=self._out_feature_channels[f], stride=self._out_feature_strides[f])
            for f in self._out_features
        }


# ---------------------------------------------------------------------------------------------
# Default boxes
# ---------------------------------------------------------------------------------------------
class DefaultBoxGenerator(nn.Module):
    """SSD default boxes for every level, as (P, 4) XYXY boxes in input-image pixels.

    Order: level, then row, then column, then box (min square, sqrt(min*max) square, then for each
    aspect ratio r the boxes r and 1/r) -- the order `SSDHead` flattens its predictions in.

    Args:
        min_sizes, max_sizes: per level, pixels (see `ssd_default_box_sizes`).
        aspect_ratios: per level, the ratios r >= 1 (each gives two boxes, w/h = r and 1/r).
        steps: per level, the centre spacing in pixels; None = image size / feature size.
        clip: clip the boxes to the image.
        offset: centre offset in units of the step (0.5 = cell centre).
    """

    def __init__(
        self,
        *,
        min_sizes: Sequence[float],
        max_sizes: Sequence[float],
        aspect_ratios: Sequence[Sequence[float]],
        steps: Sequence[float] | None = None,
        clip: bool = True,
        offset: float = 0.5,
    ):
        super().__init__()
        n = len(min_sizes)
        if len(max_sizes) != n or len(aspect_ratios) != n or (steps is not None and len(steps) != n):
            raise ValueError(
                "DefaultBoxGenerator: min_sizes, max_sizes, aspect_ratios (and steps) need one entry per level; got "
                f"{len(min_sizes)}, {len(max_sizes)}, {len(aspect_ratios)}, {None if steps is None else len(steps)}"
            )
        for m, M in zip(min_sizes, max_sizes):
            if not 0 < m <= M:
                raise ValueError(f"DefaultBoxGenerator: need 0 < min_size <= max_size, got {m} and {M}")
        self.min_sizes = [float(m) for m in min_sizes]
        self.max_sizes = [float(m) for m in max_sizes]
        self.aspect_ratios = [tuple(float(r) for r in rs) for rs in aspect_ratios]
        self.steps = None if steps is None else [float(s) for s in steps]
        self.clip = clip
        self.offset = offset
        self._cache: dict[tuple, torch.Tensor] = {}

    @property
    def num_levels(self) -> int:
        return len(self.min_sizes)

    @property
    def num_anchors(self) -> list[int]:
        """Boxes per location for each level."""
        return [2 + 2 * len(r) for r in self.aspect_ratios]

    def box_sizes(self, level: int) -> torch.Tensor:
        """(A, 2) widths and heights of the boxes of one level, in generation order."""
        m, M = self.min_sizes[level], self.max_sizes[level]
        sizes = [(m, m), (math.sqrt(m * M),) * 2]
        for r in self.aspect_ratios[level]:
            sr = math.sqrt(r)
            sizes += [(m * sr, m / sr), (m / sr, m * sr)]
        return torch.tensor(sizes, dtype=torch.float32)

    def forward(
        self, feature_shapes: Sequence[tuple[int, int]], image_size: tuple[int, int], device=None
    ) -> torch.Tensor:
        """
        Args:
            feature_shapes: (H_l, W_l) of every level.
            image_size: (height, width) of the network input.
        Returns:
            (P, 4) float32 XYXY default boxes, P = sum_l H_l * W_l * A_l.
        """
        if len(feature_shapes) != self.num_levels:
            raise ValueError(
                f"DefaultBoxGenerator: got {len(feature_shapes)} feature maps but default boxes are configured for "
                f"{self.num_levels} levels"
            )
        key = (tuple(tuple(int(v) for v in s) for s in feature_shapes), tuple(int(v) for v in image_size), str(device))
        if key not in self._cache:
            self._cache[key] = self._generate(feature_shapes, image_size).to(device)
        return self._cache[key]

    def _generate(self, feature_shapes, image_size) -> torch.Tensor:
        img_h, img_w = float(image_size[0]), float(image_size[1])
        all_boxes = []
        for level, (h, w) in enumerate(feature_shapes):
            step_y = self.steps[level] if self.steps is not None else img_h / h
            step_x = self.steps[level] if self.steps is not None else img_w / w
            cy = (torch.arange(h, dtype=torch.float32) + self.offset) * step_y
            cx = (torch.arange(w, dtype=torch.float32) + self.offset) * step_x
            cy, cx = torch.meshgrid(cy, cx, indexing="ij")
            centers = torch.stack([cx, cy], dim=-1).reshape(h, w, 1, 2)
            half = self.box_sizes(level).reshape(1, 1, -1, 2) / 2
            boxes = torch.cat([centers - half, centers + half], dim=-1).reshape(-1, 4)
            all_boxes.append(boxes)
        boxes = torch.cat(all_boxes, dim=0)
        if self.clip:
            boxes[:, 0::2] = boxes[:, 0::2].clamp(0, img_w)
            boxes[:, 1::2] = boxes[:, 1::2].clamp(0, img_h)
        return boxes


# ---------------------------------------------------------------------------------------------
# Head
# ---------------------------------------------------------------------------------------------
class SSDHead(nn.Module):
    """Per level, a 3x3 conv predicting A*(K+1) class logits and one predicting A*4 box deltas.

    Args:
        in_channels: channels of each level.
        num_anchors: default boxes per location of each level.
        num_classes: K foreground classes (logits have K+1 entries, background last).
    """

    def __init__(self, *, in_channels: Sequence[int], num_anchors: Sequence[int], num_classes: int):
        super().__init__()
        if len(in_channels) != len(num_anchors):
            raise ValueError(
                f"SSDHead: in_channels ({len(in_channels)} levels) and num_anchors ({len(num_anchors)}) differ"
            )
        self.num_classes = num_classes
        self.cls_score = nn.ModuleList(
            nn.Conv2d(c, a * (num_classes + 1), kernel_size=3, padding=1) for c, a in zip(in_channels, num_anchors)
        )
        self.bbox_pred = nn.ModuleList(
            nn.Conv2d(c, a * 4, kernel_size=3, padding=1) for c, a in zip(in_channels, num_anchors)
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, features: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Returns:
            cls_logits: (N, P, K+1); box_deltas: (N, P, 4); P in `DefaultBoxGenerator` order.
        """
        logits, deltas = [], []
        for x, cls, box in zip(features, self.cls_score, self.bbox_pred):
            n = x.shape[0]
            # (N, A*C, H, W) -> (N, H, W, A*C) -> (N, H*W*A, C): location-major, box-minor.
            logits.append(cls(x).permute(0, 2, 3, 1).reshape(n, -1, self.num_classes + 1))
            deltas.append(box(x).permute(0, 2, 3, 1).reshape(n, -1, 4))
        return torch.cat(logits, dim=1), torch.cat(deltas, dim=1)


# ---------------------------------------------------------------------------------------------
# Matching and loss (pure functions)
# ---------------------------------------------------------------------------------------------
def match_default_boxes(iou: torch.Tensor, threshold: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """SSD matching: each prior takes its best ground truth if IoU >= threshold, and every ground truth
    additionally claims its single best prior (whatever the IoU).

    Args:
        iou: (G, P) IoU between ground truths and priors.
    Returns:
        matched_idxs: (P,) int64 index of the matched ground truth (0 where unmatched);
        is_fg: (P,) bool.
    """
    G, P = iou.shape
    if G == 0:
        return iou.new_zeros(P, dtype=torch.long), iou.new_zeros(P, dtype=torch.bool)
    best_iou, matched = iou.max(dim=0)
    best_prior = iou.argmax(dim=1)  # (G,)
    gt_ids = torch.arange(G, device=iou.device)
    # A prior that is the best one for several ground truths goes to the highest index (deterministic).
    matched = matched.scatter_reduce(0, best_prior, gt_ids, reduce="amax", include_self=False)
    best_iou = best_iou.scatter(0, best_prior, best_iou.new_full((G,), 2.0))
    return matched, best_iou >= threshold


def multibox_loss(
    cls_logits: torch.Tensor,
    box_deltas: torch.Tensor,
    gt_labels: torch.Tensor,
    gt_deltas: torch.Tensor,
    neg_pos_ratio: float = 3.0,
    smooth_l1_beta: float = 1.0,
) -> dict[str, torch.Tensor]:
    """SSD's multibox loss with hard negative mining.

    Per image, the ``neg_pos_ratio * num_pos`` negatives (at most all of them) with the largest
    background cross-entropy are kept. Both terms are summed and divided by the total number of
    positives in the batch (at least 1).

    Args:
        cls_logits: (N, P, K+1); background is index K.
        box_deltas: (N, P, 4) predicted deltas.
        gt_labels: (N, P) int64 in [0, K]; K = background.
        gt_deltas: (N, P, 4) target deltas (only read at positives).
    Returns:
        {"loss_cls": scalar, "loss_box_reg": scalar}.
    """
    N, P, C = cls_logits.shape
    background = C - 1
    pos = gt_labels != background
    num_pos = pos.sum(dim=1, keepdim=True)  # (N, 1)
    ce = F.cross_entropy(cls_logits.reshape(-1, C), gt_labels.reshape(-1), reduction="none").reshape(N, P)
    with torch.no_grad():
        # Rank negatives by their loss (positives pushed last) and keep the top num_neg per image.
        mining = ce.detach().masked_fill(pos, float("-inf"))
        order = mining.argsort(dim=1, descending=True)
        rank = order.argsort(dim=1)
        num_neg = torch.minimum(num_pos * neg_pos_ratio, P - num_pos).to(rank.dtype)
        neg = rank < num_neg
    normalizer = num_pos.sum().clamp(min=1).to(cls_logits.dtype)
    loss_cls = ce[pos | neg].sum() / normalizer
    loss_box = F.smooth_l1_loss(box_deltas[pos], gt_deltas[pos], beta=smooth_l1_beta, reduction="sum") / normalizer
    return {"loss_cls": loss_cls, "loss_box_reg": loss_box}


# ---------------------------------------------------------------------------------------------
# Meta-architecture
# ---------------------------------------------------------------------------------------------
@META_ARCH_REGISTRY.register()
class SSD(nn.Module):
    """Single-shot multibox detector.

    Args:
        backbone: a `Backbone` whose outputs (in ``in_features`` order) are the pyramid levels.
        head: `SSDHead` (or compatible) for those levels.
        prior_generator: `DefaultBoxGenerator`.
        num_classes: K foreground classes.
        pixel_mean, pixel_std: per-channel normalisation, in ``input_format`` channel order.
        in_features: backbone outputs to use, shallow to deep (default: all, in output_shape order).
        input_format: "BGR" or "RGB".
        box_variances: SSD's (center, size) variances; deltas are divided by them.
        iou_threshold: matching threshold (0.5).
        neg_pos_ratio: hard negative mining ratio (3).
        smooth_l1_beta: beta of the smooth-L1 box loss (1.0 as in SSD).
        test_score_thresh: per-class score threshold at inference (0.01).
        test_topk_candidates: per-class candidates kept before NMS (400).
        test_nms_thresh: per-class NMS IoU (0.45).
        max_detections_per_image: 200.
    """

    def __init__(
        self,
        *,
        backbone: Backbone,
        head: nn.Module,
        prior_generator: DefaultBoxGenerator,
        num_classes: int,
        pixel_mean: Sequence[float],
        pixel_std: Sequence[float],
        in_features: Sequence[str] | None = None,
        input_format: str = "BGR",
        box_variances: tuple[float, float] = (0.1, 0.2),
        iou_threshold: float = 0.5,
        neg_pos_ratio: float = 3.0,
        smooth_l1_beta: float = 1.0,
        test_score_thresh: float = 0.01,
        test_topk_candidates: int = 400,
        test_nms_thresh: float = 0.45,
        max_detections_per_image: int = 200,
    ):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.prior_generator = prior_generator
        self.num_classes = num_classes
        shapes = backbone.output_shape()
        self.in_features = list(in_features) if in_features is not None else list(shapes)
        for f in self.in_features:
            if f not in shapes:
                raise ValueError(f"SSD: in_feature {f!r} is not a backbone output; available: {list(shapes)}")
        if len(self.in_features) != prior_generator.num_levels:
            raise ValueError(
                f"SSD: {len(self.in_features)} feature levels {self.in_features} but the default boxes are configured "
                f"for {prior_generator.num_levels} levels"
            )
        if input_format not in ("BGR", "RGB"):
            raise ValueError(f"SSD: input_format must be 'BGR' or 'RGB', got {input_format!r}")
        self.input_format = input_format
        cv, sv = box_variances
        self.box2box_transform = Box2BoxTransform(weights=(1.0 / cv, 1.0 / cv, 1.0 / sv, 1.0 / sv))
        self.iou_threshold = iou_threshold
        self.neg_pos_ratio = neg_pos_ratio
        self.smooth_l1_beta = smooth_l1_beta
        self.test_score_thresh = test_score_thresh
        self.test_topk_candidates = test_topk_candidates
        self.test_nms_thresh = test_nms_thresh
        self.max_detections_per_image = max_detections_per_image
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean, dtype=torch.float32).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std, dtype=torch.float32).view(-1, 1, 1), False)
        if self.pixel_mean.shape != self.pixel_std.shape:
            raise ValueError(f"SSD: pixel_mean {tuple(pixel_mean)} and pixel_std {tuple(pixel_std)} differ in length")

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def preprocess_image(self, batched_inputs: list[dict]) -> ImageList:
        """Normalise and batch the images; SSD inputs are already resized to one size by the mapper."""
        images = [(x["image"].to(self.device).float() - self.pixel_mean) / self.pixel_std for x in batched_inputs]
        sizes = {tuple(im.shape[-2:]) for im in images}
        if len(sizes) > 1:
            raise ValueError(
                "SSD: all images of a batch must have the same size (the SSD mapper resizes them), "
                f"got sizes {sorted(sizes)}"
            )
        return ImageList.from_tensors(images)

    def extract_features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Backbone features of the levels, shallow to deep. Subclasses (NETNet) refine them here."""
        features = self.backbone(images)
        return [features[f] for f in self.in_features]

    def forward(self, batched_inputs: list[dict]):
        images = self.preprocess_image(batched_inputs)
        features = self.extract_features(images.tensor)
        cls_logits, box_deltas = self.head(features)
        priors = self.prior_generator([f.shape[-2:] for f in features], images.tensor.shape[-2:], device=self.device)
        if self.training:
            if "instances" not in batched_inputs[0]:
                raise ValueError("SSD: training inputs need an 'instances' field with gt_boxes and gt_classes")
            gt_instances = [x["instances"].to(self.device) for x in batched_inputs]
            gt_labels, gt_deltas = self.label_default_boxes(priors, gt_instances)
            return multibox_loss(
                cls_logits,
                box_deltas,
                gt_labels,
                gt_deltas,
                neg_pos_ratio=self.neg_pos_ratio,
                smooth_l1_beta=self.smooth_l1_beta,
            )
        results = self.inference(priors, cls_logits, box_deltas, images.image_sizes)
        processed = []
        for res, inp, size in zip(results, batched_inputs, images.image_sizes):
            h = inp.get("height", size[0])
            w = inp.get("width", size[1])
            processed.append({"instances": detector_postprocess(res, h, w)})
        return processed

    @torch.no_grad()
    def label_default_boxes(
        self, priors: torch.Tensor, gt_instances: list[Instances]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Returns:
            gt_labels: (N, P) int64, class of the matched ground truth or K (background);
            gt_deltas: (N, P, 4) encoded matched ground-truth boxes (zeros where unmatched).
        """
        prior_boxes = Boxes(priors)
        labels, deltas = [], []
        for inst in gt_instances:
            gt_boxes = inst.gt_boxes
            iou = pairwise_iou(gt_boxes, prior_boxes)
            matched, is_fg = match_default_boxes(iou, self.iou_threshold)
            if len(inst) > 0:
                cls = inst.gt_classes[matched]
                target = self.box2box_transform.get_deltas(priors, gt_boxes.tensor[matched])
            else:
                cls = torch.zeros_like(matched)
                target = torch.zeros_like(priors)
            labels.append(torch.where(is_fg, cls, torch.full_like(cls, self.num_classes)))
            deltas.append(target)
        return torch.stack(labels), torch.stack(deltas)

    @torch.no_grad()
    def inference(
        self,
        priors: torch.Tensor,
        cls_logits: torch.Tensor,
        box_deltas: torch.Tensor,
        image_sizes: list[tuple[int, int]],
    ) -> list[Instances]:
        """Per class: score > thresh, top-k candidates, class-wise NMS; then the best detections per image."""
        scores_all = cls_logits.softmax(dim=-1)[..., : self.num_classes]  # (N, P, K)
        N, P, K = scores_all.shape
        results = []
        for i in range(N):
            boxes = self.box2box_transform.apply_deltas(box_deltas[i], priors)
            boxes = Boxes(boxes)
            boxes.clip(image_sizes[i])
            k = min(self.test_topk_candidates, P)
            top_scores, top_idx = scores_all[i].topk(k, dim=0)  # (k, K) per class
            keep = top_scores > self.test_score_thresh
            classes = torch.arange(K, device=priors.device).expand(k, K)[keep]
            prior_idx = top_idx[keep]
            scores = top_scores[keep]
            cand = boxes.tensor[prior_idx]
            kept = batched_nms(cand, scores, classes, self.test_nms_thresh)[: self.max_detections_per_image]
            res = Instances(image_sizes[i])
            res.pred_boxes = Boxes(cand[kept])
            res.scores = scores[kept]
            res.pred_classes = classes[kept]
            results.append(res)
        return results
