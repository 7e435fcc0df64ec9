import numpy as np
import pytest

from spikelens.datasets import FormatError, RecordingMeta, open_recording, write_npz
from spikelens.datasets.formats.esai import write_esai
from spikelens.datasets.patterns import random_events

from helpers import assert_events_equal


def esai_dict(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    ev = np.zeros(n, np.dtype([("x", "<i2"), ("y", "<i2"), ("t", "<f8"), ("p", "<i1")]))
    ev["x"], ev["y"] = rng.integers(0, 346, n), rng.integers(0, 260, n)
    ev["t"] = np.sort(rng.uniform(0.1, 1.1, n))
    ev["p"] = rng.integers(0, 2, n)
    return {
        "events": ev,
        "occ_free_aps": rng.integers(0, 255, (260, 346), dtype=np.uint8),
        "occ_free_aps_ts": 0.6,
        "fx": 320.0,
        "depth": 1.2,
        "v": 0.177,
        "size": (260, 346),
        "occ_aps": rng.integers(0, 255, (3, 260, 346), dtype=np.uint8),
        "occ_aps_ts": np.array([0.2, 0.6, 1.0]),
    }


def test_esai_sample(tmp_path):
    d = esai_dict()
    path = tmp_path / "0001.npy"
    np.save(path, d, allow_pickle=True)
    rec = open_recording(path)
    m = rec.meta
    assert (m.format, m.width, m.height) == ("esai-npy", 346, 260)
    assert (m.extra["fx"], m.extra["depth"], m.extra["v"], m.extra["t_ref_us"]) == (320.0, 1.2, 0.177, 600_000)
    np.testing.assert_array_equal(m.extra["occ_free_aps"], d["occ_free_aps"])
    assert m.extra["occ_aps_ts_us"].tolist() == [200_000, 600_000, 1_000_000]
    ev = rec.load()
    np.testing.assert_array_equal(ev["t"], np.rint(d["events"]["t"] * 1e6).astype(np.int64))
    np.testing.assert_array_equal(ev["x"], d["events"]["x"])
    # and back out in the E-SAI layout
    out = tmp_path / "back.npy"
    write_esai(out, ev, m)
    again = open_recording(out)
    assert_events_equal(again.load(), ev)
    assert again.meta.extra["t_ref_us"] == 600_000


def test_esai_missing_keys(tmp_path):
    d = esai_dict()
    del d["fx"]
    path = tmp_path / "bad.npy"
    np.save(path, d, allow_pickle=True)
    with pytest.raises(FormatError, match="lacks keys \\['fx'\\]"):
        open_recording(path)


def test_tonic_gesture_npy(tmp_path):
    rng = np.random.default_rng(1)
    a = np.stack(
        [
            rng.integers(0, 128, 500),
            rng.integers(0, 128, 500),
            rng.integers(0, 2, 500),
            np.sort(rng.uniform(0, 6000, 500)),
        ],
        axis=1,
    ).astype(np.float64)
    (tmp_path / "user01_led").mkdir()
    path = tmp_path / "user01_led" / "4.npy"
    np.save(path, a)
    rec = open_recording(path)
    assert (rec.meta.format, rec.meta.width, rec.meta.extra["label"]) == ("tonic-dvsgesture-npy", 128, 4)
    ev = rec.load()
    np.testing.assert_array_equal(ev["t"], np.rint(a[:, 3] * 1000).astype(np.int64))
    np.testing.assert_array_equal(ev["x"], a[:, 0])


def test_plain_npy_and_npz_roundtrip(tmp_path):
    ev = random_events(1000, 64, 48, seed=3)
    np.save(tmp_path / "e.npy", ev)
    assert_events_equal(open_recording(tmp_path / "e.npy").load(), ev)
    meta = RecordingMeta(None, "test", 64, 48, "cam", {"fx": 1.5, "frame": np.arange(6).reshape(2, 3)})
    write_npz(tmp_path / "e.npz", ev, meta)
    rec = open_recording(tmp_path / "e.npz")
    assert (rec.meta.width, rec.meta.height, rec.meta.camera, rec.meta.extra["fx"]) == (64, 48, "cam", 1.5)
    np.testing.assert_array_equal(rec.meta.extra["frame"], meta.extra["frame"])
    assert_events_equal(rec.load(), ev)


def test_npy_that_is_not_events(tmp_path):
    np.save(tmp_path / "img.npy", np.zeros((4, 4, 3)))
    with pytest.raises(FormatError, match="not an event array"):
        open_recording(tmp_path / "img.npy")
    np.savez(tmp_path / "x.npz", a=np.zeros(3))
    with pytest.raises(FormatError, match="needs arrays t, x, y, p"):
        open_recording(tmp_path / "x.npz")
