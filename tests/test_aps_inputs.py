"""Networks that read the APS frames too: what the channels hold, that a model gains them silently, that
recordings without frames still work, and that training sees frames of every quality and none."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch

from spikelens.datasets import SensorSize
from spikelens.datasets.simulator.world import FENCES, LOW_LIGHT_APS_NOISE, TRAIN, draw_scene
from spikelens.hybrid_net import reconstruct as hn
from spikelens.hybrid_net.reconstruct import HybridLite, HybridLiteConfig, with_aps_inputs
from spikelens.pipelines.reconstruction import PreparedPairs, TrainConfig, build_model, run_model, train
from spikelens.pipelines.sai_world import APS, network_inputs, prepare_world
from spikelens.refocus import frame_sai
from spikelens.refocus.frame_sai import RefocusedFrames, aps_channels, aps_images

SMALL = {"stride": 2, "physics": True, "log_map": "unfolded", "width": 8, "n_blocks": 1, "c1": 4, "c2": 4, "c3": 8}


def test_aps_images_are_both_percentiles_and_the_mean_of_the_refocused_frames():
    """Ten frames of one pixel row: a target of 200 seen through an occluder of 40 on three of them. The
    percentiles are NumPy's (linear), the mean is the classic SAI; a pixel no frame reached is 0."""
    values = np.full((10, 2, 3), 200.0, np.float32)
    values[:3] = 40.0
    weights = np.ones_like(values)
    values[:, 1, 2] = weights[:, 1, 2] = 0.0  # no frame reaches this pixel (the warp leaves 0 there)
    images = aps_images(RefocusedFrames(values, weights))
    column = values[:, 0, 0]
    assert images.dtype == np.uint8 and images.shape == (3, 2, 3)
    assert images[0, 0, 0] == round(np.percentile(column, 10)) and images[1, 0, 0] == 200
    assert images[2, 0, 0] == round(column.mean()) == 152
    assert (images[:, 1, 2] == 0).all()
    channels = aps_channels(images, (2, 3))
    np.testing.assert_allclose(channels[:3], images / 255.0)
    assert (channels[3] == 1).all()
    assert not aps_channels(None, (2, 3)).any()
    with pytest.raises(ValueError, match="do not match"):
        aps_channels(images, (3, 2))


def test_the_network_and_the_channels_agree_on_their_count():
    assert hn.APS_CHANNELS == frame_sai.APS_CHANNELS == 4


def test_a_model_gains_the_aps_channels_silently():
    """``with_aps_inputs`` keeps every old weight and starts the new inputs at zero: the copy's output is
    the model's (to float rounding) whatever the frames say, and the original is left as it was."""
    torch.manual_seed(0)
    old = HybridLite(HybridLiteConfig(**SMALL)).eval()
    before = {k: v.clone() for k, v in old.state_dict().items()}
    new = with_aps_inputs(old).eval()
    assert new.config.aps and new.side_channels == 6 and not old.config.aps
    x, p = torch.rand(2, 4, 2, 32, 40) * 3, torch.randn(2, 2, 32, 40)
    for aps in (torch.zeros(2, 4, 32, 40), torch.rand(2, 4, 32, 40)):
        torch.testing.assert_close(new(x, torch.cat([p, aps], 1)), old(x, p), atol=1e-5, rtol=0)
    assert all(torch.equal(before[k], v) for k, v in old.state_dict().items())
    with pytest.raises(ValueError, match="physics channels"):
        with_aps_inputs(HybridLite(HybridLiteConfig(**{**SMALL, "physics": False})))
    with pytest.raises(ValueError, match="aps needs physics"):
        HybridLite(HybridLiteConfig(**{**SMALL, "physics": False}, aps=True))
    with pytest.raises(ValueError, match=r"expected \(2, 6, 32, 40\)"):
        new(x, p)


def test_a_recording_without_frames_gets_zero_aps_channels():
    """``run_model`` builds an APS model's input from a sample's channels: physics, then APS; a sample
    without the APS entry reads as one without frames (zeros, flag off), and the frames change the output
    once the model has learnt to read them."""
    torch.manual_seed(1)
    net = HybridLite(HybridLiteConfig(**SMALL, aps=True)).eval()
    with torch.no_grad():  # make the new channels matter, as training would
        net.head.weight[:, -4:] = 0.5
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 3, (4, 2, 32, 32)).astype(np.int16)
    physics = {"unfolded": rng.normal(size=(2, 32, 32)).astype(np.float32)}
    blank = run_model(net, frames, physics)
    with_zeros = run_model(net, frames, {**physics, APS: aps_channels(None, (32, 32))})
    np.testing.assert_array_equal(blank, with_zeros)
    images = rng.integers(0, 256, (3, 32, 32)).astype(np.uint8)
    assert not np.allclose(run_model(net, frames, {**physics, APS: aps_channels(images, (32, 32))}), blank)


@pytest.fixture
def cache(tmp_path):
    path = tmp_path / "c.h5"
    prepare_world(path, 2, seed=5, crop=32, crops_per_scene=1, bins=4, sensor=SensorSize(64, 48))
    return path


def test_a_cache_keeps_the_frames_and_training_drops_them_for_some_crops(cache, tmp_path):
    """The world's caches keep the APS images; an APS model's pairs carry them after the physics (a pair
    cached without frames reads as zeros), a left-right flip mirrors them without the gradient's sign
    change, and ``aps_dropout`` blanks them for that share of crops."""
    with h5py.File(cache, "r+") as h5:
        keys = sorted(h5)
        kept = h5[keys[0]]["aps"][()]
        assert kept.dtype == np.uint8 and kept.shape == (3, 32, 32)
        del h5[keys[1]]["aps"]
    plain = PreparedPairs(cache, crop=32, augment=False)
    assert plain.pair(0)[1].shape == (2, 32, 32)
    pairs = PreparedPairs(cache, crop=32, augment=False, aps=True)
    with_frames, without = pairs.pair(0)[1], pairs.pair(1)[1]
    np.testing.assert_allclose(with_frames[2:5], kept / 255.0)
    assert (with_frames[5] == 1).all() and not without[2:].any()
    flipped = PreparedPairs(cache, crop=32, augment=True, aps=True)
    mirrored = 0
    for seed in range(40):  # the crop is the whole pair: only the flips vary
        p = flipped.crop_pair(0, np.random.default_rng(seed))[1].numpy()
        if np.array_equal(p[2:], with_frames[2:, :, ::-1]):  # mirrored left-right only
            np.testing.assert_array_equal(p[0], -with_frames[0, :, ::-1])
            np.testing.assert_array_equal(p[1], with_frames[1, :, ::-1])
            mirrored += 1
    assert mirrored
    dropped = PreparedPairs(cache, crop=32, augment=False, aps=True, aps_dropout=1.0)
    assert not dropped.crop_pair(0, np.random.default_rng(0))[1][2:].any()
    for ds in (plain, pairs, flipped, dropped):
        ds.close()
    model = build_model("hybridlite", 0, **SMALL, aps=True)
    losses = train(model, cache, TrainConfig(epochs=2, batch=2, crop=32), tmp_path / "n.pt", "cpu")
    assert len(losses) == 2 and all(np.isfinite(losses))
    with h5py.File(cache, "r+") as h5:  # a cache from before the frames were kept
        for g in h5.values():
            g.pop("aps", None)
    with pytest.raises(ValueError, match=r"reads the APS frames.*hold none"):
        train(model, cache, TrainConfig(epochs=1, batch=2, crop=32), tmp_path / "m.pt", "cpu")


def test_the_training_world_draws_frames_of_every_quality_and_the_held_out_sets_keep_theirs():
    rng = np.random.default_rng(0)
    drawn = [draw_scene(TRAIN, rng, 64, 48) for _ in range(30)]
    exposures = [s.scene.config.aps_exposure_us for s in drawn]
    noises = [s.scene.config.aps_noise / (LOW_LIGHT_APS_NOISE if s.tau_us else 1.0) for s in drawn]
    assert TRAIN.aps_exposure_us[0] <= min(exposures) < max(exposures) <= TRAIN.aps_exposure_us[1]
    assert max(exposures) - min(exposures) > 0.5 * np.ptp(TRAIN.aps_exposure_us)
    assert all(TRAIN.aps_noise[0] <= n <= TRAIN.aps_noise[1] for n in noises)
    assert any(s.tau_us and s.scene.config.aps_noise > TRAIN.aps_noise[1] for s in drawn)  # noisier in low light
    held = draw_scene(FENCES, np.random.default_rng(1))
    assert held.scene.config.aps_exposure_us == 10_000 and held.scene.config.aps_noise == 0.01


def test_network_inputs_without_frames_have_a_blank_aps_entry():
    from dataclasses import replace

    from spikelens.datasets.sai_scene import SAIScene
    from spikelens.datasets.simulator.sai import SAIConfig, make_scene, simulate_scene

    rng = np.random.default_rng(2)
    events, meta = simulate_scene(make_scene("procedural:shapes:3", rng, SAIConfig(64, 48, duration_us=300_000)), rng)
    scene = SAIScene.from_events(meta, events)
    with_frames = network_inputs(events, scene, scene.depth, 4)
    assert with_frames.physics[APS][-1].all() and with_frames.physics[APS][:3].any()
    bare = replace(scene, aps=None, aps_t_us=None)
    without = network_inputs(events, bare, scene.depth, 4)
    assert not without.physics[APS].any() and without.robust is None
    far = replace(scene, aps_t_us=scene.aps_t_us + 10**9)  # every frame refocused far off the sensor
    assert not network_inputs(events, far, scene.depth, 4).physics[APS].any()
    off = network_inputs(events, scene, scene.depth, 4, with_aps=False)
    assert not off.physics[APS].any() and off.frame_sai is None and off.robust is None


def test_the_evaluation_scores_a_frames_model_without_its_frames_too(tmp_path):
    from spikelens.pipelines.reconstruction import evaluate
    from spikelens.pipelines.sai_world import write_world_recordings

    files = write_world_recordings(tmp_path, 1, seed=4, split="fences", sensor=SensorSize(64, 48))
    torch.manual_seed(0)
    plain = HybridLite(HybridLiteConfig(**SMALL)).eval()
    frames_model = with_aps_inputs(plain).eval()
    with torch.no_grad():
        frames_model.head.weight[:, -4:] = 0.5  # reads the frames
    row = evaluate(frames_model, files, bins=4)["files"][0]
    assert "events_only_psnr" not in evaluate(plain, files, bins=4)["files"][0]
    assert row["events_only_psnr"] != row["psnr"]
    blind = evaluate(with_aps_inputs(plain).eval(), files, bins=4)["files"][0]  # silent APS inputs
    assert blind["events_only_psnr"] == pytest.approx(blind["psnr"], abs=0.05)


def test_reconstruct_reads_the_frames_unless_told_not_to(tmp_path, capsys):
    """``reconstruct`` with a model that reads the frames says so, and ``--no-frames`` gives exactly the
    output of the same model on the recording with its frames taken out."""
    from spikelens.cli import main
    from spikelens.hybrid_net.registry import save_model
    from spikelens.pipelines.sai_world import write_world_recordings

    rec = write_world_recordings(tmp_path, 1, seed=4, split="fences", sensor=SensorSize(64, 48))[0]
    torch.manual_seed(0)
    net = with_aps_inputs(HybridLite(HybridLiteConfig(**SMALL))).eval()
    with torch.no_grad():
        net.head.weight[:, -4:] = 0.5
    ckpt = tmp_path / "aps.pt"
    save_model(net, ckpt)
    outs = {}
    for flag in ([], ["--no-frames"]):
        raw = tmp_path / f"raw{len(flag)}.npy"
        args = ["reconstruct", str(rec), "--model", str(ckpt), "-o", str(tmp_path / "o.png"), "--raw", str(raw)]
        assert main([*args, *flag, "--json"]) == 0
        outs[bool(flag)] = (json.loads(capsys.readouterr().out)["frames_used"], np.load(raw))
    assert outs[False][0] is True and outs[True][0] is False
    assert not np.allclose(outs[False][1], outs[True][1])
    assert main(["reconstruct", str(rec), "--model", str(ckpt), "-o", str(tmp_path / "o.png")]) == 0
    assert "with the APS frames" in capsys.readouterr().out
