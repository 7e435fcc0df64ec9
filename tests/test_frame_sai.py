"""Occlusion-robust frame SAI: at each pixel the percentile that is not the occluder, whatever its shade."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from spikelens.datasets.sai_scene import SAIScene
from spikelens.datasets.simulator.sai import SAIConfig, make_scene, simulate_scene
from spikelens.datasets.simulator.textures import Occluder
from spikelens.pipelines.reconstruction import frame_sai_image, psnr
from spikelens.refocus.frame_sai import (
    RefocusedFrames,
    events_choice,
    frame_percentiles,
    nan_percentiles,
    occluder_shade,
    refocus_frames,
    robust_frame_sai,
    shade_choice,
)
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
def test_the_target_is_the_percentile_away_from_the_occluder(shade, side):
    """Behind a dark occluder the target is the 90th percentile everywhere, behind a bright one the 10th;
    the shade rule and the events' whole-image choice agree, and both beat the classic mean's haze."""
    events, scene = _scene(shade)
    rate = scene.rate(scene.depth)
    found = integrate(events, scene, scene.depth)
    frames = refocus_frames(scene.aps, scene.aps_t_us, rate, scene.t_ref_us)
    got = robust_frame_sai(frames)
    assert abs(got.shade - 255 * shade) <= 3
    assert got.low_share < 0.02 if side == "high" else got.low_share > 0.98
    percentile, agreement = events_choice(frame_percentiles(frames), found.gradient, found.seen)
    assert (percentile > 50) if side == "high" else (percentile < 50)
    assert agreement > 0.3
    classic = frame_sai_image(scene.aps, scene.aps_t_us, rate, scene.t_ref_us)  # the mean: the occluder's haze
    truth = scene.ground_truth
    assert psnr(got.image, truth) > psnr(classic, truth) + 5


def test_an_occluder_inside_the_pictures_range_is_followed_pixel_by_pixel():
    """A mid-grey occluder in front of a scene both darker and brighter than it: no one percentile is the
    target (each loses the half of the picture on the other side of the occluder's shade); the shade rule
    takes each pixel's own and comes back within a few grey levels where the frames saw it."""
    _, scene = _scene(0.4)
    frames = refocus_frames(scene.aps, scene.aps_t_us, scene.rate(scene.depth), scene.t_ref_us)
    both = frame_percentiles(frames)
    truth = scene.ground_truth
    assert (truth < 90).mean() > 0.2 and (truth > 105).mean() > 0.2  # both sides of the occluder (102)
    got = robust_frame_sai(frames, both)
    assert abs(got.shade - 102) <= 3 and 0.2 < got.low_share < 0.8
    single = max(psnr(np.clip(np.rint(b), 0, 255).astype(np.uint8), truth) for b in both)
    assert psnr(got.image, truth) > single + 6
    assert psnr(got.image, truth) > 30


def test_the_shade_is_the_level_both_percentile_images_share():
    """Exact levels: a textured target, a sky of one tone over 40 % of it, a uniform occluder; the shade
    is the occluder's, the choice is per pixel, and ties go to the 90th."""
    rng = np.random.default_rng(5)
    target = rng.uniform(20, 240, (50, 60)).round()
    target[:20] = 200.0
    for occ in (10.0, 120.0, 250.0):
        both = np.stack([np.minimum(target, occ), np.maximum(target, occ)])
        assert occluder_shade(both) == occ
        low = shade_choice(both, occ)
        np.testing.assert_array_equal(np.where(low, both[0], both[1]), target)
    assert not shade_choice(np.array([[[90.0]], [[110.0]]]), 100)[0, 0]


def test_refocused_frames_mark_where_no_frame_reaches():
    aps = np.full((2, 4, 10), 100, np.uint8)
    stack = refocus_frames(aps, np.array([0, 1_000_000]), 3.0, 0).samples()  # the second moves 3 px right
    assert np.isfinite(stack[0]).all()
    assert np.isnan(stack[1][:, :3]).all() and (stack[1][:, 3:] == 100).all()


def test_frame_sais_refuse_mismatched_inputs():
    ones = np.ones((3, 4, 5), np.float32)
    with pytest.raises(ValueError, match="do not match"):
        robust_frame_sai(RefocusedFrames(ones, ones), np.zeros((2, 4, 6)))
    with pytest.raises(ValueError, match="no refocused frame"):
        robust_frame_sai(RefocusedFrames(ones, 0 * ones))
    with pytest.raises(ValueError, match="disagree"):
        events_choice(np.zeros((2, 4, 5)), np.zeros((4, 6)), np.ones(6, bool))
    with pytest.raises(ValueError, match="saw no column"):
        events_choice(np.zeros((2, 4, 5)), np.zeros((4, 5)), np.zeros(5, bool))


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
