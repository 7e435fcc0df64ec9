import h5py
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from spikelens.datasets import FormatError, H5EventWriter, RecordingMeta, open_recording, write_h5
from spikelens.datasets.formats import hdf5
from spikelens.datasets.patterns import random_events

from helpers import assert_events_equal

META = RecordingMeta(None, "test", 346, 260, "DAVIS346", {"fx": 320.0, "note": "hi", "aps": np.eye(3)})


@pytest.fixture(scope="module")
def h5file(tmp_path_factory):
    ev = random_events(300_000, 346, 260, rate_hz=1e6, seed=0)
    path = tmp_path_factory.mktemp("h5") / "r.h5"
    with H5EventWriter(path, META, index_bin_us=1000) as w:
        for i in range(0, ev.size, 70_001):  # uneven appends
            w.append(ev[i : i + 70_001])
    return path, ev


def test_roundtrip_is_lossless(h5file):
    path, ev = h5file
    rec = open_recording(path)
    assert (rec.meta.format, rec.meta.width, rec.meta.height, rec.meta.camera) == ("hdf5", 346, 260, "DAVIS346")
    assert rec.meta.extra["fx"] == 320.0 and rec.meta.extra["note"] == "hi"
    np.testing.assert_array_equal(rec.meta.extra["aps"], np.eye(3))
    assert_events_equal(rec.load(), ev)
    assert_events_equal(np.concatenate(list(rec.packets(max_events=12_345))), ev)


@given(st.integers(-1000, 400_000), st.integers(0, 100_000))
def test_window_matches_brute_force(h5file, t0, span):
    path, ev = h5file
    with open_recording(path) as rec:
        got = rec.window(t0, t0 + span)
    mask = (ev["t"] >= t0) & (ev["t"] < t0 + span)
    assert_events_equal(got, ev[mask])


def test_window_reads_only_what_it_needs(h5file, monkeypatch):
    path, _ = h5file
    rec = open_recording(path)
    calls = []
    orig = rec._read
    monkeypatch.setattr(rec, "_read", lambda i0, i1: calls.append(i1 - i0) or orig(i0, i1))
    w = rec.window(100_000, 101_000)
    assert calls == [w.size] and w.size < 2000


def test_gzip_and_uncompressed(tmp_path):
    ev = random_events(5000, 32, 32, seed=1)
    for comp in ("gzip", None):
        write_h5(tmp_path / f"{comp}.h5", ev, META, compression=comp)
        assert_events_equal(open_recording(tmp_path / f"{comp}.h5").load(), ev)
    with pytest.raises(ValueError, match="unknown compression"):
        write_h5(tmp_path / "x.h5", ev, META, compression="zip")


def test_writer_rejects_unsorted(tmp_path):
    ev = random_events(100, 32, 32, seed=1)
    with H5EventWriter(tmp_path / "u.h5", META) as w:
        w.append(ev[50:])
        with pytest.raises(ValueError, match="time order"):
            w.append(ev[:50])


def test_foreign_and_incomplete_hdf5(tmp_path):
    with h5py.File(tmp_path / "foreign.h5", "w") as f:
        f["data"] = np.zeros(3)
    with pytest.raises(FormatError, match="not a SpikeLens event file"):
        open_recording(tmp_path / "foreign.h5")
    write_h5(tmp_path / "ok.h5", random_events(100, 32, 32), META)
    with h5py.File(tmp_path / "ok.h5", "a") as f:
        del f["events/index"]
    with pytest.raises(FormatError, match="incomplete write"):
        open_recording(tmp_path / "ok.h5")


def test_truncated_hdf5(tmp_path):
    write_h5(tmp_path / "t.h5", random_events(100_000, 32, 32), META)
    data = (tmp_path / "t.h5").read_bytes()
    (tmp_path / "t.h5").write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError):
        open_recording(tmp_path / "t.h5").load()


def test_index_layout(tmp_path):
    ev = random_events(1000, 8, 8, rate_hz=1e4, seed=2)
    write_h5(tmp_path / "i.h5", ev, META, index_bin_us=5000)
    with h5py.File(tmp_path / "i.h5") as f:
        idx, origin = f["events/index"][()], int(f.attrs["t_origin"])
    edges = origin + 5000 * np.arange(idx.size)
    np.testing.assert_array_equal(idx, np.searchsorted(ev["t"], edges))
    assert edges[-1] <= ev["t"][-1] < edges[-1] + 5000
    assert hdf5.SCHEMA == 1


def test_writes_with_hdf5_plugin_path_set(tmp_path):
    """HDF5_PLUGIN_PATH pointing at hdf5plugin's own folder (its docs' advice for other tools; evlib sets it
    on import) made HDF5 load a Blosc that fails every write; a fresh process with it set still writes."""
    import os
    import subprocess
    import sys

    import hdf5plugin

    src = tmp_path / "in.h5"
    write_h5(src, random_events(5000, 64, 48, seed=1), RecordingMeta(None, "test", 64, 48))
    env = {**os.environ, "HDF5_PLUGIN_PATH": hdf5plugin.PLUGIN_PATH}
    out = tmp_path / "out.h5"
    cmd = [sys.executable, "-m", "spikelens", "convert", str(src), str(out), "-q"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert_events_equal(open_recording(out).load(), open_recording(src).load())
