"""Tests of net_detr2.layers: norms, Conv2d with attached norm/activation, NMS, ROIAlign, L2Norm, helpers."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from net_detr2.layers import (
    Conv2d,
    FrozenBatchNorm2d,
    L2Norm,
    NaiveSyncBatchNorm,
    ROIAlign,
    ShapeSpec,
    batched_nms,
    cat,
    convert_frozen_batchnorm,
    get_norm,
    move_device_like,
    nms,
    nonzero_tuple,
    shapes_to_tensor,
)


def _random_bn(c, eps=1e-5):
    bn = nn.BatchNorm2d(c, eps=eps)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5, generator=g)
        bn.bias.uniform_(-0.2, 0.2, generator=g)
        bn.running_mean.uniform_(-0.2, 0.2, generator=g)
        bn.running_var.uniform_(0.5, 1.5, generator=g)
    return bn.eval()


def test_frozen_bn_equals_bn_in_eval_and_has_detectron2_buffers():
    bn = _random_bn(6)
    frozen = FrozenBatchNorm2d.convert_frozen_batchnorm(bn)
    assert isinstance(frozen, FrozenBatchNorm2d) and frozen.eps == 1e-5
    assert list(frozen.state_dict().keys()) == ["weight", "bias", "running_mean", "running_var"]
    assert list(frozen.parameters()) == []
    x = torch.randn(2, 6, 5, 7)
    torch.testing.assert_close(frozen(x), bn(x), rtol=0, atol=1e-6)
    # train mode changes nothing: the statistics stay frozen
    frozen.train()
    torch.testing.assert_close(frozen(x), bn(x), rtol=0, atol=1e-6)
    # hand-computed single channel: (x - m) / sqrt(v + eps) * w + b
    f = FrozenBatchNorm2d(1)
    f.weight.fill_(2.0), f.bias.fill_(1.0), f.running_mean.fill_(3.0), f.running_var.fill_(4.0 - 1e-5)
    assert f(torch.full((1, 1, 1, 1), 5.0)).item() == pytest.approx(3.0, abs=1e-6)


def test_frozen_bn_loads_bn_checkpoint_with_num_batches_tracked():
    bn = _random_bn(4)
    frozen = FrozenBatchNorm2d(4)
    result = frozen.load_state_dict(bn.state_dict())  # has num_batches_tracked
    assert result.missing_keys == [] and result.unexpected_keys == []
    torch.testing.assert_close(frozen.running_var, bn.running_var)


def test_convert_frozen_batchnorm_recurses_into_children():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), _random_bn(4), nn.Sequential(nn.ReLU(), _random_bn(4)))
    x = torch.randn(1, 3, 8, 8)
    expected = net(x)
    out = convert_frozen_batchnorm(net)
    assert out is net
    assert isinstance(net[1], FrozenBatchNorm2d) and isinstance(net[2][1], FrozenBatchNorm2d)
    torch.testing.assert_close(net(x), expected, rtol=0, atol=1e-6)


def test_conv2d_state_dict_keys_and_norm_activation_order():
    conv = Conv2d(3, 4, kernel_size=3, padding=1, bias=False, norm=FrozenBatchNorm2d(4), activation=F.relu)
    assert list(conv.state_dict().keys()) == [
        "weight",
        "norm.weight",
        "norm.bias",
        "norm.running_mean",
        "norm.running_var",
    ]
    with torch.no_grad():
        conv.norm.weight.uniform_(0.5, 1.5), conv.norm.bias.uniform_(-1, 1)
        conv.norm.running_mean.uniform_(-1, 1), conv.norm.running_var.uniform_(0.5, 1.5)
    x = torch.randn(2, 3, 9, 9)
    ref = F.conv2d(x, conv.weight, None, 1, 1)
    ref = (ref - conv.norm.running_mean.view(1, -1, 1, 1)) / (conv.norm.running_var.view(1, -1, 1, 1) + 1e-5).sqrt()
    ref = F.relu(ref * conv.norm.weight.view(1, -1, 1, 1) + conv.norm.bias.view(1, -1, 1, 1))
    out = conv(x)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-5)
    assert (out >= 0).all() and (out == 0).any()
    # gradients still reach the conv weight through the folded frozen norm
    conv(x).sum().backward()
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0


def test_conv2d_with_bias_and_trainable_bn_and_no_norm():
    bn = nn.BatchNorm2d(4).eval()
    with torch.no_grad():
        bn.running_mean.fill_(0.5)
    conv = Conv2d(3, 4, kernel_size=1, bias=True, norm=bn)
    x = torch.randn(1, 3, 4, 4)
    torch.testing.assert_close(conv(x), bn(F.conv2d(x, conv.weight, conv.bias)))
    plain = Conv2d(3, 4, kernel_size=1)
    assert plain.norm is None and plain.activation is None
    torch.testing.assert_close(plain(x), F.conv2d(x, plain.weight, plain.bias))
    # folding a FrozenBN into a conv that has its own bias
    conv_fb = Conv2d(3, 4, kernel_size=1, bias=True, norm=FrozenBatchNorm2d(4))
    with torch.no_grad():
        conv_fb.norm.weight.fill_(2.0), conv_fb.norm.running_mean.fill_(1.0)
    raw = F.conv2d(x, conv_fb.weight, conv_fb.bias)
    torch.testing.assert_close(conv_fb(x), (raw - 1.0) / math.sqrt(1.0) * 2.0, rtol=0, atol=1e-5)


def test_get_norm_variants():
    assert get_norm("", 8) is None and get_norm(None, 8) is None
    assert type(get_norm("BN", 8)) is nn.BatchNorm2d and get_norm("BN", 8).num_features == 8
    assert isinstance(get_norm("FrozenBN", 8), FrozenBatchNorm2d)
    gn = get_norm("GN", 64)
    assert isinstance(gn, nn.GroupNorm) and gn.num_groups == 32 and gn.num_channels == 64
    sbn = get_norm("SyncBN", 8)
    assert isinstance(sbn, NaiveSyncBatchNorm)
    custom = get_norm(lambda c: nn.GroupNorm(2, c), 6)
    assert isinstance(custom, nn.GroupNorm) and custom.num_groups == 2
    with pytest.raises(ValueError, match="Unknown norm 'BatchNorm'"):
        get_norm("BatchNorm", 8)


def test_naive_syncbn_single_process_is_batchnorm():
    torch.manual_seed(0)
    sbn, bn = NaiveSyncBatchNorm(3), nn.BatchNorm2d(3)
    x = torch.randn(4, 3, 5, 5)
    torch.testing.assert_close(sbn(x), bn(x))
    torch.testing.assert_close(sbn.running_var, bn.running_var)


def test_l2norm_scales_unit_vectors_by_learnable_weight():
    layer = L2Norm(3)
    assert layer.weight.shape == (3,) and torch.all(layer.weight == 20.0)
    x = torch.zeros(1, 3, 1, 2)
    x[0, :, 0, 0] = torch.tensor([3.0, 4.0, 0.0])
    x[0, :, 0, 1] = torch.tensor([0.0, 0.0, -2.0])
    y = layer(x)
    torch.testing.assert_close(y[0, :, 0, 0], torch.tensor([12.0, 16.0, 0.0]))
    torch.testing.assert_close(y[0, :, 0, 1], torch.tensor([0.0, 0.0, -20.0]))
    assert torch.isfinite(layer(torch.zeros(1, 3, 2, 2))).all()
    y.sum().backward()
    assert layer.weight.grad is not None
    torch.testing.assert_close(layer.weight.grad, torch.tensor([0.6, 0.8, -1.0]))


def test_batched_nms_is_per_category():
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60]], dtype=torch.float64)
    scores = torch.tensor([0.9, 0.8, 0.7, 0.95])
    keep = batched_nms(boxes, scores, torch.tensor([0, 0, 1, 0]), 0.5)
    # box 1 overlaps box 0 (IoU 0.81) in class 0; box 2 is in class 1 so it survives
    assert keep.tolist() == [3, 0, 2]
    assert nms(boxes.float(), scores, 0.5).tolist() == [3, 0]


def test_roi_align_aligned_flag():
    feat = torch.arange(16.0).reshape(1, 1, 4, 4)
    rois = torch.tensor([[0, 0.0, 0.0, 4.0, 4.0]])
    out = ROIAlign((1, 1), 1.0, sampling_ratio=1, aligned=True)(feat, rois)
    # aligned: the single sample is at the box centre (2, 2) - 0.5 = pixel (1.5, 1.5): mean of 5, 6, 9, 10
    assert out.shape == (1, 1, 1, 1) and out.item() == pytest.approx(7.5)
    out_v1 = ROIAlign((1, 1), 1.0, sampling_ratio=1, aligned=False)(feat, rois)
    assert out_v1.item() == pytest.approx(10.0)  # sample at pixel (2, 2)
    with pytest.raises(AssertionError, match=r"rois \[R, 5\]"):
        ROIAlign(2, 1.0, 0)(feat, rois[:, 1:])


def test_small_helpers():
    a, b = torch.ones(2, 3), torch.zeros(1, 3)
    assert cat([a]) is a
    assert cat([a, b]).shape == (3, 3)
    rows, cols = nonzero_tuple(torch.tensor([[0, 1], [1, 0]]))
    assert rows.tolist() == [0, 1] and cols.tolist() == [1, 0]
    assert [t.tolist() for t in nonzero_tuple(torch.tensor(True))] == [[0]]
    assert move_device_like(torch.ones(1), torch.zeros(1)).device == torch.device("cpu")
    t = shapes_to_tensor([3, 4])
    assert t.dtype == torch.int64 and t.tolist() == [3, 4]
    s = ShapeSpec(channels=256, stride=8)
    assert (s.channels, s.height, s.width, s.stride) == (256, None, None, 8)
    assert ShapeSpec(3) == ShapeSpec(channels=3)


def _syncbn_worker(rank, world, init_file, x, result_file):
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        sbn = NaiveSyncBatchNorm(3)
        with torch.no_grad():
            sbn.weight.copy_(torch.tensor([1.0, 2.0, 0.5]))
        part = x[rank * 2 : (rank + 1) * 2].clone().requires_grad_(True)
        y = sbn(part)
        (y * torch.arange(1.0, 4.0).view(1, 3, 1, 1)).pow(2).sum().backward()
        if rank == 0:
            torch.save(
                {"y": y.detach(), "grad": part.grad, "running_var": sbn.running_var, "running_mean": sbn.running_mean},
                result_file,
            )
    finally:
        dist.destroy_process_group()


def test_naive_syncbn_two_processes_equals_bn_on_the_global_batch(tmp_path):
    torch.manual_seed(0)
    x = torch.randn(4, 3, 5, 5) * 2 + 1
    # fork: the children need no fresh interpreter / torch import (seconds each on a loaded machine)
    torch.multiprocessing.start_processes(
        _syncbn_worker,
        args=(2, str(tmp_path / "init"), x, str(tmp_path / "out.pt")),
        nprocs=2,
        join=True,
        start_method="fork",
    )
    got = torch.load(tmp_path / "out.pt", weights_only=True)
    bn = nn.BatchNorm2d(3)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([1.0, 2.0, 0.5]))
    xg = x.clone().requires_grad_(True)
    y = bn(xg)
    (y * torch.arange(1.0, 4.0).view(1, 3, 1, 1)).pow(2).sum().backward()
    torch.testing.assert_close(got["y"], y[:2].detach(), rtol=1e-4, atol=1e-5)
    # the gradient flows through the global statistics (the other process's samples count too)
    torch.testing.assert_close(got["grad"], xg.grad[:2], rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(got["running_mean"], bn.running_mean)
    torch.testing.assert_close(got["running_var"], bn.running_var, rtol=1e-4, atol=1e-6)


def test_frozen_bn_converts_back_to_trainable_bn():
    net = nn.Sequential(nn.Conv2d(3, 4, 1), FrozenBatchNorm2d.convert_frozen_batchnorm(_random_bn(4)))
    x = torch.randn(2, 3, 4, 4)
    expected = net(x)
    FrozenBatchNorm2d.convert_frozenbatchnorm2d_to_batchnorm(net)
    assert type(net[1]) is nn.BatchNorm2d and net[1].weight.requires_grad
    torch.testing.assert_close(net.eval()(x), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "shape,args,kwargs",
    [
        ((2, 8, 15, 17), (2, 2), {"ceil_mode": True}),  # SSD's VGG pools (odd sizes)
        ((1, 4, 20, 21), (3, 2, 1), {}),  # ResNet stem
        ((1, 4, 9, 9), (3, 1, 1), {}),  # VGG pool5
    ],
)
def test_max_pool2d_equals_torch_in_value_layout_and_gradient(shape, args, kwargs):
    from net_detr2.layers import max_pool2d

    x = torch.randn(*shape, requires_grad=True)  # continuous values: no ties, so one argmax per window
    ours = max_pool2d(x, *args, **kwargs)
    ref = F.max_pool2d(x, *args, **kwargs)
    assert torch.equal(ours, ref) and ours.is_contiguous()
    g = torch.randn_like(ref)
    (grad_ours,) = torch.autograd.grad(ours, x, g)
    (grad_ref,) = torch.autograd.grad(ref, x, g)
    torch.testing.assert_close(grad_ours, grad_ref, rtol=0, atol=1e-6)


def test_adaptive_max_pool2d_equals_torch():
    from net_detr2.layers import adaptive_max_pool2d

    x = torch.randn(1, 6, 38, 38)
    for size in [(10, 10), (5, 5), (19, 19)]:
        ours = adaptive_max_pool2d(x, size)
        assert torch.equal(ours, F.adaptive_max_pool2d(x, size)) and ours.is_contiguous()


def test_fvcore_weight_fills_are_the_caffe2_ones():
    """The backbones and heads initialise through fvcore's fills: MSRA = He normal over fan_out with the ReLU gain,
    Xavier = uniform within sqrt(3 / fan_in); both zero the bias (checked draw for draw and by the bounds)."""
    from fvcore.nn import weight_init

    conv = nn.Conv2d(64, 128, 3)
    fan_in, fan_out = 64 * 9, 128 * 9
    torch.manual_seed(0)
    weight_init.c2_xavier_fill(conv)
    xavier = conv.weight.detach().clone()
    torch.manual_seed(0)
    expected = torch.empty_like(xavier).uniform_(-math.sqrt(3 / fan_in), math.sqrt(3 / fan_in))
    torch.testing.assert_close(xavier, expected)
    assert conv.bias.abs().sum() == 0
    torch.manual_seed(0)
    weight_init.c2_msra_fill(conv)
    torch.manual_seed(0)
    torch.testing.assert_close(conv.weight.detach(), torch.empty_like(xavier).normal_(0, math.sqrt(2 / fan_out)))
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / fan_out), rel=0.02)
