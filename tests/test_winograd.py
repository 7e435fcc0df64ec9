"""Winograd F(4x4, 3x3) and the fast-path copy against their plain references (F.conv2d, the eval model)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from spikelens.hybrid_net.fast_inference import fast_copy, fold_batch_norm
from spikelens.hybrid_net.winograd import WinogradConv3x3, conv3x3, transform_weight


@pytest.mark.parametrize(
    ("b", "c", "k", "h", "w", "bias", "channels_last"),
    [
        (1, 64, 64, 66, 66, True, True),  # whole tiles
        (2, 32, 48, 19, 27, False, False),  # ragged edges, batch, NCHW input
        (1, 40, 33, 3, 3, True, True),  # a single output pixel
        (3, 5, 7, 10, 9, True, False),
    ],
)
def test_winograd_equals_direct_convolution(b, c, k, h, w, bias, channels_last):
    g = torch.Generator().manual_seed(h * w + c)
    x = torch.randn(b, c, h, w, generator=g)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    weight = torch.randn(k, c, 3, 3, generator=g) / (3 * c**0.5)
    beta = torch.randn(k, generator=g) if bias else None
    want = F.conv2d(x, weight, beta)
    got = conv3x3(x, transform_weight(weight), beta)
    assert got.shape == want.shape
    assert (got - want).abs().max() <= 1e-4 * want.abs().max()  # fp32 rounding of the transforms only
    assert got.is_contiguous(memory_format=torch.channels_last)


def test_winograd_refuses_what_it_does_not_compute():
    with pytest.raises(ValueError, match="3x3"):
        WinogradConv3x3(nn.Conv2d(8, 8, 3, padding=1))
    with pytest.raises(ValueError, match="3x3"):
        WinogradConv3x3(nn.Conv2d(8, 8, 3, stride=2))
    with pytest.raises(ValueError, match="K x C x 3 x 3"):
        transform_weight(torch.zeros(8, 8, 5, 5))
    with pytest.raises(ValueError, match="channels"):
        conv3x3(torch.zeros(1, 4, 8, 8), transform_weight(torch.zeros(2, 3, 3, 3)))


def _random_bn(bn: nn.BatchNorm2d, g: torch.Generator) -> nn.BatchNorm2d:
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(bn.num_features, generator=g))
        bn.running_var.copy_(torch.rand(bn.num_features, generator=g) + 0.5)
        bn.weight.copy_(1 + 0.3 * torch.randn(bn.num_features, generator=g))
        bn.bias.copy_(torch.randn(bn.num_features, generator=g))
    return bn.eval()


@pytest.mark.parametrize(
    "conv",
    [
        nn.Conv2d(6, 10, 3, padding=1, bias=False),
        nn.Conv2d(6, 10, 3, stride=2, padding=1),
        nn.ConvTranspose2d(6, 10, 3, stride=2, padding=1, output_padding=1, bias=False),
    ],
)
def test_folded_batch_norm_is_the_same_affine_map(conv):
    g = torch.Generator().manual_seed(1)
    bn = _random_bn(nn.BatchNorm2d(10), g)
    x = torch.randn(2, 6, 12, 12, generator=g)
    with torch.no_grad():
        want = bn(conv(x))
        fold_batch_norm(conv, bn)
        got = conv(x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_fast_copy_rewrites_a_copy_and_leaves_the_model_alone():
    g = torch.Generator().manual_seed(2)
    model = nn.Sequential(
        nn.ReflectionPad2d(1),
        nn.Conv2d(48, 64, 3, bias=False),
        _random_bn(nn.BatchNorm2d(64), g),
        nn.ReLU(),
        nn.Conv2d(64, 8, 3, padding=1),  # padded: stays direct
        _random_bn(nn.BatchNorm2d(8), g),
    ).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fast = fast_copy(model)
    kinds = [type(m).__name__ for m in fast]
    assert kinds == ["ReflectionPad2d", "WinogradConv3x3", "Identity", "ReLU", "Conv2d", "Identity"]
    x = torch.randn(1, 48, 21, 30, generator=g)
    with torch.inference_mode():
        torch.testing.assert_close(fast(x), model(x), rtol=1e-4, atol=1e-4)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert isinstance(model[2], nn.BatchNorm2d) and isinstance(model[1], nn.Conv2d)
