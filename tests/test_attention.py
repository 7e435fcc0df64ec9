"""TCJA and MA attention: shapes, gradients, and parity with the papers' reference code."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from spikelens.hybrid_net.attention import TCJA, MultiDimAttention

T, B, C, H, W = 6, 3, 8, 5, 7


class ReferenceTCJA(nn.Module):
    """ridgerchu/TCJA ``src/layers.py`` (commit 6fc98ec), the paper's code, transcribed:

        self.conv = nn.Conv1d(in_channels=T, out_channels=T,
                              kernel_size=kernel_size_t, padding='same', bias=False),
        self.conv_c = nn.Conv1d(in_channels=channel, out_channels=channel,
                                kernel_size=kernel_size_c, padding='same', bias=False)
        ...
        x = torch.mean(x_seq.permute(1, 0, 2, 3, 4), dim=[3, 4])
        x_c = x.permute(0, 2, 1)
        conv_t_out = self.conv(x).permute(1, 0, 2)
        conv_c_out = self.conv_c(x_c).permute(2, 0, 1)
        out = self.sigmoid(conv_c_out * conv_t_out)
        y_seq = x_seq * out[:, :, :, None, None]

    (The stored commit's trailing comma makes ``self.conv`` a tuple, which cannot run; dropped here.) Note
    that ``kernel_size_t`` is the width of the convolution that slides along *channels* (T in/out
    channels), ``kernel_size_c`` the one that slides along time.
    """

    def __init__(self, kernel_size_t: int, kernel_size_c: int, T: int, channel: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels=T, out_channels=T, kernel_size=kernel_size_t, padding="same", bias=False)
        self.conv_c = nn.Conv1d(
            in_channels=channel, out_channels=channel, kernel_size=kernel_size_c, padding="same", bias=False
        )
        self.sigmoid = nn.Sigmoid()

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        x = torch.mean(x_seq.permute(1, 0, 2, 3, 4), dim=[3, 4])
        x_c = x.permute(0, 2, 1)
        conv_t_out = self.conv(x).permute(1, 0, 2)
        conv_c_out = self.conv_c(x_c).permute(2, 0, 1)
        out = self.sigmoid(conv_c_out * conv_t_out)
        return x_seq * out[:, :, :, None, None]


@pytest.mark.parametrize(("k_time", "k_channel"), [(3, 3), (2, 4), (1, 5)])
def test_tcja_matches_the_papers_code(k_time, k_channel):
    torch.manual_seed(0)
    ours = TCJA(T, C, k_time=k_time, k_channel=k_channel)
    ref = ReferenceTCJA(kernel_size_t=k_channel, kernel_size_c=k_time, T=T, channel=C)
    ref.conv.weight.data.copy_(ours.along_channels.weight)
    ref.conv_c.weight.data.copy_(ours.along_time.weight)
    x = torch.randn(T, B, C, H, W, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_(True)
    y, y_ref = ours(x), ref(x_ref)
    assert y.shape == (T, B, C, H, W)
    torch.testing.assert_close(y, y_ref)
    g = torch.randn_like(y)
    y.backward(g)
    y_ref.backward(g)
    torch.testing.assert_close(x.grad, x_ref.grad)
    torch.testing.assert_close(ours.along_time.weight.grad, ref.conv_c.weight.grad)
    torch.testing.assert_close(ours.along_channels.weight.grad, ref.conv.weight.grad)


def test_tcja_gate_by_hand():
    """One (t, c) weight computed from the definition: sigmoid(conv_time(z)[t, c] * conv_channel(z)[t, c])."""
    torch.manual_seed(1)
    m = TCJA(T, C, k_time=3, k_channel=3)
    x = torch.rand(T, 1, C, H, W)
    z = x.mean(dim=(3, 4))[:, 0]  # T x C
    t, c = 2, 5
    wt, wc = m.along_time.weight, m.along_channels.weight  # C x C x 3, T x T x 3
    by_time = sum(wt[c, i, j] * z[t + j - 1, i] for i in range(C) for j in range(3))
    by_chan = sum(wc[t, i, j] * z[i, c + j - 1] for i in range(T) for j in range(3))
    want = torch.sigmoid(by_time * by_chan)
    torch.testing.assert_close(m.gate(x)[t, 0, c], want)


def test_multi_dim_attention_matches_spikingjelly():
    """SpikingJelly 2.0's ``layer.MultiDimensionalAttention`` (the MA-SNN block of ``model.masnn``), same weights."""
    layer = pytest.importorskip("spikingjelly.activation_based.layer")
    torch.manual_seed(2)
    ref = layer.MultiDimensionalAttention(T=T, C=C, reduction_t=2, reduction_c=4, kernel_size=3)
    ours = MultiDimAttention(T, C, reduction_t=2, reduction_c=4, kernel=3)
    for mine, theirs in ((ours.temporal, ref.ta), (ours.channel, ref.ca)):
        mine.mlp[0].weight.data.copy_(theirs.sharedMLP[0].weight.flatten(1))
        mine.mlp[2].weight.data.copy_(theirs.sharedMLP[2].weight.flatten(1))
    ours.spatial.weight.data.copy_(ref.sa.conv.weight)
    x = torch.randn(T, B, C, H, W, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_(True)
    y, y_ref = ours(x), ref(x_ref)
    torch.testing.assert_close(y, y_ref)
    g = torch.randn_like(y)
    y.backward(g)
    y_ref.backward(g)
    torch.testing.assert_close(x.grad, x_ref.grad)
    torch.testing.assert_close(ours.spatial.weight.grad, ref.sa.conv.weight.grad)


@pytest.mark.parametrize("parts", [(True, False, False), (False, True, False), (False, False, True)])
def test_multi_dim_attention_parts_alone(parts):
    layer = pytest.importorskip("spikingjelly.activation_based.layer")
    torch.manual_seed(3)
    kw = dict(zip(("use_temporal", "use_channel", "use_spatial"), parts, strict=True))
    ref = layer.MultiDimensionalAttention(T=T, C=C, reduction_t=3, reduction_c=2, kernel_size=7, **kw)
    ours = MultiDimAttention(
        T, C, reduction_t=3, reduction_c=2, kernel=7, temporal=parts[0], channel=parts[1], spatial=parts[2]
    )
    if parts[0]:
        ours.temporal.mlp[0].weight.data.copy_(ref.ta.sharedMLP[0].weight.flatten(1))
        ours.temporal.mlp[2].weight.data.copy_(ref.ta.sharedMLP[2].weight.flatten(1))
    if parts[1]:
        ours.channel.mlp[0].weight.data.copy_(ref.ca.sharedMLP[0].weight.flatten(1))
        ours.channel.mlp[2].weight.data.copy_(ref.ca.sharedMLP[2].weight.flatten(1))
    if parts[2]:
        ours.spatial.weight.data.copy_(ref.sa.conv.weight)
    x = torch.randn(T, B, C, H, W)
    torch.testing.assert_close(ours(x), ref(x))


def test_attention_refuses_the_wrong_shape():
    with pytest.raises(ValueError, match="T = 6"):
        TCJA(T, C)(torch.zeros(T + 1, B, C, H, W))
    with pytest.raises(ValueError, match="C = 8"):
        MultiDimAttention(T, C)(torch.zeros(T, B, C + 1, H, W))
    with pytest.raises(ValueError, match="at least one"):
        MultiDimAttention(T, C, temporal=False, channel=False, spatial=False)
