"""`ImageList`: images of different sizes padded into one batch tensor, remembering each size."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F


class ImageList:
    """A batch tensor [N, C, H, W] (padded) plus the unpadded (h, w) of each image in ``image_sizes``."""

    def __init__(self, tensor: torch.Tensor, image_sizes: list[tuple[int, int]]):
        self.tensor = tensor
        self.image_sizes = image_sizes

    def __len__(self) -> int:
        return len(self.image_sizes)

    def __getitem__(self, idx: int) -> torch.Tensor:
        """The idx-th image without its padding: [C, h, w]."""
        h, w = self.image_sizes[idx]
        return self.tensor[idx, ..., :h, :w]

    def to(self, *args, **kwargs) -> ImageList:
        return ImageList(self.tensor.to(*args, **kwargs), self.image_sizes)

    @property
    def device(self) -> torch.device:
        return self.tensor.device

    @staticmethod
    def from_tensors(
        tensors: Sequence[torch.Tensor],
        size_divisibility: int = 0,
        pad_value: float = 0.0,
        padding_constraints: dict | None = None,
    ) -> ImageList:
        """Pad images (each [..., H_i, W_i], same leading dims) at the bottom/right into one batch.

        The padded size is the maximum H and W, rounded up to a multiple of ``size_divisibility``
        (when > 1). ``padding_constraints`` may carry ``size_divisibility`` and ``square_size``
        (pad to a square of at least that side), as backbones report them.
        """
        if len(tensors) == 0:
            raise ValueError("ImageList.from_tensors: no images given")
        for t in tensors:
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"ImageList.from_tensors: expected tensors, got {type(t)}")
            if t.shape[:-2] != tensors[0].shape[:-2]:
                raise ValueError(
                    f"ImageList.from_tensors: leading dims differ: {tuple(t.shape)} vs {tuple(tensors[0].shape)}"
                )
        image_sizes = [(int(t.shape[-2]), int(t.shape[-1])) for t in tensors]
        max_h = max(s[0] for s in image_sizes)
        max_w = max(s[1] for s in image_sizes)
        if padding_constraints:
            square = padding_constraints.get("square_size", 0)
            if square > 0:
                max_h = max_w = max(square, max_h, max_w)
            size_divisibility = padding_constraints.get("size_divisibility", size_divisibility)
        if size_divisibility > 1:
            d = size_divisibility
            max_h = int(math.ceil(max_h / d) * d)
            max_w = int(math.ceil(max_w / d) * d)

        if len(tensors) == 1:
            h, w = image_sizes[0]
            batched = F.pad(tensors[0], (0, max_w - w, 0, max_h - h), value=pad_value).unsqueeze(0)
        else:
            shape = (len(tensors),) + tuple(tensors[0].shape[:-2]) + (max_h, max_w)
            batched = tensors[0].new_full(shape, pad_value)
            for i, t in enumerate(tensors):
                batched[i, ..., : t.shape[-2], : t.shape[-1]].copy_(t)
        return ImageList(batched.contiguous(), image_sizes)
