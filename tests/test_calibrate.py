"""Calibration: a gated HybridLite's estimate takes the frames' brightness and contrast before the mix.

What must hold: the fit recovers a gain and an offset exactly, reads only the pixels that have frames,
never turns an estimate over, leaves a recording without frames untouched, and a model wired with it
outputs the calibrated estimate where the gate trusts nothing."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from test_frame_gate import SMALL, _inputs, _train, tiny_world  # noqa: F401 (tiny_world: a fixture)

from spikelens.hybrid_net.reconstruct import HybridLite, HybridLiteConfig, calibrated, gate_frames, with_frame_gate
from spikelens.hybrid_net.registry import load_model, save_model


def _images(seed: int) -> torch.Tensor:
    return torch.rand(2, 1, 24, 30, generator=torch.Generator().manual_seed(seed)) * 1.6 - 0.8


def test_the_fit_recovers_a_gain_and_an_offset():
    """An estimate that is the reference at half the contrast and shifted (0.5 r + 0.2) comes back as the
    reference; the second sample, marked as having no frames, keeps its estimate."""
    ref = _images(0)
    est = 0.5 * ref + 0.2
    weight = torch.ones(2, 1, 24, 30)
    weight[1] = 0
    out = calibrated(est, ref, weight)
    torch.testing.assert_close(out[0], ref[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(out[1], est[1])


def test_the_fit_reads_only_the_pixels_with_frames():
    """Where the weight is 0 the reference is garbage (+5): the fit, on the rest, is still exact there."""
    ref = _images(1)
    est = 2.0 * ref - 0.1
    weight = torch.ones(2, 1, 24, 30)
    weight[..., :10] = 0
    garbage = ref.clone()
    garbage[..., :10] = 5.0
    out = calibrated(est, garbage, weight)
    torch.testing.assert_close(out[..., 10:], ref[..., 10:], atol=1e-5, rtol=0)
    torch.testing.assert_close(out[..., :10], ref[..., :10].clamp(-1, 1), atol=1e-5, rtol=0)  # the same gain there


def test_an_anticorrelated_estimate_is_not_turned_over_and_the_output_stays_in_range():
    """Gain clamps at 0: an estimate running against the frames becomes their mean, not their mirror; a
    wide gain is clipped to [-1, 1]."""
    ref = _images(2)
    out = calibrated(-ref, ref, torch.ones_like(ref))
    torch.testing.assert_close(out, ref.mean((1, 2, 3), keepdim=True).expand_as(ref), atol=1e-6, rtol=0)
    wide = calibrated(0.01 * ref, 3.0 * ref, torch.ones_like(ref))
    assert wide.abs().max() <= 1.0 and wide.abs().max() == 1.0


def test_a_calibrated_model_outputs_the_calibrated_estimate_where_it_trusts_nothing():
    """Same weights with and without ``calibrate``: without frames the outputs are equal; with frames and
    the trust shut, the calibrated model's output is the other's fitted to the gate's frames estimate."""
    torch.manual_seed(3)
    plain = with_frame_gate(HybridLite(HybridLiteConfig(**SMALL, aps=True))).eval()
    with torch.no_grad():
        plain.gate.weight.normal_(0, 0.3)
        plain.gate.weight[1].zero_()
        plain.gate.bias[1] = -60.0  # trust exp(-60): nothing
    cal = HybridLite(dataclasses.replace(plain.config, calibrate=True)).eval()
    cal.load_state_dict(plain.state_dict())
    with torch.no_grad():
        x, side = _inputs(4, frames=False)
        torch.testing.assert_close(cal(x, side), plain(x, side))
        x, side = _inputs(5)
        got, estimate = cal(x, side), plain(x, side)
        logits = {}
        plain.gate.register_forward_hook(lambda m, i, o: logits.__setitem__("gate", o))
        plain(x, side)
        aps = side[:, -4:]
        select = torch.sigmoid(logits["gate"][:, :1])
        frames = 2 * (aps[:, :1] + select * (aps[:, 1:2] - aps[:, :1])) - 1
        torch.testing.assert_close(got, calibrated(estimate, frames, aps[:, -1:]), atol=1e-5, rtol=0)
        torch.testing.assert_close(got, gate_frames(estimate, logits["gate"], aps, calibrate=True), atol=1e-5, rtol=0)
    assert not torch.allclose(got, estimate, atol=1e-3)  # calibration moved it, so the test can fail


def test_calibrate_needs_a_gate_and_round_trips(tmp_path):
    with pytest.raises(ValueError, match="frame_gate"):
        HybridLite(HybridLiteConfig(**SMALL, aps=True, calibrate=True))
    net = HybridLite(HybridLiteConfig(**SMALL, aps=True, frame_gate=True, calibrate=True))
    save_model(net, tmp_path / "c.pt")
    assert load_model(tmp_path / "c.pt", "cpu").config.calibrate


def test_train_reconstruct_calibrate_from_a_gated_checkpoint(tmp_path, capsys, tiny_world):  # noqa: F811
    start = tmp_path / "gated.pt"
    save_model(with_frame_gate(HybridLite(HybridLiteConfig(**SMALL, aps=True))), start)
    assert _train(tiny_world, start, tmp_path / "c.pt", "--calibrate") == 0
    capsys.readouterr()
    got = load_model(tmp_path / "c.pt", "cpu")
    assert got.config.calibrate and got.config.frame_gate


def test_the_bundled_default_is_calibrated():
    """What the README's numbers were measured with."""
    net = load_model("hybridlite", "cpu")
    assert net.config.calibrate and net.config.shade_first and net.config.frame_gate


def test_the_frame_options_imply_what_they_read_through():
    """Calibration and the frames' agreement work through the gate, every option reads the frames, and
    the two orders of the percentiles exclude each other."""
    from spikelens.pipelines.reconstruction import FrameOptions

    assert FrameOptions().config() == {}
    assert FrameOptions(calibrate=True).config() == {"aps": True, "frame_gate": True, "calibrate": True}
    assert FrameOptions(shade_first=True).config() == {"aps": True, "shade_first": True}
    with pytest.raises(ValueError, match="choose one"):
        FrameOptions(target_first=True, shade_first=True)


def test_train_reconstruct_calibrate_builds_a_new_model_with_it(tmp_path, capsys, tiny_world):  # noqa: F811
    """Without --init the options go into the new model's config, what they imply included."""
    from spikelens.cli import main

    cache, rec = tiny_world
    out = tmp_path / "new.pt"
    args = ["train-reconstruct", str(cache), "--calibrate", "-o", str(out), "--test", str(rec)]
    assert main([*args, "--epochs", "1", "--batch", "2", "--crop", "32", "--bins", "4", "-q"]) == 0
    capsys.readouterr()
    got = load_model(out, "cpu").config
    assert got.calibrate and got.frame_gate and got.aps
