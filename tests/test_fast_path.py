"""The CPU fast path (bf16 autocast + channels_last) against fp32: within 0.1 dB, and fp32 untouched."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from esai_reference import randomise

from spikelens.hybrid_net.reconstruct import HybridNet
from spikelens.hybrid_net.registry import load_model
from spikelens.pipelines.reconstruction import cpu_has_bf16, load_sample, output_to_uint8, psnr, run_model

needs_bf16 = pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU has no native bf16 (avx512_bf16 or AMX)")


@needs_bf16
def test_bf16_is_within_a_tenth_of_a_db_of_fp32(sai_file):
    net = load_model("hybridlite", "cpu")
    s = load_sample(sai_file)
    exact = output_to_uint8(run_model(net, s.frames, s.physics))
    fast = output_to_uint8(run_model(net, s.frames, s.physics, "bf16"))
    assert abs(psnr(fast, s.truth) - psnr(exact, s.truth)) < 0.1
    assert psnr(fast, exact) > 35  # the two images themselves barely differ
    again = output_to_uint8(run_model(net, s.frames, s.physics))  # fp32 after the fast path: unchanged
    np.testing.assert_array_equal(again, exact)


@needs_bf16
def test_hybridnet_fast_path_tracks_fp32():
    """E-SAI's architecture with E-SAI-layout weights (randomised, BN statistics included)."""
    net = HybridNet()
    net.load_state_dict(randomise(__import__("esai_reference").RefHybridNet()).state_dict())
    net.eval()
    g = torch.Generator().manual_seed(0)
    frames = ((torch.rand(6, 2, 32, 32, generator=g) < 0.1) * torch.randint(1, 4, (6, 2, 32, 32), generator=g)).numpy()
    exact = run_model(net, frames)
    fast = run_model(net, frames, precision="bf16")
    err = float(np.sqrt(np.mean((fast - exact) ** 2)))
    assert err < 0.02 * max(float(exact.std()), 1e-3) + 0.01
    with pytest.raises(ValueError, match="unknown precision"):
        run_model(net, frames, precision="fp8")
