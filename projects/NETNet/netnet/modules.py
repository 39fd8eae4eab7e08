"""NETNet's feature-reconfiguration modules (Li et al., "NETNet", CVPR 2020; see ``../README.md``).

Notation: the SSD pyramid is p_1..p_S (shallow, large resolution -> deep). For a pair (s, d) with d > s:

* gate (Eq. 4-6): ``g = sigmoid(G(U(p_d)))`` in [0, 1], at p_s's resolution; U = bilinear upsampling.
* NEM (Eq. 3, 7): ``p_es = p_s * g`` (the larger objects' part), ``p~_s = p_s - p_es``.
* light fusion: a residual bottleneck (conv1x1 -> conv3x3 -> conv1x1, + identity) after erasing.
* NTM (Eq. 8): ``p~_d = conv1x1(adaptive_max_pool(p_es, size of p_d)) + p_d``.
* NNFM (Eq. 9): ``p_fs = H_{s-1}(p_{s-1}) + H_s(p_s) + H_{s+1}(p_{s+1})`` (pool/identity/upsample + 1x1).
* TDP: an FPN-like top-down pyramid (the Table 1 "NETM + TDP" row) in place of NNFM.

`NETNeck` assembles them; its constructor arguments select each row of the paper's Tables 1-3.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from net_detr2.layers import Conv2d, adaptive_max_pool2d, get_norm, max_pool2d

__all__ = [
    "ConvGate",
    "ChannelPoolGate",
    "GlobalAttentionGate",
    "build_gate",
    "NEM",
    "LightFusion",
    "NTM",
    "NNFM",
    "TopDownPyramid",
    "NETNeck",
    "GATES",
]

GATES = ("conv", "max", "mean", "attention")


def _upsample_to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Bilinear resize of x to like's spatial size (align_corners=False)."""
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


def _conv_then_upsample(conv: nn.Conv2d, x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``conv1x1(upsample(x))`` computed as ``upsample(conv1x1(x))``.

    Both maps are linear and bilinear weights sum to one, so the two orders are equal (bias included);
    running the conv at the deeper, smaller resolution is several times cheaper.
    """
    return _upsample_to(conv(x), like)


def _init_conv(m: nn.Module) -> None:
    for c in m.modules():
        if isinstance(c, nn.Conv2d):
            nn.init.xavier_uniform_(c.weight)
            if c.bias is not None:
                nn.init.zeros_(c.bias)


# ---------------------------------------------------------------------------------------------
# Gates G (Eq. 4-6, Table 2). Each maps (p_deep, p_shallow) -> gate in [0,1]^{N x c x H_s x W_s}.
# ---------------------------------------------------------------------------------------------
class ConvGate(nn.Module):
    """Eq. 6 (our default): sigmoid(conv1x1(U(p_deep))) with c_s outputs -- a channel-wise spatial gate."""

    def __init__(self, deep_channels: int, shallow_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(deep_channels, shallow_channels, kernel_size=1)
        _init_conv(self)

    def forward(self, p_deep: torch.Tensor, p_shallow: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(_conv_then_upsample(self.conv, p_deep, p_shallow))


class ChannelPoolGate(nn.Module):
    """Eq. 5: a one-channel gate from the channel max (or mean) of U(p_deep) (Table 2 "Max"/"Mean Attention").

    A learnable scalar affine (a 1x1 conv with one input and one output channel) precedes the sigmoid:
    without it the gate would have no parameters and, on post-ReLU features, never drop below 0.5.
    """

    def __init__(self, mode: str):
        super().__init__()
        if mode not in ("max", "mean"):
            raise ValueError(f"ChannelPoolGate: mode must be 'max' or 'mean', got {mode!r}")
        self.mode = mode
        self.affine = nn.Conv2d(1, 1, kernel_size=1)
        nn.init.ones_(self.affine.weight)
        nn.init.zeros_(self.affine.bias)

    def forward(self, p_deep: torch.Tensor, p_shallow: torch.Tensor) -> torch.Tensor:
        up = _upsample_to(p_deep, p_shallow)
        pooled = up.amax(dim=1, keepdim=True) if self.mode == "max" else up.mean(dim=1, keepdim=True)
        return torch.sigmoid(self.affine(pooled))


class GlobalAttentionGate(nn.Module):
    """Table 2 "Global Attention": a reduced-channel non-local (self-attention) block producing the gate.

    Query/key have ``deep_channels // reduction`` channels; values map to c_s channels. To keep the
    cost low the attention runs at p_deep's own resolution and its output is upsampled (bilinear) to
    p_s before the sigmoid.
    """

    def __init__(self, deep_channels: int, shallow_channels: int, reduction: int = 8):
        super().__init__()
        inner = max(1, deep_channels // reduction)
        self.query = nn.Conv2d(deep_channels, inner, kernel_size=1)
        self.key = nn.Conv2d(deep_channels, inner, kernel_size=1)
        self.value = nn.Conv2d(deep_channels, shallow_channels, kernel_size=1)
        self.scale = inner**-0.5
        _init_conv(self)

    def forward(self, p_deep: torch.Tensor, p_shallow: torch.Tensor) -> torch.Tensor:
        n, _, h, w = p_deep.shape
        q = self.query(p_deep).flatten(2)  # (N, r, HW)
        k = self.key(p_deep).flatten(2)
        v = self.value(p_deep).flatten(2)  # (N, c_s, HW)
        attn = torch.softmax(torch.einsum("nri,nrj->nij", q, k) * self.scale, dim=-1)  # (N, HW, HW)
        out = torch.einsum("nij,ncj->nci", attn, v).reshape(n, -1, h, w)
        return torch.sigmoid(_upsample_to(out, p_shallow))


def build_gate(kind: str, deep_channels: int, shallow_channels: int) -> nn.Module:
    """Gate by name: "conv" (default, Eq. 6), "max", "mean" (Eq. 5) or "attention"."""
    if kind == "conv":
        return ConvGate(deep_channels, shallow_channels)
    if kind in ("max", "mean"):
        return ChannelPoolGate(kind)
    if kind == "attention":
        return GlobalAttentionGate(deep_channels, shallow_channels)
    raise ValueError(f"NETNet: unknown gate {kind!r}; choose from {GATES}")


# ---------------------------------------------------------------------------------------------
# NEM, light fusion, NTM
# ---------------------------------------------------------------------------------------------
class NEM(nn.Module):
    """Neighbor Erasing Module (Eq. 3, 7) with a reversed gate computed from the deeper level.

    forward(p_s, p_deep) -> (p~_s, p_es, g): ``p_es = p_s * g``, ``p~_s = p_s - p_es``.
    """

    def __init__(self, gate: nn.Module):
        super().__init__()
        self.gate = gate

    @staticmethod
    def erase(p_s: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(p~_s, p_es) for a given gate g (broadcast over channels when it has one channel)."""
        p_es = p_s * g
        return p_s - p_es, p_es

    def forward(self, p_s: torch.Tensor, p_deep: torch.Tensor):
        g = self.gate(p_deep, p_s)
        kept, erased = self.erase(p_s, g)
        return kept, erased, g


class LightFusion(nn.Module):
    """Residual bottleneck after erasing: conv1x1 -> ReLU -> conv3x3 -> ReLU -> conv1x1, plus identity.

    Inner width is ``channels // reduction``; no norm by default (VGG has none).
    """

    def __init__(self, channels: int, reduction: int = 4, norm: str = ""):
        super().__init__()
        inner = max(1, channels // reduction)
        self.conv1 = Conv2d(
            channels, inner, kernel_size=1, bias=not norm, norm=get_norm(norm, inner), activation=F.relu
        )
        self.conv2 = Conv2d(
            inner, inner, kernel_size=3, padding=1, bias=not norm, norm=get_norm(norm, inner), activation=F.relu
        )
        self.conv3 = Conv2d(inner, channels, kernel_size=1, bias=not norm, norm=get_norm(norm, channels))
        _init_conv(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv3(self.conv2(self.conv1(x)))


class NTM(nn.Module):
    """Neighbor Transferring Module (Eq. 8): ``p_deep + conv1x1(adaptive_max_pool(p_es, size of p_deep))``.

    Adaptive pooling handles the non-integer ratios of SSD300 (38 -> 10, 19 -> 5).
    """

    def __init__(self, shallow_channels: int, deep_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(shallow_channels, deep_channels, kernel_size=1)
        _init_conv(self)

    def transfer(self, p_es: torch.Tensor, p_deep: torch.Tensor) -> torch.Tensor:
        """The term added to p_deep."""
        return self.conv(adaptive_max_pool2d(p_es, p_deep.shape[-2:]))

    def forward(self, p_es: torch.Tensor, p_deep: torch.Tensor) -> torch.Tensor:
        return p_deep + self.transfer(p_es, p_deep)


# ---------------------------------------------------------------------------------------------
# Pyramid fusion before the NETMs: NNFM (Eq. 9) or a top-down pyramid (TDP)
# ---------------------------------------------------------------------------------------------
class NNFM(nn.Module):
    """Nearest Neighbor Fusion Module on the first ``len(channels)`` levels (Eq. 9).

    ``p_fs = H_{s-1}(p_{s-1}) + H_s(p_s) + H_{s+1}(p_{s+1})`` with H_{s-1} = 2x2 max-pool (ceil mode; adaptive
    when that does not give p_s's size) + conv1x1, H_s = conv1x1, H_{s+1} = bilinear upsample + conv1x1.
    Neighbours outside the fused levels are left out (p_1 has no H_0; p_last has no H_{last+1}).
    """

    def __init__(self, channels: Sequence[int]):
        super().__init__()
        n = len(channels)
        if n < 2:
            raise ValueError(f"NNFM needs at least two levels, got channels={list(channels)}")
        self.num_levels = n
        self.same = nn.ModuleList(nn.Conv2d(c, c, 1) for c in channels)
        self.from_above = nn.ModuleList(nn.Conv2d(channels[s - 1], channels[s], 1) for s in range(1, n))  # shallower
        self.from_below = nn.ModuleList(nn.Conv2d(channels[s + 1], channels[s], 1) for s in range(n - 1))  # deeper
        _init_conv(self)

    @staticmethod
    def _pool_to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        y = max_pool2d(x, kernel_size=2, stride=2, ceil_mode=True)
        if y.shape[-2:] != like.shape[-2:]:
            y = adaptive_max_pool2d(x, like.shape[-2:])
        return y

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        p = features[: self.num_levels]
        out = []
        for s in range(self.num_levels):
            y = self.same[s](p[s])
            if s > 0:
                y = y + self.from_above[s - 1](self._pool_to(p[s - 1], p[s]))
            if s < self.num_levels - 1:
                y = y + _conv_then_upsample(self.from_below[s], p[s + 1], p[s])
            out.append(y)
        return out + list(features[self.num_levels :])


class TopDownPyramid(nn.Module):
    """FPN-like top-down fusion over all levels (Table 1 "NETM + TDP"); replaces the first ``num_out`` levels.

    ``t_S = lateral_S(p_S)``, ``t_s = lateral_s(p_s) + conv1x1(upsample(t_{s+1}))`` (channel change), each
    t_s with p_s's channels. Deeper levels than ``num_out`` keep their original features.
    """

    def __init__(self, channels: Sequence[int], num_out: int = 4):
        super().__init__()
        if not 1 <= num_out <= len(channels):
            raise ValueError(f"TopDownPyramid: num_out={num_out} must lie in [1, {len(channels)}]")
        self.num_out = num_out
        self.lateral = nn.ModuleList(nn.Conv2d(c, c, 1) for c in channels)
        self.top_down = nn.ModuleList(nn.Conv2d(channels[s + 1], channels[s], 1) for s in range(len(channels) - 1))
        _init_conv(self)

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        t = self.lateral[-1](features[-1])
        fused = [t]
        for s in range(len(features) - 2, -1, -1):
            t = self.lateral[s](features[s]) + _conv_then_upsample(self.top_down[s], t, features[s])
            fused.append(t)
        fused = fused[::-1]
        return fused[: self.num_out] + list(features[self.num_out :])


# ---------------------------------------------------------------------------------------------
# The whole neck
# ---------------------------------------------------------------------------------------------
class NETNeck(nn.Module):
    """NETNet's pyramid reconfiguration: optional fusion (NNFM / TDP), then NETMs on level pairs.

    Table 1 rows: SSD (nothing), NEM (``use_nem``), NTM (``use_ntm``), NETM (both), NETM+TDP
    (``fusion="tdp"``), NETNet (``fusion="nnfm"``). Table 2: ``gate``. Table 3: ``pairs``
    ((0,2),) = NEM13, ((1,3),) = NEM24, ((0,1),(1,2),(2,3)) = NNEM, ((0,2),(1,3)) = NEM (skip manner).

    Every gate is computed from the (fused) pyramid *before* any NTM adds to it; each level is erased by
    at most one pair. With ``use_ntm`` and no ``use_nem`` the gate still selects what is transferred, but
    p_s is left unerased.

    Args:
        in_channels: channels of every pyramid level, shallow to deep.
        use_nem: erase p_s by the reversed gate (and apply the light fusion block, if enabled).
        use_ntm: transfer the erased part p_es to p_d.
        fusion: None, "nnfm" or "tdp", applied to the first ``fusion_levels`` levels first.
        gate: "conv" | "max" | "mean" | "attention".
        pairs: (shallow, deep) level index pairs, 0-based.
        light_fusion: residual block after erasing.
        fusion_levels: how many shallow levels NNFM fuses / TDP outputs (paper: p1..p4 = 4).
        norm: norm inside the light fusion block ("" for VGG as in the paper; "BN" for from-scratch runs).
    """

    def __init__(
        self,
        *,
        in_channels: Sequence[int],
        use_nem: bool = True,
        use_ntm: bool = True,
        fusion: str | None = "nnfm",
        gate: str = "conv",
        pairs: Sequence[Sequence[int]] = ((0, 2), (1, 3)),
        light_fusion: bool = True,
        fusion_levels: int = 4,
        norm: str = "",
    ):
        super().__init__()
        self.in_channels = list(in_channels)
        n = len(self.in_channels)
        self.pairs = [tuple(int(v) for v in p) for p in pairs]
        for s, d in self.pairs:
            if not 0 <= s < d < n:
                raise ValueError(f"NETNeck: pair ({s}, {d}) must satisfy 0 <= shallow < deep < {n} (levels)")
        shallow = [s for s, _ in self.pairs]
        if len(set(shallow)) != len(shallow):
            raise ValueError(f"NETNeck: each level can be erased by one pair only, got pairs={self.pairs}")
        if gate not in GATES:
            raise ValueError(f"NETNeck: unknown gate {gate!r}; choose from {GATES}")
        if fusion not in (None, "nnfm", "tdp"):
            raise ValueError(f"NETNeck: fusion must be None, 'nnfm' or 'tdp', got {fusion!r}")
        self.use_nem, self.use_ntm, self.fusion_kind = use_nem, use_ntm, fusion
        fusion_levels = min(fusion_levels, n)
        if fusion == "nnfm":
            self.fusion = NNFM(self.in_channels[:fusion_levels])
        elif fusion == "tdp":
            self.fusion = TopDownPyramid(self.in_channels, num_out=fusion_levels)
        else:
            self.fusion = None
        needs_gate = (use_nem or use_ntm) and len(self.pairs) > 0
        self.nems = (
            nn.ModuleList(NEM(build_gate(gate, self.in_channels[d], self.in_channels[s])) for s, d in self.pairs)
            if needs_gate
            else nn.ModuleList()
        )
        self.fusion_blocks = (
            nn.ModuleList(LightFusion(self.in_channels[s], norm=norm) for s, _ in self.pairs)
            if (use_nem and light_fusion and needs_gate)
            else None
        )
        self.ntms = (
            nn.ModuleList(NTM(self.in_channels[s], self.in_channels[d]) for s, d in self.pairs)
            if (use_ntm and needs_gate)
            else None
        )

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        """features: pyramid levels shallow -> deep (N, c_l, H_l, W_l); returns the same shapes."""
        if len(features) != len(self.in_channels):
            raise ValueError(f"NETNeck: expected {len(self.in_channels)} levels, got {len(features)}")
        # On CPU the neck runs in channels-last layout: PyTorch's bilinear upsampling is ~15x faster
        # there (512 channels, 19 -> 38: 2.2 -> 0.12 ms) and the 1x1 convs no slower, so the whole
        # SSD300 neck takes 39 instead of 44 ms with 2 threads, layout copies included; the values
        # are the same. The heads get NCHW maps back: SSD's head convs are no faster in channels-last
        # over all levels (faster at 38x38, slower at 19x19 and 10x10).
        channels_last = features[0].device.type == "cpu"
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        p = [f.contiguous(memory_format=memory_format) for f in features]
        if self.fusion is not None:
            p = self.fusion(p)
        out = list(p)
        transfers = []
        for i, (s, d) in enumerate(self.pairs[: len(self.nems)]):
            kept, erased, _ = self.nems[i](p[s], p[d])  # gate from p_d before any transfer
            if self.use_nem:
                out[s] = self.fusion_blocks[i](kept) if self.fusion_blocks is not None else kept
            if self.ntms is not None:
                transfers.append((d, self.ntms[i].transfer(erased, p[d])))
        for d, t in transfers:
            out[d] = out[d] + t
        return [o.contiguous() for o in out] if channels_last else out

    def gates(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        """The gate of every pair (for tests and visualisation), computed as in `forward`."""
        p = self.fusion(list(features)) if self.fusion is not None else list(features)
        return [nem.gate(p[d], p[s]) for nem, (s, d) in zip(self.nems, self.pairs)]
