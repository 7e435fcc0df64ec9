import aedat
import dv_processing as dv
import numpy as np

from spikelens.datasets import open_recording
from spikelens.datasets.patterns import random_events

from helpers import assert_events_equal


def test_real_dvxplorer_sample_against_dv_processing(samples):
    path = samples / "sample.aedat4"
    rec = open_recording(path)
    assert (rec.meta.format, rec.meta.width, rec.meta.height) == ("aedat4", 320, 240)
    assert rec.meta.camera == "DVXplorer_DXB00010"
    ours = rec.load()
    reader = dv.io.MonoCameraRecording(str(path))
    store = dv.EventStore()
    while (batch := reader.getNextEventBatch()) is not None:
        store.add(batch)
    theirs = store.numpy()
    assert ours.size == 111954
    assert_events_equal(ours, {"t": theirs["timestamp"], "x": theirs["x"], "y": theirs["y"], "p": theirs["polarity"]})


def test_file_written_by_dv_processing(tmp_path):
    ev = random_events(20000, 346, 260, seed=8)
    ev["t"] += 1_700_000_000_000_000
    path = tmp_path / "w.aedat4"
    cfg = dv.io.MonoCameraWriter.EventOnlyConfig("DAVIS346_test", (346, 260))
    writer = dv.io.MonoCameraWriter(str(path), cfg)
    store = dv.EventStore()
    for e in ev[:20000]:
        store.push_back(int(e["t"]), int(e["x"]), int(e["y"]), bool(e["p"]))
    writer.writeEvents(store)
    del writer  # flushes and writes the file table
    rec = open_recording(path)
    assert (rec.meta.width, rec.meta.height, rec.meta.camera) == (346, 260, "DAVIS346_test")
    assert_events_equal(rec.load(), ev)
    assert_events_equal(np.concatenate(list(rec.packets(max_events=1000))), ev)
    decoded = np.concatenate([p["events"] for p in aedat.Decoder(str(path)) if "events" in p])
    assert_events_equal(rec.load(), {"t": decoded["t"], "x": decoded["x"], "y": decoded["y"], "p": decoded["on"]})
