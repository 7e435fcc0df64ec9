"""Attention on spiking layers' membrane input, from the seed papers; sequences are T x B x C x H x W.

- :class:`TCJA` (Zhu et al., "TCJA-SNN", 2022): the T x C matrix of spatial
  means, a 1-D convolution along time (C channels) and one along channels
  (T channels), fused by their product, through a sigmoid, scales every
  (t, c) map. The reference code names the two kernels the other way round
  (its ``kernel_size_t`` is the width along *channels*); we name each
  convolution by the axis it slides along.
- :class:`MultiDimAttention` (Yao et al., "Attention Spiking Neural
  Networks", TPAMI 2023, MA-SNN): temporal, then channel, then spatial
  weights (CBAM-style: a shared two-layer MLP over average- and max-pooled
  descriptors; a 2-channel convolution over the mean and max maps), then a
  ReLU. Same definitions as SpikingJelly 2.0's ``MultiDimensionalAttention``
  (tested on copied weights).

Both fix T at construction (their weights are per time step).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class TCJA(nn.Module):
    def __init__(self, steps: int, channels: int, k_time: int = 3, k_channel: int = 3) -> None:
        super().__init__()
        self.steps, self.channels = steps, channels
        self.along_time = nn.Conv1d(channels, channels, k_time, padding="same", bias=False)
        self.along_channels = nn.Conv1d(steps, steps, k_channel, padding="same", bias=False)

    def gate(self, x_seq: Tensor) -> Tensor:
        """The T x B x C weights in (0, 1)."""
        z = x_seq.mean(dim=(3, 4)).permute(1, 0, 2)  # B x T x C
        by_time = self.along_time(z.transpose(1, 2)).transpose(1, 2)  # B x T x C
        by_channel = self.along_channels(z)  # B x T x C
        return torch.sigmoid(by_time * by_channel).permute(1, 0, 2)

    def forward(self, x_seq: Tensor) -> Tensor:
        _check(x_seq, self.steps, self.channels)
        return x_seq * self.gate(x_seq)[..., None, None]


class _SharedMLP(nn.Module):
    """sigmoid(mlp(mean) + mlp(max)) over one axis' descriptors."""

    def __init__(self, n: int, reduction: int) -> None:
        super().__init__()
        if not 1 <= reduction <= n:
            raise ValueError(f"reduction {reduction} must be between 1 and {n}")
        hidden = n // reduction
        self.mlp = nn.Sequential(nn.Linear(n, hidden, bias=False), nn.ReLU(), nn.Linear(hidden, n, bias=False))

    def forward(self, mean: Tensor, peak: Tensor) -> Tensor:
        return torch.sigmoid(self.mlp(mean) + self.mlp(peak))


class MultiDimAttention(nn.Module):
    def __init__(
        self,
        steps: int,
        channels: int,
        reduction_t: int = 4,
        reduction_c: int = 4,
        kernel: int = 3,
        temporal: bool = True,
        channel: bool = True,
        spatial: bool = True,
    ) -> None:
        super().__init__()
        if not (temporal or channel or spatial):
            raise ValueError("enable at least one of temporal, channel, spatial")
        self.steps, self.channels = steps, channels
        self.temporal = _SharedMLP(steps, reduction_t) if temporal else None
        self.channel = _SharedMLP(channels, reduction_c) if channel else None
        self.spatial = nn.Conv2d(2, 1, kernel, padding=kernel // 2, bias=False) if spatial else None

    def forward(self, x_seq: Tensor) -> Tensor:
        _check(x_seq, self.steps, self.channels)
        x = x_seq.transpose(0, 1)  # B x T x C x H x W
        if self.temporal is not None:
            w = self.temporal(x.mean(dim=(2, 3, 4)), x.amax(dim=(2, 3, 4)))  # B x T
            x = x * w[:, :, None, None, None]
        if self.channel is not None:
            w = self.channel(x.mean(dim=(1, 3, 4)), x.amax(dim=(1, 3, 4)))  # B x C
            x = x * w[:, None, :, None, None]
        if self.spatial is not None:
            flat = x.flatten(1, 2)  # B x TC x H x W
            maps = torch.cat((flat.mean(dim=1, keepdim=True), flat.amax(dim=1, keepdim=True)), dim=1)
            x = x * torch.sigmoid(self.spatial(maps))[:, None]
        return torch.relu(x).transpose(0, 1)


def _check(x_seq: Tensor, steps: int, channels: int) -> None:
    if x_seq.ndim != 5 or x_seq.shape[0] != steps or x_seq.shape[2] != channels:
        raise ValueError(f"expected T x B x C x H x W with T = {steps}, C = {channels}; got {tuple(x_seq.shape)}")
