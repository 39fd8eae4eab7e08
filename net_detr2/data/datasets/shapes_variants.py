"""Claim-shaped variants of the synthetic ``shapes`` dataset: each expresses one paper's claim in data a
CPU recipe can learn (same image sizes and split sizes as ``shapes``: 320 px wide, 256..400 px high,
400 train / 100 val images; generated deterministically on first use, no download).

``shapes_small_clutter`` (NETNet, EFPN)
    Many objects under 16 px beside one to three large objects (64..200 px) whose *salient parts* look
    like the small objects: each large object carries two to five unlabelled decals, small shapes of the
    same six kinds in a contrasting colour, inside its outline. A detector whose shallow features confuse
    scales misses the tiny objects and reports the decals ("part false positives"). Tiny objects never
    touch a large object's outline (they may sit in its box, e.g. between a star's points), so a decal
    (surrounded by the large object) and an object (surrounded by background) are told apart by context.
    The decals' boxes are kept in each COCO image entry (``"parts"``: ``[x, y, w, h, category_id]``).
    Extra metric: ``APtiny`` (box area < 16^2).

``shapes_occluded`` (Inverted Attention)
    Objects partly hidden by other (labelled) objects and by unlabelled noise patches drawn on top. Each
    object draws a target visible share (a third each: fully visible, 60-90%, 30-60%); occluders are slid
    towards it along a random direction until they cover the share to hide. The share that is visible in
    the end (pixels of the object's outline still showing it, over its outline's pixels) is recorded in
    each annotation as ``"visible"``. Boxes are the *full* extent of the object, hidden parts included
    (amodal), as COCO and VOC annotators draw them. Extra metrics: ``APvis0_60``, ``APvis60_90``,
    ``APvis90_100`` (AP over objects in that visible range; the others ignored).

``shapes_irregular`` (DC-RetinaNet)
    Six elongated, rotated or concave kinds (bar, ellipse, crescent, ell, chevron, arc) at any angle, so
    that boxes hold much background: the share of the box the object covers is recorded as ``"fill"``.
    Boxes often overlap where the objects themselves barely do (masks overlap <= 10%). Background
    distractors are compact blobs (none of the kinds), no lines. Extra metrics: ``AP90`` (AP75 is
    standard) and ``APfill0_40`` / ``APfill40_100`` (AP over objects covering < 40% / >= 40% of their box).

Every variant keeps six classes, so a ``shapes`` config runs on it by changing only the dataset names.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from .shapes import (
    _HEIGHT_RANGE,
    _WIDTH,
    SHAPES_CLASSES,
    ShapesVariant,
    _background,
    _background_base,
    _noise,
    _overlap_fraction,
    _shape_mask,
    register_shapes,
)

__all__ = [
    "IRREGULAR_CLASSES",
    "SHAPES_VARIANTS",
    "register_shapes_variants",
    "render_small_clutter_image",
    "render_occluded_image",
    "render_irregular_image",
]

IRREGULAR_CLASSES = ("bar", "ellipse", "crescent", "ell", "chevron", "arc")
TINY_MAX = 16  # px: the small-clutter objects' larger box side is below this


# ----------------------------------------------------------------------------------------------- canvas
class _Canvas:
    """An image being drawn, with a map of which object shows at each pixel.

    ``owner[y, x]`` is the index of the object whose outline (mask >= 128) was drawn last at that pixel,
    -1 for background, -2 for an unlabelled occluder. Parts drawn for an object keep its index.
    """

    def __init__(self, img: np.ndarray):
        self.img = img
        self.owner = np.full(img.shape[:2], -1, dtype=np.int32)
        self.masks: list[tuple[int, int, np.ndarray]] = []  # per object: (x0, y0, uint8 mask)
        self.colors: list[np.ndarray] = []

    def draw(self, mask: np.ndarray, x0: int, y0: int, fill: np.ndarray, owner: int) -> None:
        """Alpha-blend ``fill`` (a colour (3,) or a texture like ``mask``) through ``mask`` placed at (x0, y0),
        clipped to the image."""
        h, w = self.owner.shape
        ya, yb, xa, xb = max(y0, 0), min(y0 + mask.shape[0], h), max(x0, 0), min(x0 + mask.shape[1], w)
        if ya >= yb or xa >= xb:
            return
        m = mask[ya - y0 : yb - y0, xa - x0 : xb - x0]
        f = fill[ya - y0 : yb - y0, xa - x0 : xb - x0] if fill.ndim == 3 else fill.astype(np.float32)
        alpha = (m.astype(np.float32) / 255.0)[:, :, None]
        region = self.img[ya:yb, xa:xb]
        region *= 1.0 - alpha
        region += alpha * f
        self.owner[ya:yb, xa:xb][m >= 128] = owner

    def add_object(self, mask: np.ndarray, x0: int, y0: int, color: np.ndarray) -> int:
        k = len(self.masks)
        self.masks.append((x0, y0, mask))
        self.colors.append(color.astype(np.float32))
        self.draw(mask, x0, y0, color, k)
        return k

    def visible_pixels(self, k: int) -> int:
        x0, y0, m = self.masks[k]
        return int((self.owner[y0 : y0 + m.shape[0], x0 : x0 + m.shape[1]][m >= 128] == k).sum())

    def visible_share(self, k: int) -> float:
        return self.visible_pixels(k) / max(int((self.masks[k][2] >= 128).sum()), 1)

    def box(self, k: int) -> list[int]:
        x0, y0, m = self.masks[k]
        return [x0, y0, x0 + m.shape[1], y0 + m.shape[0]]

    def debug(self) -> dict:
        """What a test needs to check the drawing: the image before sensor noise, masks, colours, owners."""
        return {"clean": self.img.copy(), "masks": list(self.masks), "colors": list(self.colors), "owner": self.owner}


def _contrasting_color(rng: np.random.RandomState, references: list[np.ndarray], min_diff: float = 120.0):
    """A random colour at L1 distance >= ``min_diff`` from every reference colour (best of 20 draws)."""
    best, best_d = None, -1.0
    for _ in range(20):
        c = rng.uniform(0, 255, 3)
        d = min((float(np.abs(c - r).sum()) for r in references), default=math.inf)
        if d >= min_diff:
            return c
        if d > best_d:
            best, best_d = c, d
    return best


def _local_mean(img: np.ndarray, x0: int, y0: int, mask: np.ndarray) -> np.ndarray:
    return img[y0 : y0 + mask.shape[0], x0 : x0 + mask.shape[1]].reshape(-1, 3).mean(0)


def _finish(canvas: _Canvas, rng: np.random.RandomState) -> np.ndarray:
    """Sensor noise over everything, then 8-bit."""
    img = canvas.img + _noise(rng, canvas.img.shape, rng.uniform(3, 12))
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def _polygon_mask(polygons: list[tuple[np.ndarray, int]], size: float, rng: np.random.RandomState) -> np.ndarray:
    """Anti-aliased uint8 mask of polygons (unit coordinates, filled with value 255 or 0 in order), rotated
    by a random angle and scaled so that the first polygon's larger extent is ``size`` px; cropped tight."""
    ang = rng.uniform(0, 2 * np.pi)
    rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    pts = [(p @ rot.T, v) for p, v in polygons]
    lo, hi = pts[0][0].min(0), pts[0][0].max(0)
    scale = size / max(float((hi - lo).max()), 1e-6)
    pad = 3
    cw, ch = int(math.ceil((hi - lo)[0] * scale)) + 2 * pad, int(math.ceil((hi - lo)[1] * scale)) + 2 * pad
    mask = np.zeros((ch, cw), dtype=np.uint8)
    shift = 4
    for p, value in pts:
        q = (p - lo) * scale + pad
        cv2.fillPoly(mask, [np.round(q * (1 << shift)).astype(np.int32)], int(value), cv2.LINE_AA, shift)
    ys, xs = np.nonzero(mask >= 128)
    if len(xs) == 0:
        mask[ch // 2 - 1 : ch // 2 + 2, cw // 2 - 1 : cw // 2 + 2] = 255
        ys, xs = np.nonzero(mask >= 128)
    return mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def _circle(n: int = 64, r: float = 1.0, c: tuple[float, float] = (0.0, 0.0), a0: float = 0.0, a1: float = 2 * np.pi):
    a = np.linspace(a0, a1, n, endpoint=(a1 - a0) < 2 * np.pi - 1e-9)
    return np.stack([c[0] + r * np.cos(a), c[1] + r * np.sin(a)], axis=1)


def _irregular_mask(kind: str, size: float, rng: np.random.RandomState) -> np.ndarray:
    """Mask of an elongated / concave kind at a random rotation, larger box side about ``size`` px."""
    if kind == "bar":
        t = 1.0 / rng.uniform(3, 6)
        polys = [(np.array([[-1, -t], [1, -t], [1, t], [-1, t]], dtype=np.float64), 255)]
    elif kind == "ellipse":
        e = _circle()
        e[:, 1] /= rng.uniform(2.5, 5)
        polys = [(e, 255)]
    elif kind == "crescent":
        off = rng.uniform(0.3, 0.55)
        polys = [(_circle(), 255), (_circle(r=rng.uniform(0.75, 0.9), c=(off, 0.0)), 0)]
    elif kind == "ell":
        t, b = rng.uniform(0.25, 0.4), rng.uniform(0.6, 1.0)
        polys = [(np.array([[0, 0], [1, 0], [1, t], [t, t], [t, b], [0, b]], dtype=np.float64), 255)]
    elif kind == "chevron":
        hgt, t = rng.uniform(0.6, 1.0), rng.uniform(0.25, 0.4)
        polys = [(np.array([[-1, 0], [0, hgt], [1, 0], [1 - t, 0], [0, hgt * (1 - 2 * t)], [-1 + t, 0]]), 255)]
    elif kind == "arc":
        span, inner = np.deg2rad(rng.uniform(150, 270)), rng.uniform(0.55, 0.75)
        outer = _circle(48, 1.0, a0=0.0, a1=span)
        polys = [(np.concatenate([outer, _circle(48, inner, a0=0.0, a1=span)[::-1]]), 255)]
    else:
        raise ValueError(kind)
    return _polygon_mask(polys, size, rng)


def _masks_overlap(ma: np.ndarray, pa: tuple[int, int], mb: np.ndarray, pb: tuple[int, int]) -> int:
    """Pixels where both masks (>= 128) are set, ``ma`` at (x, y) = ``pa`` and ``mb`` at ``pb``."""
    x0, y0 = max(pa[0], pb[0]), max(pa[1], pb[1])
    x1 = min(pa[0] + ma.shape[1], pb[0] + mb.shape[1])
    y1 = min(pa[1] + ma.shape[0], pb[1] + mb.shape[0])
    if x0 >= x1 or y0 >= y1:
        return 0
    a = ma[y0 - pa[1] : y1 - pa[1], x0 - pa[0] : x1 - pa[0]] >= 128
    b = mb[y0 - pb[1] : y1 - pb[1], x0 - pb[0] : x1 - pb[0]] >= 128
    return int(np.logical_and(a, b).sum())


def _image_size(rng: np.random.RandomState) -> tuple[int, int]:
    return int(rng.randint(_HEIGHT_RANGE[0], _HEIGHT_RANGE[1] + 1)), _WIDTH


def _log_uniform(rng: np.random.RandomState, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


# ----------------------------------------------------------------------------------------------- small clutter
def render_small_clutter_image(seed: int, debug: bool = False) -> tuple[np.ndarray, list[dict], dict]:
    """Tiny objects (< 16 px) beside large objects that carry small-object-like decals (``shapes_small_clutter``).

    Returns ``(image BGR uint8, objects, extras)``; ``extras["parts"]`` lists the decals as
    ``[x, y, w, h, category_id (1-based)]``; with ``debug`` also ``extras["debug"]`` (see ``_Canvas.debug``).
    """
    rng = np.random.RandomState(seed)
    h, w = _image_size(rng)
    canvas = _Canvas(_background(rng, h, w))
    objects: list[dict] = []
    parts: list[list[int]] = []
    large: list[int] = []
    for _ in range(rng.randint(1, 4)):
        kind = int(rng.randint(len(SHAPES_CLASSES)))
        mask = _shape_mask(SHAPES_CLASSES[kind], _log_uniform(rng, 64, 200), rng)
        mh, mw = mask.shape
        if mh >= h or mw >= w:
            continue
        boxes = np.array([canvas.box(k) for k in large], dtype=np.float64).reshape(-1, 4)
        for _try in range(10):
            x0, y0 = int(rng.randint(0, w - mw + 1)), int(rng.randint(0, h - mh + 1))
            box = np.array([x0, y0, x0 + mw, y0 + mh], dtype=np.float64)
            if len(boxes) == 0 or _overlap_fraction(box, boxes).max() <= 0.2:
                break
        else:
            continue
        color = _contrasting_color(rng, [_local_mean(canvas.img, x0, y0, mask)])
        k = canvas.add_object(mask, x0, y0, color)
        large.append(k)
        objects.append({"bbox": canvas.box(k), "category_id": kind})
    # salient parts: small shapes in a contrasting colour, well inside the part of an outline that shows
    # (3 px margin), drawn once every large object is in place so that none hides another's parts
    for k in large:
        x0, y0, mask = canvas.masks[k]
        mh, mw = mask.shape
        shows = (mask >= 128) & (canvas.owner[y0 : y0 + mh, x0 : x0 + mw] == k)
        interior = cv2.erode(shows.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
        for _p in range(rng.randint(2, 6)):
            pkind = int(rng.randint(len(SHAPES_CLASSES)))
            pmask = _shape_mask(SHAPES_CLASSES[pkind], _log_uniform(rng, 6, TINY_MAX), rng)
            ph, pw = pmask.shape
            if ph >= mh or pw >= mw:
                continue
            for _try in range(15):
                dx, dy = int(rng.randint(0, mw - pw + 1)), int(rng.randint(0, mh - ph + 1))
                if interior[dy : dy + ph, dx : dx + pw][pmask > 0].all():
                    break
            else:
                continue
            canvas.draw(pmask, x0 + dx, y0 + dy, _contrasting_color(rng, [canvas.colors[k]]), owner=k)
            parts.append([x0 + dx, y0 + dy, pw, ph, pkind + 1])
    # tiny objects: never touching a large object's outline (kept 3 px away), most of them beside one
    forbidden = cv2.dilate((canvas.owner >= 0).astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    small_boxes = np.zeros((0, 4), dtype=np.float64)
    for _ in range(rng.randint(8, 25)):
        kind = int(rng.randint(len(SHAPES_CLASSES)))
        mask = _shape_mask(SHAPES_CLASSES[kind], _log_uniform(rng, 5, TINY_MAX), rng)
        mh, mw = mask.shape
        near = large and rng.uniform() < 0.6
        for _try in range(20):
            if near:  # within 24 px of a large object's box
                bx0, by0, bx1, by1 = canvas.box(large[int(rng.randint(len(large)))])
                x0 = int(rng.randint(max(bx0 - 24 - mw, 0), min(bx1 + 24, w - mw) + 1))
                y0 = int(rng.randint(max(by0 - 24 - mh, 0), min(by1 + 24, h - mh) + 1))
            else:
                x0, y0 = int(rng.randint(0, w - mw + 1)), int(rng.randint(0, h - mh + 1))
            if x0 < 0 or y0 < 0 or x0 + mw > w or y0 + mh > h:
                continue
            box = np.array([x0, y0, x0 + mw, y0 + mh], dtype=np.float64)
            if forbidden[y0 : y0 + mh, x0 : x0 + mw][mask > 0].any():
                continue
            if len(small_boxes) and _overlap_fraction(box, small_boxes).max() > 0.3:
                continue
            break
        else:
            continue
        color = _contrasting_color(rng, [_local_mean(canvas.img, x0, y0, mask)])
        k = canvas.add_object(mask, x0, y0, color)
        small_boxes = np.concatenate([small_boxes, box[None]])
        objects.append({"bbox": canvas.box(k), "category_id": kind})
    img = _finish(canvas, rng)
    extras: dict = {"parts": parts}
    if debug:
        extras["debug"] = canvas.debug()
    return img, objects, extras


# ----------------------------------------------------------------------------------------------- occluded
def _noise_patch(rng: np.random.RandomState, size: float) -> tuple[np.ndarray, np.ndarray]:
    """An unlabelled occluder: a rotated rectangle or ellipse (larger side ~``size``) and its noisy texture."""
    aspect = rng.uniform(1.0, 2.0)
    if rng.uniform() < 0.5:
        poly = np.array([[-1, -1 / aspect], [1, -1 / aspect], [1, 1 / aspect], [-1, 1 / aspect]], dtype=np.float64)
    else:
        poly = _circle()
        poly[:, 1] /= aspect
    mask = _polygon_mask([(poly, 255)], size, rng)
    ph, pw = mask.shape
    blocks = rng.uniform(0, 255, size=(rng.randint(2, 6), rng.randint(2, 6), 3)).astype(np.float32)
    tex = cv2.resize(blocks, (pw, ph), interpolation=cv2.INTER_NEAREST)
    tex += _noise(rng, tex.shape, rng.uniform(25, 60))
    return mask, tex


def _slide_occluder(
    canvas: _Canvas, k: int, occluder: np.ndarray, to_hide: int, rng: np.random.RandomState, inside: bool
) -> tuple[int, int] | None:
    """Where to put ``occluder`` so that it hides ``to_hide`` of object ``k``'s visible pixels: along a random
    direction from the object's centre, the distance found by bisection (the hidden count falls with it).
    Of up to 8 directions, the one hiding least of the other objects wins. ``inside``: the occluder must lie
    wholly in the image (a labelled object)."""
    h, w = canvas.owner.shape
    x0, y0, m = canvas.masks[k]
    visible = np.zeros_like(m)
    visible[(canvas.owner[y0 : y0 + m.shape[0], x0 : x0 + m.shape[1]] == k) & (m >= 128)] = 255
    oh, ow = occluder.shape
    cx, cy = x0 + m.shape[1] / 2.0, y0 + m.shape[0] / 2.0
    reach = math.hypot(*m.shape) / 2 + math.hypot(oh, ow) / 2 + 1

    def place(d: float, ux: float, uy: float) -> tuple[int, int]:
        return int(round(cx + d * ux - ow / 2.0)), int(round(cy + d * uy - oh / 2.0))

    best, best_cost = None, math.inf
    for _ in range(8):
        a = rng.uniform(0, 2 * np.pi)
        ux, uy = math.cos(a), math.sin(a)
        if _masks_overlap(visible, (x0, y0), occluder, place(0.0, ux, uy)) < to_hide:
            continue  # even centred it cannot hide that much (e.g. a ring's hole)
        lo, hi = 0.0, reach
        for _b in range(12):
            mid = (lo + hi) / 2
            if _masks_overlap(visible, (x0, y0), occluder, place(mid, ux, uy)) >= to_hide:
                lo = mid
            else:
                hi = mid
        px, py = place(lo, ux, uy)
        if inside and (px < 0 or py < 0 or px + ow > w or py + oh > h):
            continue
        cost = sum(
            _masks_overlap(mj, (xj, yj), occluder, (px, py)) for j, (xj, yj, mj) in enumerate(canvas.masks) if j != k
        )
        if cost < best_cost:
            best, best_cost = (px, py), cost
    return best


def render_occluded_image(seed: int, debug: bool = False) -> tuple[np.ndarray, list[dict], dict]:
    """Objects hidden in part by other objects and noise patches, visible share recorded (``shapes_occluded``).

    Returns ``(image BGR uint8, objects, extras)``; each object has ``"visible"`` (0..1, 3 decimals); with
    ``debug``, ``extras["debug"]`` (see ``_Canvas.debug``).
    """
    rng = np.random.RandomState(seed)
    h, w = _image_size(rng)
    canvas = _Canvas(_background(rng, h, w))
    kinds: list[int] = []
    targets: list[tuple[int, float]] = []
    for _ in range(rng.randint(3, 8)):
        kind = int(rng.randint(len(SHAPES_CLASSES)))
        mask = _shape_mask(SHAPES_CLASSES[kind], _log_uniform(rng, 20, 150), rng)
        mh, mw = mask.shape
        if mh >= h or mw >= w:
            continue
        boxes = np.array([canvas.box(j) for j in range(len(kinds))], dtype=np.float64).reshape(-1, 4)
        for _try in range(10):
            x0, y0 = int(rng.randint(0, w - mw + 1)), int(rng.randint(0, h - mh + 1))
            box = np.array([x0, y0, x0 + mw, y0 + mh], dtype=np.float64)
            if len(boxes) == 0 or _overlap_fraction(box, boxes).max() <= 0.05:
                break
        else:
            continue
        color = _contrasting_color(rng, [_local_mean(canvas.img, x0, y0, mask)])
        k = canvas.add_object(mask, x0, y0, color)
        kinds.append(kind)
        r = rng.uniform()
        targets.append((k, 1.0 if r < 1 / 3 else rng.uniform(0.6, 0.9) if r < 2 / 3 else rng.uniform(0.3, 0.6)))
    for k, share in targets:
        if share >= 1.0:
            continue
        full = int((canvas.masks[k][2] >= 128).sum())
        to_hide = canvas.visible_pixels(k) - int(round(share * full))
        if to_hide <= 0:
            continue
        # occluders about the object's size; larger when much is to be hidden
        size = max(canvas.masks[k][2].shape) * rng.uniform(0.8, 1.2) * (1.3 if share < 0.6 else 1.0)
        if rng.uniform() < 0.5:  # another object on top
            kind = int(rng.randint(len(SHAPES_CLASSES)))
            occ = _shape_mask(SHAPES_CLASSES[kind], size, rng)
            if occ.shape[0] >= h or occ.shape[1] >= w:
                continue
            pos = _slide_occluder(canvas, k, occ, to_hide, rng, inside=True)
            if pos is None:
                continue
            color = _contrasting_color(rng, [canvas.colors[k], _local_mean(canvas.img, pos[0], pos[1], occ)])
            canvas.add_object(occ, pos[0], pos[1], color)
            kinds.append(kind)
        else:  # an unlabelled noise patch
            occ, tex = _noise_patch(rng, size)
            pos = _slide_occluder(canvas, k, occ, to_hide, rng, inside=False)
            if pos is None:
                continue
            canvas.draw(occ, pos[0], pos[1], tex, owner=-2)
    objects = [
        {"bbox": canvas.box(k), "category_id": kind, "visible": round(canvas.visible_share(k), 3)}
        for k, kind in enumerate(kinds)
    ]
    img = _finish(canvas, rng)
    extras: dict = {}
    if debug:
        extras["debug"] = canvas.debug()
    return img, objects, extras


# ----------------------------------------------------------------------------------------------- irregular
def _compact_background(rng: np.random.RandomState, h: int, w: int) -> np.ndarray:
    """Gradient + texture + compact distractors (discs and squarish blobs, none of the irregular kinds)."""
    img = _background_base(rng, h, w)
    for _ in range(rng.randint(3, 10)):
        center = (int(rng.randint(0, w)), int(rng.randint(0, h)))
        r = rng.uniform(4, 30)
        color = tuple(float(v) for v in rng.uniform(0, 255, 3))
        if rng.uniform() < 0.5:
            cv2.circle(img, center, int(r), color, -1, cv2.LINE_AA)
        else:
            box = cv2.boxPoints((center, (2 * r, 2 * r * rng.uniform(0.8, 1.25)), float(rng.uniform(0, 90))))
            cv2.fillPoly(img, [np.round(box).astype(np.int32)], color, cv2.LINE_AA)
    return img


def render_irregular_image(seed: int, debug: bool = False) -> tuple[np.ndarray, list[dict], dict]:
    """Elongated, rotated and concave objects whose boxes hold much background (``shapes_irregular``).

    Returns ``(image BGR uint8, objects, extras)``; each object has ``"fill"`` (object pixels / box area,
    3 decimals); with ``debug``, ``extras["debug"]`` (see ``_Canvas.debug``).
    """
    rng = np.random.RandomState(seed)
    h, w = _image_size(rng)
    canvas = _Canvas(_compact_background(rng, h, w))
    kinds: list[int] = []
    for _ in range(rng.randint(3, 11)):
        kind = int(rng.randint(len(IRREGULAR_CLASSES)))
        mask = _irregular_mask(IRREGULAR_CLASSES[kind], _log_uniform(rng, 14, 200), rng)
        mh, mw = mask.shape
        if mh >= h or mw >= w:
            continue
        area = int((mask >= 128).sum())
        for _try in range(15):
            x0, y0 = int(rng.randint(0, w - mw + 1)), int(rng.randint(0, h - mh + 1))
            # boxes may overlap freely; the objects themselves by at most 10% of either
            ok = True
            for xj, yj, mj in canvas.masks:
                inter = _masks_overlap(mask, (x0, y0), mj, (xj, yj))
                if inter > 0.1 * area or inter > 0.1 * int((mj >= 128).sum()):
                    ok = False
                    break
            if ok:
                break
        else:
            continue
        color = _contrasting_color(rng, [_local_mean(canvas.img, x0, y0, mask)])
        canvas.add_object(mask, x0, y0, color)
        kinds.append(kind)
    objects = []
    for k, kind in enumerate(kinds):
        m = canvas.masks[k][2]
        objects.append({"bbox": canvas.box(k), "category_id": kind, "fill": round(float((m >= 128).sum()) / m.size, 3)})
    img = _finish(canvas, rng)
    extras: dict = {}
    if debug:
        extras["debug"] = canvas.debug()
    return img, objects, extras


# ----------------------------------------------------------------------------------------------- registry
SHAPES_VARIANTS = {
    v.name: v
    for v in (
        ShapesVariant(
            "shapes_small_clutter",
            "shapes_small_clutter_v1",
            SHAPES_CLASSES,
            render_small_clutter_image,
            seed=3101,
            evaluation={"extra_area_ranges": {"APtiny": [0.0, float(TINY_MAX**2)]}},
            description="net_detr2 synthetic shapes: tiny objects beside large ones with part-like decals",
        ),
        ShapesVariant(
            "shapes_occluded",
            "shapes_occluded_v1",
            SHAPES_CLASSES,
            render_occluded_image,
            seed=3102,
            attributes=("visible",),
            evaluation={
                "gt_slices": {
                    "APvis0_60": ["visible", 0.0, 0.6],
                    "APvis60_90": ["visible", 0.6, 0.9],
                    "APvis90_100": ["visible", 0.9, 1.01],
                }
            },
            description="net_detr2 synthetic shapes: objects partly hidden by objects and noise patches",
        ),
        ShapesVariant(
            "shapes_irregular",
            "shapes_irregular_v1",
            IRREGULAR_CLASSES,
            render_irregular_image,
            seed=3103,
            attributes=("fill",),
            evaluation={
                "extra_iou_thresholds": [0.9],
                "gt_slices": {"APfill0_40": ["fill", 0.0, 0.4], "APfill40_100": ["fill", 0.4, 1.01]},
            },
            description="net_detr2 synthetic shapes: elongated, rotated and concave objects",
        ),
    )
}


def register_shapes_variants() -> None:
    """Register ``<name>_train``, ``<name>_val``, ``<name>_voc_val`` for every variant (generated on first use)."""
    for variant in SHAPES_VARIANTS.values():
        register_shapes(variant=variant)
