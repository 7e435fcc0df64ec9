"""Image scores: PSNR, SSIM (Wang et al. 2004), E-SAI's own SSIM, and the oracle's best affine fit."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two uint8 images (peak 255)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def oracle_fit(image: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The best affine map of ``image`` onto ``truth`` (least squares), clipped to 8 bits: an oracle that
    knows the answer's brightness and contrast, so a baseline's structure is judged and not its scaling."""
    a = np.asarray(image, np.float64).ravel()
    design = np.stack([a, np.ones_like(a)], 1)
    coef, *_ = np.linalg.lstsq(design, np.asarray(truth, np.float64).ravel(), rcond=None)
    return np.clip(np.rint(design @ coef), 0, 255).astype(np.uint8).reshape(np.shape(truth))


def affine_fit_l1(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Mean L1 of each B x 1 x H x W prediction after its least-squares affine fit to the truth (the
    oracle's fit, differentiable): a loss on structure alone, blind to brightness and contrast."""
    p, t = pred.flatten(1), truth.flatten(1)
    pc, tc = p - p.mean(1, keepdim=True), t - t.mean(1, keepdim=True)
    a = (pc * tc).sum(1, keepdim=True) / (pc * pc).sum(1, keepdim=True).clamp_min(1e-8)
    return (a * pc - tc).abs().mean()


def _gauss(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim_torch(a: torch.Tensor, b: torch.Tensor, peak: float = 1.0) -> torch.Tensor:
    """Mean SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03) of B x 1 x H x W."""
    g = _gauss().to(a)
    win = (g[:, None] * g[None, :])[None, None]
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    mu_a, mu_b = F.conv2d(a, win), F.conv2d(b, win)
    saa = F.conv2d(a * a, win) - mu_a**2
    sbb = F.conv2d(b * b, win) - mu_b**2
    sab = F.conv2d(a * b, win) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * sab + c2)) / ((mu_a**2 + mu_b**2 + c1) * (saa + sbb + c2))
    return s.mean()


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two uint8 images."""
    ta = torch.from_numpy(a.astype(np.float64) / 255)[None, None]
    tb = torch.from_numpy(b.astype(np.float64) / 255)[None, None]
    return float(ssim_torch(ta, tb))


#: E-SAI's SSIM window: its evaluation calls sewar's ``ssim(imgTrue, imgTest, 16)``.
ESAI_SSIM_WINDOW = 16


def esai_ssim(truth: np.ndarray, image: np.ndarray, window: int = ESAI_SSIM_WINDOW) -> float:
    """SSIM as E-SAI's Evaluation.py scores it: sewar's, a uniform ``window`` x ``window`` mean over the
    valid positions only, K1 0.01 and K2 0.03 of a 255 peak, variances as E[x^2] - E[x]^2. Not Wang's
    11 x 11 Gaussian (:func:`ssim`), so the two are reported side by side.
    """
    a, b = np.asarray(truth, np.float64), np.asarray(image, np.float64)
    if a.shape != b.shape or a.ndim != 2 or min(a.shape) < window:
        raise ValueError(f"need two equal H x W images of at least {window} px, got {a.shape} and {b.shape}")

    def box(x: np.ndarray) -> np.ndarray:  # the mean of every valid window, by summed-area tables
        c = np.pad(x, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
        return (c[window:, window:] - c[:-window, window:] - c[window:, :-window] + c[:-window, :-window]) / window**2

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = box(a), box(b)
    var_a, var_b, cov = box(a * a) - mu_a**2, box(b * b) - mu_b**2, box(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(s.mean())
