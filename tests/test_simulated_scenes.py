import json

import numpy as np
import pytest

from spikelens.cli import main
from spikelens.datasets import open_recording
from spikelens.datasets.collections import DVSGesture, ESAIDataset
from spikelens.datasets.sai_scene import SAIScene
from spikelens.datasets.simulator.sai import SAIConfig, make_scene, simulate_scene
from spikelens.pipelines.simulate import write_sai_dataset
from spikelens.refocus.autofocus import focal_stack, sharpness

SMALL = SAIConfig(width=128, height=96, duration_us=500_000)


@pytest.mark.parametrize(("source", "seed"), [("photo:camera", 0), ("photo:astronaut", 1), ("procedural:shapes:3", 2)])
def test_refocus_at_true_depth_beats_ten_percent_off(source, seed):
    rng = np.random.default_rng(seed)
    scene = make_scene(source, rng, SMALL)
    events, meta = simulate_scene(scene, rng)
    assert meta.extra["depth"] == scene.depth and 0.3 <= meta.extra["occluder_coverage"] <= 0.7
    d = scene.depth
    stack = focal_stack(events, SAIScene.from_events(meta, events), np.array([0.9 * d, d, 1.1 * d]))
    for metric in ("variance", "gradient"):
        s = sharpness(stack, metric)
        assert s[1] > s[0] and s[1] > s[2], (metric, s)


def test_scene_geometry_and_ground_truth():
    rng = np.random.default_rng(4)
    scene = make_scene("procedural:checker:1", rng, SMALL)
    rate = scene.rate(scene.depth)
    dt = round(3 / rate * 1e6)  # the target moves 3 px in dt
    clear = scene.render(scene.t_ref_us, occluded=False)
    later = scene.render(scene.t_ref_us + dt, occluded=False)
    np.testing.assert_allclose(later[:, 10:100], clear[:, 13:103], atol=0.02)
    _, meta = simulate_scene(scene, rng)
    x = meta.extra
    np.testing.assert_array_equal(x["occ_free_aps"], np.rint(clear * 255).astype(np.uint8))
    assert x["occ_aps"].shape == (10, 96, 128) and x["occ_aps_ts_us"].tolist() == list(range(0, 500_000, 50_000))
    occluded = scene.render(scene.t_ref_us)
    assert np.abs(occluded - clear).mean() > 0.02  # the occluder really hides part of the target


def test_sai_dataset_splits_keep_sources_apart(tmp_path):
    cfg = SAIConfig(width=64, height=48, duration_us=200_000, aps_fps=10)
    m = write_sai_dataset(tmp_path, 12, seed=5, config=cfg, formats=("npy", "h5"))
    by_split = {s: {r["source"] for r in m["samples"] if r["split"] == s} for s in ("train", "val", "test")}
    assert all(by_split.values())
    assert not (
        by_split["train"] & by_split["val"]
        or by_split["train"] & by_split["test"]
        or by_split["val"] & by_split["test"]
    )
    assert any(s.startswith("photo:") for s in set().union(*by_split.values()))
    assert json.loads((tmp_path / "manifest.json").read_text()) == json.loads(json.dumps(m, default=float))
    ds = ESAIDataset(tmp_path, split="val")
    events, target = ds[0]
    assert events.size > 0 and target.shape == (48, 64) and target.dtype == np.uint8
    sample = m["samples"][0]
    with (
        open_recording(tmp_path / sample["file"]) as a,
        open_recording(tmp_path / sample["file"].replace(".npy", ".h5")) as b,
    ):
        np.testing.assert_array_equal(a.load(), b.load())
        assert b.meta.extra["depth"] == pytest.approx(sample["depth"]) and b.meta.extra["source"] == sample["source"]
        np.testing.assert_array_equal(a.meta.extra["occ_aps"], b.meta.extra["occ_aps"])
    again = write_sai_dataset(tmp_path / "again", 12, seed=5, config=cfg)
    assert [r["source"] for r in again["samples"]] == [r["source"] for r in m["samples"]]


def test_cli_simulate_sai(tmp_path, capsys):
    args = ["simulate", "sai", str(tmp_path), "--count", "1", "--size", "64", "48", "--duration-s", "0.2", "-q"]
    assert main([*args, "--format", "npy"]) == 0
    assert len(ESAIDataset(tmp_path, split="train")) == 1  # E-SAI's layout, asked for


@pytest.mark.parametrize(("count", "splits"), [(2, (2, 0, 0)), (3, (1, 1, 1)), (7, (5, 1, 1))])
def test_cli_simulate_sai_states_its_split_rule(tmp_path, capsys, count, splits):
    args = ["simulate", "sai", str(tmp_path), "--count", str(count), "--size", "32", "24", "--duration-s", "0.1"]
    assert main(args) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "train {}, val {}, test {}".format(*splits) in out and "at least one each from 3 samples up" in out
    assert f"simulate sai: {count} scenes as h5, about" in captured.err  # the size, said before writing
    for split, n in zip(("train", "val", "test"), splits, strict=True):  # compact HDF5 unless E-SAI's is asked
        d = tmp_path / split
        assert d.is_dir() and len(list(d.glob("*.h5"))) == n and not list(d.glob("*.npy"))
    assert main(args) == 2  # the folder is taken now
    assert "exists: pass --overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite", "-q"]) == 0


@pytest.mark.slow
def test_cli_simulate_gesture_loads_in_the_dataset_class(tmp_path):
    assert main(["simulate", "gesture", str(tmp_path), "--count", "2", "--segment-s", "0.25", "0.3", "-q"]) == 0
    base = tmp_path / "DvsGesture"
    assert len((base / "trials_to_train.txt").read_text().split()) == 1
    assert len((base / "trials_to_test.txt").read_text().split()) == 1
    for train in (True, False):
        ds = DVSGesture(tmp_path, train=train)
        assert len(ds) == 11 and sorted(ds[i][1] for i in range(11)) == list(range(11))
        counts = [ds[i][0].size for i in range(11)]
        assert min(counts) > 100, counts  # every gesture segment has motion events
        ev, _ = ds[0]
        assert ev["x"].max() < 128 and ev["y"].max() < 128 and np.all(np.diff(ev["t"]) >= 0)


def test_cli_simulate_bad_input(tmp_path, capsys):
    assert main(["simulate", "sai", str(tmp_path), "--count", "0"]) == 2
    assert "count" in capsys.readouterr().err
    assert main(["simulate", "sai", str(tmp_path), "--size", "0", "10"]) == 2
    assert "8x8" in capsys.readouterr().err
    assert main(["simulate", "gesture", str(tmp_path), "--segment-s", "0", "1"]) == 2
    assert not any(tmp_path.rglob("*.npy")) and not any(tmp_path.rglob("*.aedat"))


def test_aps_frames_are_exposed_like_a_cameras():
    """Each frame is the scene averaged over its exposure while the camera slides, plus noise; the caller's
    random stream is the same whatever the frames do (they draw from their own generator)."""
    from dataclasses import replace

    from spikelens.datasets.simulator.sai import aps_frames, to_uint8

    layers = make_scene("procedural:shapes:2", np.random.default_rng(0), SAIConfig(96, 64, duration_us=300_000))
    t = np.array([100_000, 200_000])
    ideal = replace(layers, config=replace(layers.config, aps_exposure_us=0, aps_noise=0.0))
    sharp = aps_frames(ideal, t, np.random.default_rng(1))
    np.testing.assert_array_equal(sharp[0], to_uint8(layers.render(100_000)))
    still = replace(layers, config=replace(layers.config, aps_noise=0.0))
    blurred = aps_frames(still, t, np.random.default_rng(1))
    moving = still.config.fx * still.config.v / still.occluder_depth * still.config.aps_exposure_us / 1e6
    assert moving > 1  # the occluder crosses more than a pixel during the exposure: its edges smear
    step = lambda f: np.abs(np.diff(f.astype(float), axis=1)).mean()  # noqa: E731
    assert step(blurred[0]) < step(sharp[0])
    assert np.abs(blurred.astype(int) - sharp).max() > 10  # an occluder edge, smeared across pixels
    noisy = aps_frames(layers, t, np.random.default_rng(1))
    assert 1.5 < float(np.std(noisy.astype(float) - blurred)) < 4  # 1 % of 255, after rounding
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    simulate_scene(ideal, rng_a)
    simulate_scene(layers, rng_b)
    assert rng_a.integers(2**62) == rng_b.integers(2**62)
