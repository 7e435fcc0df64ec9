"""RefocusNet (E-SAI): estimate the refocusing shift from unfocused frames, then warp.

The network sees T unfocused ON/OFF event frames and regresses psi, the
horizontal shift in pixels per time bin of the plane to bring into focus
(psi = rate * bin duration). Frames are then refocused differentiably: bin b
moves by psi * (b - b_ref) px through ``affine_grid`` / ``grid_sample``,
exactly as manual refocusing would with that rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class RefocusNetConfig:
    n_bins: int = 16
    channels: int = 32
    psi_scale: float = 10.0  # psi = psi_scale * tanh-free linear output; keeps targets near unit scale


class RefocusNet(nn.Module):
    config_class = RefocusNetConfig

    def __init__(self, config: RefocusNetConfig = RefocusNetConfig()) -> None:
        super().__init__()
        self.config = config
        c = config.channels
        self.features = nn.Sequential(
            nn.Conv2d(2 * config.n_bins, c, 5, padding=2),
            nn.ReLU(inplace=True),
            nn.Conv2d(c, c, 3, stride=2, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c, 2 * c, 3, stride=2, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(2 * c, 2 * c, 3, stride=2, padding=1),
            nn.ReLU(inplace=True),
        )
        self.head = nn.Linear(2 * c, 1)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """frames: (B, T, 2, H, W) event counts -> psi (B,) in px per bin."""
        b, t, p, h, w = frames.shape
        if t != self.config.n_bins or p != 2:
            raise ValueError(f"expected (B, {self.config.n_bins}, 2, H, W) frames, got {tuple(frames.shape)}")
        x = torch.log1p(frames.reshape(b, t * p, h, w).float())
        x = self.features(x).mean(dim=(2, 3))
        return self.head(x).squeeze(1) * self.config.psi_scale


def warp_frames(frames: torch.Tensor, psi: torch.Tensor, ref_bin: float) -> torch.Tensor:
    """Shift bin b of each sample right by psi * (b - ref_bin) px (bilinear, zeros outside).

    frames (B, T, C, H, W), psi (B,). Differentiable in psi and frames.
    """
    b, t, c, h, w = frames.shape
    shift = psi[:, None] * (torch.arange(t, dtype=frames.dtype, device=frames.device) - ref_bin)[None, :]
    theta = torch.zeros(b * t, 2, 3, dtype=frames.dtype, device=frames.device)
    theta[:, 0, 0] = 1.0
    theta[:, 1, 1] = 1.0
    # output pixel x samples input x - shift; normalised coordinates span 2 over w pixels
    theta[:, 0, 2] = -shift.reshape(-1) * 2.0 / w
    grid = F.affine_grid(theta, (b * t, c, h, w), align_corners=False)
    out = F.grid_sample(
        frames.reshape(b * t, c, h, w), grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    return out.reshape(b, t, c, h, w)


def apse(psi_pred: torch.Tensor, psi_true: torch.Tensor, n_bins: int, ref_bin: float) -> float:
    """Average Pixel Shift Error: mean over samples and bins of |(psi_pred - psi_true) * (b - ref_bin)| px."""
    offsets = (torch.arange(n_bins, dtype=torch.float64) - ref_bin).abs().mean()
    return float((psi_pred.double() - psi_true.double()).abs().mean() * offsets)
