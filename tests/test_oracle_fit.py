"""The oracle's affine fit: the evaluation's score of structure, and the training loss built on it."""

from __future__ import annotations

import numpy as np
import torch

from spikelens.pipelines.reconstruction.metrics import affine_fit_l1, oracle_fit


def test_affine_fit_l1_ignores_brightness_and_contrast_only():
    truth = torch.rand(3, 1, 20, 24, generator=torch.Generator().manual_seed(0))
    for a, b in ((2.0, 0.5), (0.1, -3.0), (-1.5, 1.0)):  # an inverted picture is structure too: the oracle's lstsq
        assert float(affine_fit_l1(a * truth + b, truth)) < 1e-5  # float32
    noisy = truth + 0.2 * torch.randn(truth.shape, generator=torch.Generator().manual_seed(1))
    assert float(affine_fit_l1(noisy, truth)) > 0.05


def test_affine_fit_l1_is_the_oracles_residual():
    """Per image, the same least-squares fit as :func:`oracle_fit` (before its 8-bit rounding)."""
    rng = np.random.default_rng(2)
    truth, pred = rng.random((2, 1, 16, 16)), rng.random((2, 1, 16, 16))
    want = []
    for p, t in zip(pred, truth, strict=True):
        design = np.stack([p.ravel(), np.ones(p.size)], 1)
        coef, *_ = np.linalg.lstsq(design, t.ravel(), rcond=None)
        want.append(np.abs(design @ coef - t.ravel()).mean())
    got = affine_fit_l1(torch.from_numpy(pred), torch.from_numpy(truth))
    assert abs(float(got) - np.mean(want)) < 1e-9


def test_affine_fit_l1_has_a_gradient_for_the_network():
    pred = torch.rand(2, 1, 8, 8, requires_grad=True)
    affine_fit_l1(pred, torch.rand(2, 1, 8, 8)).backward()
    assert pred.grad is not None and float(pred.grad.abs().sum()) > 0


def test_oracle_fit_is_the_least_squares_affine_map():
    truth = np.random.default_rng(3).integers(0, 256, (10, 12)).astype(np.uint8)
    np.testing.assert_array_equal(oracle_fit(255 - truth.astype(np.float64), truth), truth)
    np.testing.assert_array_equal(oracle_fit(0.5 * truth.astype(np.float64) + 7, truth), truth)
