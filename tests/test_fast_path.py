"""The CPU fast path (fp32 reordered) and bf16 autocast against plain fp32: within 0.1 dB, fp32 untouched."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from esai_reference import RefHybridNet, randomise

from spikelens.hybrid_net.fast_inference import fast_copy
from spikelens.hybrid_net.reconstruct import HybridNet
from spikelens.hybrid_net.registry import load_model
from spikelens.pipelines.reconstruction import cpu_has_bf16, load_sample, output_to_uint8, psnr, run_model

needs_bf16 = pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU has no native bf16 (avx512_bf16 or AMX)")


def _esai_hybridnet() -> HybridNet:
    """E-SAI's architecture with E-SAI-layout weights (randomised, BN statistics included)."""
    net = HybridNet()
    net.load_state_dict(randomise(RefHybridNet()).state_dict())
    return net.eval()


def _frames(h: int = 32, w: int = 32) -> np.ndarray:
    g = torch.Generator().manual_seed(0)
    shape = (6, 2, h, w)
    return ((torch.rand(shape, generator=g) < 0.1) * torch.randint(1, 4, shape, generator=g)).numpy()


@pytest.fixture(scope="module")
def small_scenes(tmp_path_factory):
    """Four small simulated occluded scenes (E-SAI .npy, with ground truth): the bar is on a set's mean."""
    from spikelens.datasets.formats.esai import write_esai
    from spikelens.datasets.simulator.sai import SAIConfig, make_scene, simulate_scene

    out = tmp_path_factory.mktemp("scenes")
    paths = []
    sources = ("procedural:shapes:3", "procedural:stripes:1", "procedural:shapes:8", "procedural:blobs:2")
    for seed, source in enumerate(sources):
        rng = np.random.default_rng(seed)
        events, meta = simulate_scene(make_scene(source, rng, SAIConfig(96, 64, duration_us=400_000)), rng)
        paths.append(out / f"scene{seed}.npy")
        write_esai(paths[-1], events, meta)
    return paths


@pytest.mark.parametrize(
    ("precision", "close_db"),
    [
        ("fast", 45),  # the same arithmetic reordered: at most a level here and there
        pytest.param("bf16", 35, marks=needs_bf16),  # bf16 rounding: the two images barely differ
    ],
)
def test_bundled_model_is_within_a_tenth_of_a_db_of_fp32(small_scenes, precision, close_db):
    """The issue's bar: within 0.1 dB PSNR of fp32 on an evaluation set (its mean). One 96 x 64 image's
    PSNR moves more with bf16 rounding: on the 16 cross-domain recordings the bundled model's bf16 is
    +0.001 dB from fp32 on average, 0.06 dB at most. With its encoder and stem in bf16 too it was -0.21
    here on average (-0.93 on the stripes), which is why HybridLite keeps them in fp32."""
    net = load_model("hybridlite", "cpu")
    diffs = []
    for path in small_scenes:
        s = load_sample(path)
        exact = output_to_uint8(run_model(net, s.frames, s.physics))
        other = output_to_uint8(run_model(net, s.frames, s.physics, precision))
        diffs.append(psnr(other, s.truth) - psnr(exact, s.truth))
        assert psnr(other, exact) > close_db
        again = output_to_uint8(run_model(net, s.frames, s.physics))
        np.testing.assert_array_equal(again, exact)  # the model itself was not rewritten
    assert abs(np.mean(diffs)) < 0.1 and max(map(abs, diffs)) < 0.3, diffs


def test_hybridnet_fast_path_is_fp32_reordered():
    """Winograd in the 30 residual convolutions, folded batch norm and channels_last: the same network."""
    net = _esai_hybridnet()
    frames = _frames(36, 44)  # not a multiple of the Winograd tile at the residual blocks' 9 x 11
    exact = run_model(net, frames)
    fast = run_model(net, frames, precision="fast")
    assert np.abs(fast - exact).max() < 1e-3
    assert sum(type(m).__name__ == "WinogradConv3x3" for m in fast_copy(net).modules()) == 30
    np.testing.assert_array_equal(run_model(net, frames), exact)


@needs_bf16
def test_hybridnet_bf16_tracks_fp32():
    net = _esai_hybridnet()
    frames = _frames()
    exact = run_model(net, frames)
    fast = run_model(net, frames, precision="bf16")
    err = float(np.sqrt(np.mean((fast - exact) ** 2)))
    assert err < 0.02 * max(float(exact.std()), 1e-3) + 0.01
    with pytest.raises(ValueError, match="unknown precision"):
        run_model(net, frames, precision="fp8")


def test_auto_times_both_paths_once_and_keeps_the_quicker(monkeypatch):
    """Which path wins depends on the CPU, so ``auto`` times the fast path and bf16 on the first call and
    keeps the winner for the model. Here one path is made slow on purpose, each way round; the real paths'
    outputs are those of the path chosen."""
    import time

    from spikelens.pipelines.reconstruction import auto_choice
    from spikelens.pipelines.reconstruction import inference as inf

    calls, slow = [], {}

    def fake(model, x, extra, precision):
        calls.append(precision)
        if precision == slow["path"]:
            time.sleep(0.05)
        return torch.full((1, 1, *x.shape[-2:]), 1.0 if precision == "fast" else -1.0)

    monkeypatch.setattr(inf, "cpu_has_bf16", lambda: True)
    monkeypatch.setattr(inf, "_forward", fake)
    frames = _frames(8, 8)
    for slow["path"], want in (("fast", "bf16"), ("bf16", "fast")):
        net = torch.nn.Conv2d(1, 1, 1)
        calls.clear()
        first = run_model(net, frames, precision="auto")
        assert auto_choice(net) == want and sorted(calls) == ["bf16", "bf16", "fast", "fast"]
        assert first[0, 0] == (1.0 if want == "fast" else -1.0)  # the first call returns the winner's output
        calls.clear()
        run_model(net, frames, precision="auto")
        assert calls == [want]  # timed once
    monkeypatch.setattr(inf, "cpu_has_bf16", lambda: False)
    net = torch.nn.Conv2d(1, 1, 1)
    calls.clear()
    run_model(net, frames, precision="auto")
    assert calls == ["fast"] and auto_choice(net) is None  # nothing to choose between
    monkeypatch.undo()
    hybrid = _esai_hybridnet()
    frames = _frames()
    got = run_model(hybrid, frames, precision="auto")
    np.testing.assert_array_equal(got, run_model(hybrid, frames, precision=auto_choice(hybrid) or "fast"))
