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


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here (these run on one)")


@needs_cuda
def test_on_cuda_fp32_is_the_cpus_and_tf32_and_bf16_are_within_a_tenth_of_a_db(small_scenes):
    """On a GPU: fp32 is IEEE fp32 (cuDNN's TF32 switched off), so its image is the CPU's but for a grey
    level where cuDNN's summation order flips a spike; the fast path (TF32, cuDNN's default) and bf16
    autocast are within 0.1 dB of it on the set's mean; ``auto`` keeps one of the two; cuDNN's setting is
    left as it was."""
    from spikelens.pipelines.reconstruction import auto_choice

    was = torch.backends.cudnn.conv.fp32_precision
    cpu, gpu = load_model("hybridlite", "cpu"), load_model("hybridlite", "cuda")
    diffs = {"fast": [], "bf16": []}
    for path in small_scenes:
        s = load_sample(path)
        exact = output_to_uint8(run_model(gpu, s.frames, s.physics))
        assert psnr(exact, output_to_uint8(run_model(cpu, s.frames, s.physics))) > 45
        for precision, got in diffs.items():
            other = output_to_uint8(run_model(gpu, s.frames, s.physics, precision))
            assert psnr(other, exact) > 35
            got.append(psnr(other, s.truth) - psnr(exact, s.truth))
    for got in diffs.values():
        assert abs(np.mean(got)) < 0.1 and max(map(abs, got)) < 0.3, diffs
    run_model(gpu, s.frames, s.physics, "auto")
    assert auto_choice(gpu) in ("fast", "bf16")
    assert torch.backends.cudnn.conv.fp32_precision == was


@needs_cuda
def test_esai_hybridnet_on_cuda_matches_the_cpu_in_fp32():
    """E-SAI's own network in IEEE fp32 on the GPU: the CPU's output, within cuDNN's summation order."""
    net = _esai_hybridnet()
    frames = _frames(64, 64)
    want = run_model(net, frames)
    got = run_model(net.cuda(), frames)
    assert np.abs(got - want).max() < 1e-3


def test_cudnn_precision_is_set_inside_and_restored_after_even_on_error():
    """The CUDA paths switch cuDNN's fp32 convolutions per call (IEEE for fp32, TF32 for fast); a caller's
    own setting must survive them. The flag is a process setting, so this runs without a GPU."""
    from spikelens.pipelines.reconstruction.inference import _cudnn_fp32

    conv = torch.backends.cudnn.conv
    was = conv.fp32_precision
    with _cudnn_fp32("ieee"):
        assert conv.fp32_precision == "ieee"
    assert conv.fp32_precision == was
    with pytest.raises(RuntimeError), _cudnn_fp32("tf32"):
        assert conv.fp32_precision == "tf32"
        raise RuntimeError("a failing forward")
    assert conv.fp32_precision == was


def test_bf16_is_refused_with_a_reason_where_the_device_lacks_it(monkeypatch):
    from spikelens.pipelines.reconstruction import inference

    monkeypatch.setattr(inference, "cpu_has_bf16", lambda: False)
    assert not inference.native_bf16(torch.device("cpu"))
    with pytest.raises(ValueError, match="bf16"):
        run_model(_esai_hybridnet(), _frames(32, 32), precision="bf16")
