"""A fixed palette of distinct colours for drawing instances.

The palette is generated, not tabulated: hues advance by the golden-ratio conjugate so that
neighbouring indices land far apart on the colour wheel, and saturation/value cycle through three
levels so that colours whose hues happen to be close still differ in brightness. Every colour is
bright enough to stand out on dark images and saturated enough to stand out on grey ones.
"""

from __future__ import annotations

import colorsys
import random

import numpy as np

__all__ = ["colormap", "random_color", "random_colors", "PALETTE_SIZE"]

PALETTE_SIZE = 80
_GOLDEN = 0.618033988749895
# (saturation, value) levels cycled with the index: why three -> see module docstring.
_SV_LEVELS = ((0.90, 0.95), (0.65, 0.85), (0.95, 0.70))


def _build_palette(n: int) -> np.ndarray:
    """Return an (n, 3) float32 array of RGB colours in [0, 1]."""
    colors = []
    hue = 0.07  # start on an orange rather than pure red: reads well on natural images
    for i in range(n):
        s, v = _SV_LEVELS[i % len(_SV_LEVELS)]
        colors.append(colorsys.hsv_to_rgb(hue % 1.0, s, v))
        hue += _GOLDEN
    return np.asarray(colors, dtype=np.float32)


_PALETTE_RGB = _build_palette(PALETTE_SIZE)


def colormap(rgb: bool = False, maximum: float = 255) -> np.ndarray:
    """The whole palette.

    Args:
        rgb: channel order RGB if True, BGR (OpenCV's order) if False — detectron2's default.
        maximum: value of a full-intensity channel (255 for uint8 drawing, 1 for matplotlib).
    Returns:
        float32 array of shape (PALETTE_SIZE, 3).
    """
    c = _PALETTE_RGB * maximum
    return c.copy() if rgb else c[:, ::-1].copy()


def random_color(rgb: bool = False, maximum: float = 255) -> np.ndarray:
    """One palette colour chosen at random: float32 array of shape (3,)."""
    idx = random.randrange(PALETTE_SIZE)
    return colormap(rgb=rgb, maximum=maximum)[idx]


def random_colors(n: int, rgb: bool = False, maximum: float = 255) -> list[np.ndarray]:
    """``n`` distinct palette colours (``n`` <= PALETTE_SIZE) in random order."""
    if n > PALETTE_SIZE:
        raise ValueError(f"random_colors: asked for {n} distinct colours, the palette has {PALETTE_SIZE}")
    cmap = colormap(rgb=rgb, maximum=maximum)
    return [cmap[i] for i in random.sample(range(PALETTE_SIZE), n)]
