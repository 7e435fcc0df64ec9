"""Occlusion-robust frame SAI: the events pick the percentile that is the target, whatever the occluder's shade."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from spikelens.datasets.sai_scene import SAIScene
from spikelens.datasets.simulator.sai import SAIConfig, make_scene, simulate_scene
from spikelens.datasets.simulator.textures import Occluder
from spikelens.pipelines.reconstruction import frame_sai_image, psnr
from spikelens.refocus.frame_sai import RefocusedFrames, nan_percentiles, refocus_frames, robust_frame_sai
from spikelens.refocus.integrate import integrate


def _simulated(shade: float):
    """A 120 x 80 scene behind a uniform occluder of ``shade``: its events and metadata."""
    rng = np.random.default_rng(0)
    layers = make_scene("procedural:shapes:4", rng, SAIConfig(120, 80, duration_us=600_000, coverage_range=(0.5, 0.5)))
    occ = layers.occluder
    layers = replace(layers, occluder=Occluder(occ.kind, occ.alpha, np.full_like(occ.shade, shade)))
    return simulate_scene(layers, rng)


def _scene(shade: float):
    events, meta = _simulated(shade)
    return events, SAIScene.from_events(meta, events)


@pytest.mark.parametrize(("shade", "side"), [(0.02, "high"), (0.98, "low")])
def test_the_events_choose_the_side_the_target_is_on(shade, side):
    events, scene = _scene(shade)
    rate = scene.rate(scene.depth)
    found = integrate(events, scene, scene.depth)
    frames = refocus_frames(scene.aps, scene.aps_t_us, rate, scene.t_ref_us)
    got = robust_frame_sai(frames, found.gradient, found.seen)
    assert (got.percentile > 50) if side == "high" else (got.percentile < 50)
    classic = frame_sai_image(scene.aps, scene.aps_t_us, rate, scene.t_ref_us)  # the mean: the occluder's haze
    truth = scene.ground_truth
    assert psnr(got.image, truth) > psnr(classic, truth) + 5


def test_refocused_frames_mark_where_no_frame_reaches():
    aps = np.full((2, 4, 10), 100, np.uint8)
    stack = refocus_frames(aps, np.array([0, 1_000_000]), 3.0, 0).samples()  # the second moves 3 px right
    assert np.isfinite(stack[0]).all()
    assert np.isnan(stack[1][:, :3]).all() and (stack[1][:, 3:] == 100).all()


def test_robust_frame_sai_refuses_mismatched_inputs():
    ones = np.ones((3, 4, 5), np.float32)
    with pytest.raises(ValueError, match="disagree"):
        robust_frame_sai(RefocusedFrames(ones, ones), np.zeros((4, 6)), np.ones(6, bool))
    with pytest.raises(ValueError, match="no refocused frame"):
        robust_frame_sai(RefocusedFrames(ones, 0 * ones), np.zeros((4, 5)), np.ones(5, bool))


def test_nan_percentiles_are_numpys():
    rng = np.random.default_rng(3)
    stack = rng.normal(100, 30, (17, 9, 11)).astype(np.float32)
    stack[rng.random(stack.shape) < 0.4] = np.nan
    stack[:, 0, 0] = np.nan  # a pixel no frame reaches
    stack[1:, 0, 1] = np.nan  # one with a single sample
    with pytest.warns(RuntimeWarning, match="All-NaN"):  # NumPy's answer there is NaN; ours is 0
        want = np.nan_to_num(np.nanpercentile(stack.astype(np.float64), (10, 50, 90), axis=0), nan=0.0)
    np.testing.assert_allclose(nan_percentiles(stack, (10, 50, 90)), want, rtol=1e-6, atol=1e-4)


def _write(tmp_path, with_frames: bool = True):
    from spikelens.datasets.formats.esai import write_esai

    events, meta = _simulated(0.02)
    if not with_frames:
        meta.extra.pop("occ_aps")
        meta.extra.pop("occ_aps_ts_us")
    path = tmp_path / ("scene.npy" if with_frames else "no_frames.npy")
    write_esai(path, events, meta)
    return path


def test_cli_reconstructs_from_the_frames_and_from_the_events(tmp_path, capsys):
    import json

    from spikelens.cli import main

    path = _write(tmp_path)
    scores = {}
    for method in ("frames", "integrate"):
        out = tmp_path / f"{method}.png"
        assert main(["reconstruct", str(path), "-o", str(out), "--method", method, "--json"]) == 0
        got = json.loads(capsys.readouterr().out)
        assert got["model"] == method and out.exists()
        scores[method] = got["psnr"]
    assert scores["frames"] > scores["integrate"]  # the frames carry the brightness the events lack


def test_cli_frames_method_on_a_recording_without_frames_is_one_line(tmp_path, capsys):
    from spikelens.cli import main

    path = _write(tmp_path, with_frames=False)
    assert main(["reconstruct", str(path), "-o", str(tmp_path / "x.png"), "--method", "frames"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no APS frames" in err[0]
    assert not (tmp_path / "x.png").exists()
