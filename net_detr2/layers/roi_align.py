"""`ROIAlign` module around torchvision's kernel."""

from __future__ import annotations

import torch
from torch import nn
from torchvision.ops import roi_align

__all__ = ["ROIAlign"]


class ROIAlign(nn.Module):
    """Bilinear ROI pooling to a fixed grid.

    Args:
        output_size: (h, w) of the pooled grid, or an int for a square one.
        spatial_scale: feature-map stride inverse (e.g. 1/16); box coordinates are multiplied by it.
        sampling_ratio: sample points per bin side; 0 = adaptive ceil(roi_size / output_size).
        aligned: if True, shift boxes by -0.5 px so that pixel centres are at integer+0.5
            ("ROIAlignV2"); False reproduces the original Mask R-CNN ROIAlign.
    """

    def __init__(
        self, output_size: int | tuple[int, int], spatial_scale: float, sampling_ratio: int, aligned: bool = True
    ):
        super().__init__()
        self.output_size = output_size
        self.spatial_scale = spatial_scale
        self.sampling_ratio = sampling_ratio
        self.aligned = aligned

    def forward(self, input: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        """input: [N, C, H, W]; rois: [R, 5] (batch index, x1, y1, x2, y2) -> [R, C, oh, ow]."""
        assert rois.dim() == 2 and rois.size(1) == 5, f"ROIAlign expects rois [R, 5], got {tuple(rois.shape)}"
        if input.is_quantized:
            input = input.dequantize()
        return roi_align(
            input, rois.to(dtype=input.dtype), self.output_size, self.spatial_scale, self.sampling_ratio, self.aligned
        )

    def extra_repr(self) -> str:
        return (
            f"output_size={self.output_size}, spatial_scale={self.spatial_scale}, "
            f"sampling_ratio={self.sampling_ratio}, aligned={self.aligned}"
        )
