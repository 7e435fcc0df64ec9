"""The frame gate: a HybridLite that mixes the APS frames into its output by learnt per-pixel maps.

What must hold: a new gate barely moves a trained model (so fine-tuning starts from it), a recording
without frames bypasses the gate exactly, the gate can pass either percentile through untouched (what a
head of fixed weights cannot), and the mix never leaves the output's range."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spikelens.hybrid_net.reconstruct import (
    GATE_SELECT_FIRST,
    GATE_TRUST_START,
    HybridLite,
    HybridLiteConfig,
    frame_agreement,
    gate_frames,
    occluder_shades,
    shade_first,
    target_first,
    with_frame_agreement,
    with_frame_gate,
    with_shade_first,
)
from spikelens.hybrid_net.registry import load_model, save_model
from spikelens.pipelines.reconstruction import build_model

SMALL = {"stride": 2, "physics": True, "log_map": "unfolded", "width": 8, "n_blocks": 1, "c1": 4, "c2": 4, "c3": 8}


def _inputs(seed: int, frames: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(2, 4, 2, 32, 40, generator=g) * 3
    aps = torch.rand(2, 4, 32, 40, generator=g)
    aps[:, -1] = 1.0 if frames else 0.0
    if not frames:
        aps.zero_()
    return x, torch.cat([torch.randn(2, 2, 32, 40, generator=g), aps], 1)


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory):
    """A two-scene world cache and one held-out fence recording, 64 x 48: what the CLI trainings read."""
    from spikelens.datasets import SensorSize
    from spikelens.pipelines.sai_world import prepare_world, write_world_recordings

    root = tmp_path_factory.mktemp("world")
    cache = root / "c.h5"
    prepare_world(cache, 2, seed=5, crop=32, crops_per_scene=1, bins=4, sensor=SensorSize(64, 48))
    rec = write_world_recordings(root / "rec", 1, seed=4, split="fences", sensor=SensorSize(64, 48))[0]
    return cache, rec


def _train(tiny_world, start, out, *flags: str) -> int:
    """``spikelens train-reconstruct`` for one short epoch on ``tiny_world`` from checkpoint ``start``."""
    from spikelens.cli import main

    cache, rec = tiny_world
    args = ["train-reconstruct", str(cache), "--init", str(start), *flags, "-o", str(out), "--test", str(rec)]
    return main([*args, "--epochs", "1", "--batch", "2", "--crop", "32", "--bins", "4", "-q"])


def _fixed_and_ordered(seed: int, **order: bool) -> tuple[HybridLite, HybridLite]:
    """A gated model with random gate weights, and the same weights reading its percentiles in ``order``."""
    torch.manual_seed(seed)
    fixed = with_frame_gate(HybridLite(HybridLiteConfig(**SMALL, aps=True))).eval()
    with torch.no_grad():
        fixed.gate.weight.normal_(0, 0.3)
    ordered = HybridLite(HybridLiteConfig(**SMALL, aps=True, frame_gate=True, **order)).eval()
    ordered.load_state_dict(fixed.state_dict())
    return fixed, ordered


def test_a_new_gate_starts_nearly_shut_and_leaves_the_model_as_it_was():
    """The gate's weights start at zero: trust is sigmoid(GATE_TRUST_START) everywhere, so the output
    moves by at most that times the distance to the frames (at most 2), and not at all without frames."""
    torch.manual_seed(0)
    old = HybridLite(HybridLiteConfig(**SMALL, aps=True)).eval()
    before = {k: v.clone() for k, v in old.state_dict().items()}
    new = with_frame_gate(old).eval()
    assert new.config.frame_gate and not old.config.frame_gate and old.gate is None
    x, p = _inputs(1)
    bound = 2 * torch.sigmoid(torch.tensor(GATE_TRUST_START)).item()
    with torch.no_grad():
        moved = (new(x, p) - old(x, p)).abs().max().item()
    assert 0 < moved <= bound + 1e-6
    x, p = _inputs(2, frames=False)
    with torch.no_grad():
        torch.testing.assert_close(new(x, p), old(x, p), atol=0, rtol=0)
    assert all(torch.equal(before[k], v) for k, v in old.state_dict().items())
    assert with_frame_gate(new) is not new and with_frame_gate(new).config.frame_gate


def test_the_gate_needs_the_aps_channels():
    with pytest.raises(ValueError, match="they need aps"):
        HybridLite(HybridLiteConfig(**SMALL, frame_gate=True))
    with pytest.raises(ValueError, match="APS frames can take the frame gate"):
        with_frame_gate(HybridLite(HybridLiteConfig(**SMALL)))


def test_the_gate_passes_either_percentile_through_and_stays_in_range():
    """Saturated logits: trust 1 and select 0 gives the 10th percentile exactly (as 2 p - 1), select 1
    the 90th, and per pixel the two can differ; no frames (flag 0) gives the estimate whatever the logits."""
    g = torch.Generator().manual_seed(3)
    estimate = torch.rand(1, 1, 6, 7, generator=g) * 2 - 1
    aps = torch.rand(1, 4, 6, 7, generator=g)
    aps[:, -1] = 1.0
    big = 50.0
    low = gate_frames(estimate, torch.tensor([-big, big]).view(1, 2, 1, 1).expand(1, 2, 6, 7), aps)
    torch.testing.assert_close(low, 2 * aps[:, :1] - 1)
    high = gate_frames(estimate, torch.tensor([big, big]).view(1, 2, 1, 1).expand(1, 2, 6, 7), aps)
    torch.testing.assert_close(high, 2 * aps[:, 1:2] - 1)
    left = torch.where(torch.arange(7) < 3, -big, big).view(1, 1, 1, 7).expand(1, 1, 6, 7)
    mixed = gate_frames(estimate, torch.cat([left, torch.full_like(left, big)], 1), aps)
    torch.testing.assert_close(mixed[..., :3], low[..., :3])
    torch.testing.assert_close(mixed[..., 3:], high[..., 3:])
    off = aps.clone()
    off[:, -1] = 0.0
    torch.testing.assert_close(gate_frames(estimate, torch.randn(1, 2, 6, 7, generator=g) * 9, off), estimate)
    wild = gate_frames(estimate, torch.randn(1, 2, 6, 7, generator=g) * 9, aps)
    assert wild.min() >= -1 and wild.max() <= 1


def test_a_gated_model_round_trips_through_a_checkpoint(tmp_path):
    torch.manual_seed(4)
    net = with_frame_gate(build_model("hybridlite", 0, **SMALL, aps=True)).eval()
    with torch.no_grad():
        net.gate.weight.normal_()
    path = tmp_path / "gated.pt"
    save_model(net, path)
    back = load_model(path, "cpu").eval()
    assert back.config.frame_gate
    x, p = _inputs(5)
    with torch.no_grad():
        torch.testing.assert_close(back(x, p), net(x, p))


def test_train_reconstruct_gives_a_checkpoint_the_gate_and_trains_it(tmp_path, capsys, tiny_world):
    """``train-reconstruct --init X --frame-gate`` on a world cache: the saved model has the gate (and the
    APS channels it needs, though X had neither), and training moved the gate off its start."""
    from spikelens.cli import main

    cache, _ = tiny_world
    start = tmp_path / "start.pt"
    save_model(build_model("hybridlite", 0, **SMALL), start)
    out = tmp_path / "gated.pt"
    assert _train(tiny_world, start, out, "--frame-gate") == 0
    assert "test set (1 files)" in capsys.readouterr().out
    net = load_model(out, "cpu")
    assert net.config.aps and net.config.frame_gate
    assert net.gate.weight.abs().sum() > 0
    assert main(["train-reconstruct", str(cache), "--model", "hybridnet", "--frame-gate", "-o", str(out)]) == 2
    assert "only hybridlite reads the APS frames" in capsys.readouterr().err


def _side(target: torch.Tensor, shade: float, target_high: bool) -> torch.Tensor:
    """Side channels of one sample: the events' gradient of ``target`` (centred, in log units), and the
    target and a flat occluder as the two percentiles, the target as the 90th when ``target_high``."""
    log = torch.log(target + 0.01)
    g = torch.zeros_like(log)
    g[:, 1:-1] = 0.5 * (log[:, 2:] - log[:, :-2])
    flat = torch.full_like(target, shade)
    lo, hi = (flat, target) if target_high else (target, flat)
    return torch.stack([g / g.pow(2).mean().sqrt(), torch.randn_like(g), lo, hi, (lo + hi) / 2, torch.ones_like(g)])


def test_target_first_puts_the_percentile_the_events_agree_with_first():
    """Behind a dark occluder the target is the 90th percentile and is put first; behind a bright one it
    is the 10th and stays; each sample of a batch is ordered by its own events; the events' choice survives
    a left-right flip (gradient and frames mirrored together); without frames nothing moves."""
    g = torch.Generator().manual_seed(6)
    target = 0.2 + 0.6 * torch.rand(24, 30, generator=g)
    dark, bright = _side(target, 0.05, True), _side(target, 0.95, False)
    out = target_first(torch.stack([dark, bright]))
    torch.testing.assert_close(out[:, 2], torch.stack([target, target]))
    torch.testing.assert_close(out[0, 3], dark[2])
    torch.testing.assert_close(out[1], bright)
    mirrored = dark.flip(-1)
    mirrored[0] = -mirrored[0]
    torch.testing.assert_close(target_first(mirrored[None])[0, 2], target.flip(-1))
    blank = torch.cat([dark[:2], torch.zeros(4, 24, 30)])[None]
    torch.testing.assert_close(target_first(blank), blank)


def test_target_first_matches_the_events_choice_on_a_recording(tmp_path):
    """On a simulated recording with frames, the percentile the network is given first is the one the
    events choose for the whole image (the same agreement, computed in torch on the network's input)."""
    from spikelens.datasets import SensorSize
    from spikelens.pipelines.sai import open_sai
    from spikelens.pipelines.sai_world import APS, network_inputs, write_world_recordings
    from spikelens.refocus.frame_sai import events_choice

    chosen = []
    for seed in (3, 4):  # behind these two fences the target is the 90th percentile, then the 10th
        rec = write_world_recordings(tmp_path / str(seed), 1, seed=seed, split="fences", sensor=SensorSize(96, 64))[0]
        events, scene = open_sai(rec)
        inputs = network_inputs(events, scene, scene.depth, 4)
        side = torch.from_numpy(np.concatenate([inputs.physics["unfolded"], inputs.physics[APS]]))[None]
        first = np.rint(target_first(side)[0, 2].numpy() * 255)
        aps = inputs.physics[APS][:2] * 255
        chosen.append(events_choice(aps, inputs.integrated.gradient, inputs.integrated.seen)[0])
        np.testing.assert_array_equal(first, np.rint(aps[0 if chosen[-1] == 10 else 1]))
    assert chosen == [90, 10]


def test_a_target_first_model_reads_its_percentiles_in_the_events_order():
    """The same weights with and without ``target_first``: equal where the 10th percentile is already the
    target, and where it is the 90th the ordered model sees what the fixed one sees with the two swapped."""
    fixed, ordered = _fixed_and_ordered(7, target_first=True)
    g = torch.Generator().manual_seed(8)
    target = 0.2 + 0.6 * torch.rand(32, 40, generator=g)
    x = torch.rand(1, 4, 2, 32, 40, generator=g) * 3
    bright = _side(target, 0.95, False)[None]
    dark = _side(target, 0.05, True)[None]
    swapped = dark[:, [0, 1, 3, 2, 4, 5]]
    with torch.no_grad():
        torch.testing.assert_close(ordered(x, bright), fixed(x, bright))
        torch.testing.assert_close(ordered(x, dark), fixed(x, swapped))
        assert not torch.allclose(ordered(x, dark), fixed(x, dark))


def test_shade_first_puts_the_percentile_farther_from_the_occluder_first():
    """A target whose tones span a mid-grey occluder: the 10th percentile is the target where it is darker,
    the 90th where it is brighter; the shade's order gives the target first everywhere (what no one
    order for the whole image can), and blank channels stay blank."""
    g = torch.Generator().manual_seed(11)
    target = torch.rand(24, 30, generator=g) * 0.9 + 0.05
    shade = 0.5
    lo, hi = torch.minimum(target, torch.tensor(shade)), torch.maximum(target, torch.tensor(shade))
    lo, hi = torch.round(lo * 255) / 255, torch.round(hi * 255) / 255
    side = torch.stack([torch.randn(24, 30, generator=g), torch.randn(24, 30, generator=g), lo, hi, (lo + hi) / 2])
    side = torch.cat([side, torch.ones(1, 24, 30)])[None]
    assert occluder_shades(side[:, 2:4]).item() == round(shade * 255)
    out = shade_first(side)
    torch.testing.assert_close(out[0, 2], torch.round(target * 255) / 255, atol=1.5 / 255, rtol=0)
    far = (torch.round(target * 255) - round(shade * 255)).abs() > 2
    torch.testing.assert_close(out[0, 3][far], torch.full_like(out[0, 3][far], round(shade * 255) / 255))
    torch.testing.assert_close(out[:, [0, 1, 4, 5]], side[:, [0, 1, 4, 5]])
    blank = torch.cat([side[:, :2], torch.zeros(1, 4, 24, 30)], 1)
    torch.testing.assert_close(shade_first(blank), blank)


def test_the_shade_is_found_with_the_numpy_rules_constants():
    """hybrid_net cannot import refocus (siblings in the layer map), so the histogram's smoothing is
    written twice: the same numbers, and the same shade on random levels."""
    from spikelens.hybrid_net import reconstruct as hn
    from spikelens.refocus import frame_sai

    assert (hn.SHADE_SMOOTH, hn.SHADE_RADIUS) == (frame_sai.SHADE_SMOOTH, frame_sai.SHADE_RADIUS)
    rng = np.random.default_rng(19)
    for _ in range(20):
        levels = np.concatenate([rng.integers(0, 256, 400), np.full(rng.integers(50, 300), rng.integers(0, 256))])
        both = rng.permutation(levels)[:400].reshape(2, 10, 20).astype(np.float64)
        want = frame_sai.occluder_shade(both)
        assert occluder_shades(torch.from_numpy(both / 255)[None].float()).item() == want


def test_the_occluders_shade_outweighs_a_flat_region_of_the_target():
    """A sky of one tone over 40 % of the image has a histogram peak of its own; the occluder's, in one of
    every covered pixel's two percentiles, is higher."""
    g = torch.Generator().manual_seed(12)
    target = torch.rand(40, 50, generator=g) * 0.6 + 0.3
    target[:16] = 0.8  # the sky
    occ = torch.tensor(0.1)
    side = torch.stack([torch.minimum(target, occ), torch.maximum(target, occ)])[None]
    assert occluder_shades(side).item() == round(0.1 * 255)


def test_shade_first_matches_the_robust_frame_sai_on_recordings(tmp_path):
    """In torch on the network's input, the percentile a shade-first network is given first is the
    occlusion-robust frame SAI's image, pixel for pixel, on recordings behind dark, mid-grey and bright
    fences (the shade from the whole image both times)."""
    from spikelens.datasets import SensorSize
    from spikelens.pipelines.sai import open_sai
    from spikelens.pipelines.sai_world import APS, network_inputs, write_world_recordings

    lows = []
    for seed in (3, 4, 6):
        rec = write_world_recordings(tmp_path / str(seed), 1, seed=seed, split="fences", sensor=SensorSize(96, 64))[0]
        events, scene = open_sai(rec)
        inputs = network_inputs(events, scene, scene.depth, 4)
        side = torch.from_numpy(np.concatenate([inputs.physics["unfolded"], inputs.physics[APS]]))[None]
        first = np.rint(shade_first(side)[0, 2].numpy() * 255)
        np.testing.assert_array_equal(first, inputs.robust.image)
        assert occluder_shades(side[:, 2:4]).item() == inputs.robust.shade
        lows.append(inputs.robust.low_share)
    assert min(lows) < 0.05 and max(lows) > 0.95  # both sides of the occluder among them


def test_with_shade_first_keeps_the_gates_trust_and_selects_the_first_channel():
    torch.manual_seed(13)
    gated = with_frame_gate(HybridLite(HybridLiteConfig(**SMALL, aps=True))).eval()
    with torch.no_grad():
        gated.gate.weight.normal_(0, 0.3)
        gated.gate.bias.normal_()
    new = with_shade_first(gated).eval()
    assert new.config.shade_first and not gated.config.shade_first
    assert new.gate.weight[0].abs().sum() == 0 and new.gate.bias[0].item() == GATE_SELECT_FIRST
    torch.testing.assert_close(new.gate.weight[1], gated.gate.weight[1])
    torch.testing.assert_close(new.gate.bias[1], gated.gate.bias[1])
    assert with_shade_first(new).config.shade_first
    with pytest.raises(ValueError, match="one order"):
        HybridLite(HybridLiteConfig(**SMALL, aps=True, target_first=True, shade_first=True))
    with pytest.raises(ValueError, match="they need aps"):
        HybridLite(HybridLiteConfig(**SMALL, shade_first=True))
    with pytest.raises(ValueError, match="shade's order"):
        with_shade_first(HybridLite(HybridLiteConfig(**SMALL)))


def test_a_shade_first_model_reads_its_percentiles_in_the_shades_order():
    """The same weights with and without ``shade_first``: what the ordered model sees is what the fixed
    one sees with the two percentiles put in the shade's order beforehand."""
    fixed, ordered = _fixed_and_ordered(14, shade_first=True)
    g = torch.Generator().manual_seed(15)
    target = torch.rand(32, 40, generator=g)
    occ = torch.tensor(0.45)
    lo, hi = torch.minimum(target, occ), torch.maximum(target, occ)
    side = torch.stack([torch.randn(32, 40, generator=g), torch.randn(32, 40, generator=g), lo, hi, (lo + hi) / 2])
    side = torch.cat([torch.round(side * 255) / 255, torch.ones(1, 32, 40)])[None]
    x = torch.rand(1, 4, 2, 32, 40, generator=g) * 3
    with torch.no_grad():
        torch.testing.assert_close(ordered(x, side), fixed(x, shade_first(side)))
        assert not torch.allclose(ordered(x, side), fixed(x, side))


def test_train_reconstruct_shade_first_from_a_gated_checkpoint(tmp_path, capsys, tiny_world):
    start = tmp_path / "start.pt"
    save_model(with_frame_gate(build_model("hybridlite", 0, **SMALL, aps=True)), start)
    out = tmp_path / "shade.pt"
    assert _train(tiny_world, start, out, "--shade-first") == 0
    capsys.readouterr()
    net = load_model(out, "cpu")
    assert net.config.shade_first and net.config.frame_gate and not net.config.target_first
    assert _train(tiny_world, start, out, "--shade-first", "--target-first") == 2
    assert "choose one" in capsys.readouterr().err


def test_the_frames_agreement_falls_with_blur_and_noise_and_is_zero_without_frames():
    """Sharp frames of the target agree with its events' gradient almost perfectly; blurring them along the
    motion or adding noise lowers the agreement; blank APS channels give 0."""
    g = torch.Generator().manual_seed(16)
    target = 0.2 + 0.6 * torch.rand(40, 60, generator=g)
    target = torch.nn.functional.avg_pool2d(target[None, None], 3, 1, 1)[0, 0]  # some spatial correlation
    sharp = _side(target, 0.05, False)[None]  # the target first
    blurred = sharp.clone()
    blurred[0, 2] = torch.nn.functional.avg_pool2d(sharp[:, 2:3], (1, 9), 1, (0, 4), count_include_pad=False)[0, 0]
    noisy = sharp.clone()
    noisy[0, 2] = (sharp[0, 2] + 0.05 * torch.randn(40, 60, generator=g)).clamp(0, 1)
    a, b, c = (frame_agreement(x).item() for x in (sharp, blurred, noisy))
    assert a > 0.99 and b < a - 0.2 and c < a - 0.2
    blank = torch.cat([sharp[:, :2], torch.zeros(1, 4, 40, 60)], 1)
    assert frame_agreement(blank).item() == 0


def test_with_frame_agreement_starts_from_the_model_and_trains_from_the_cli(tmp_path, capsys, tiny_world):
    torch.manual_seed(17)
    gated = with_frame_gate(HybridLite(HybridLiteConfig(**SMALL, aps=True, shade_first=True))).eval()
    with torch.no_grad():
        gated.gate.weight.normal_(0, 0.3)
    new = with_frame_agreement(gated).eval()
    assert new.config.frame_agreement and new.gate.weight.shape[1] == gated.gate.weight.shape[1] + 1
    x, p = _inputs(18)
    with torch.no_grad():
        torch.testing.assert_close(new(x, p), gated(x, p))
        new.gate.weight[:, -1].fill_(3.0)
        assert not torch.allclose(new(x, p), gated(x, p))
    with pytest.raises(ValueError, match="needs frame_gate"):
        HybridLite(HybridLiteConfig(**SMALL, aps=True, frame_agreement=True))
    with pytest.raises(ValueError, match="with a frame gate"):
        with_frame_agreement(HybridLite(HybridLiteConfig(**SMALL, aps=True)))

    start = tmp_path / "start.pt"
    save_model(gated, start)
    out = tmp_path / "agree.pt"
    assert _train(tiny_world, start, out, "--frame-agreement") == 0
    capsys.readouterr()
    net = load_model(out, "cpu")
    assert net.config.frame_agreement and net.config.shade_first and net.gate.weight[:, -1].abs().sum() > 0
