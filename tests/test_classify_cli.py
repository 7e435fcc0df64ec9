"""`spikelens classify` and `live` with the bundled gesture model, on gestures simulated with an unseen seed."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from spikelens.cli import main
from spikelens.datasets import SensorSize
from spikelens.datasets.collections.dvs_gesture import CLASSES, read_labels
from spikelens.datasets.detect import open_recording
from spikelens.hybrid_net.registry import load_model
from spikelens.pipelines.classification import classify_path
from spikelens.pipelines.classify_windows import classify_offline

from helpers import DvSender


@pytest.fixture
def gestures(gesture_dataset):
    """Two simulated subjects (one train, one test recording), a seed the bundled model never saw."""
    return gesture_dataset


def test_bundled_model_loads_by_name():
    model = load_model("gesture", "cpu")
    assert model.config.classes == tuple(CLASSES) and model.config.extra.get("trained_on")


@pytest.mark.slow
def test_classify_a_folder_scores_its_test_split(gestures, capsys, tmp_path):
    root, _ = gestures
    png = tmp_path / "confusion.png"
    assert main(["classify", str(root), "--json", "--confusion", str(png)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n"] == 11 and out["classes"] == list(CLASSES)
    assert np.sum(out["confusion"]) == 11 and np.trace(out["confusion"]) == round(out["accuracy"] * 11)
    assert out["accuracy"] >= 0.8, out["confusion"]
    layers = out["spikes"]["layers"]
    assert len(layers) >= 3 and all(0 < layer["rate"] < 1 for layer in layers)
    assert out["spikes"]["energy"]["snn_uj"] > 0 and png.stat().st_size > 1000


@pytest.mark.slow
def test_classify_a_labelled_recording_and_a_bare_one(gestures, capsys, tmp_path):
    _, rec = gestures
    assert main(["classify", str(rec), "--json"]) == 0
    labelled = json.loads(capsys.readouterr().out)
    assert labelled["n"] == 11 and labelled["accuracy"] >= 0.8
    segs = read_labels(rec.with_name(f"{rec.stem}_labels.csv"))
    with open_recording(rec) as r:
        ev = r.load()
    c, t0, t1 = segs[0]
    bare = tmp_path / "one_gesture.h5"
    from spikelens.datasets.formats.hdf5 import write_h5
    from spikelens.datasets.recording import RecordingMeta

    lo, hi = np.searchsorted(ev["t"], [t0, t1])
    write_h5(bare, ev[lo:hi], RecordingMeta(None, "test", 128, 128, None))
    result = classify_path(bare, "gesture", "cpu")
    assert not result.labelled and result.timeline is None and result.score is None
    out = result.as_json()
    assert set(out) == {"label", "class", "probabilities", "net_ms", "spikes"}
    assert out["spikes"]["energy"]["ann_over_snn"] > 0
    assert out["label"] == CLASSES[out["class"]] and sum(out["probabilities"].values()) == pytest.approx(1, abs=1e-5)
    row = labelled["segments"][0]
    assert row["t0"] == t0 and row["label"] == c
    assert out["class"] == row["predicted"]  # the same events, the same windows


def _live(source: str, *extra: str) -> tuple[list[dict], dict, subprocess.CompletedProcess]:
    r = subprocess.run(
        [sys.executable, "-m", "spikelens", "live", source, "--json", "--device", "cpu", *extra],
        capture_output=True,
        text=True,
        timeout=120,
    )
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    end = json.loads(r.stderr.strip().splitlines()[-1]) if r.stderr.strip() else {}
    return rows, end, r


@pytest.mark.slow
def test_live_over_a_dv_network_stream_classifies_each_gesture(gestures):
    """A real dv-processing NetworkWriter on 127.0.0.1 serves the recording at 4x; every event arrives and
    the decisions inside each gesture mostly name it."""
    _, rec = gestures
    sender = DvSender(rec, speed=4.0)
    try:
        rows, end, r = _live(sender.source)
        n_sent = sender.sent()
    finally:
        sender.close()
    assert r.returncode == 0, r.stderr
    assert end["events"] == n_sent and "closed the connection" in end["end"]
    assert rows and set(rows[0]) >= {"t_us", "label", "class", "probability", "latency_ms"}
    right = 0
    segs = read_labels(rec.with_name(f"{rec.stem}_labels.csv"))
    for c, t0, t1 in segs:
        inside = [row["class"] for row in rows if t0 <= row["t_us"] < t1]
        right += bool(inside) and Counter(inside).most_common(1)[0][0] == c
    assert right >= 0.8 * len(segs), f"{right}/{len(segs)}"
    assert sum(row["skipped"] for row in rows) <= end["skipped"]  # the total adds windows skipped after the last


@pytest.mark.slow
def test_live_window_decisions_equal_offline_ones(gestures):
    """The same recording read as a file: each decision's window class is the offline window's."""
    _, rec = gestures
    rows, end, r = _live(str(rec), "--smooth", "1")
    assert r.returncode == 0, r.stderr
    with open_recording(rec) as f:
        ev, sensor = f.load(), SensorSize.of(f.meta)
    ends, probs = classify_offline(load_model("gesture", "cpu"), ev, sensor, 100_000)
    assert [row["t_us"] for row in rows] == ends.tolist() and end["skipped"] == 0
    assert [row["window_class"] for row in rows] == probs.argmax(axis=1).tolist()
    assert [row["class"] for row in rows] == probs.argmax(axis=1).tolist()  # smooth 1: no smoothing


@pytest.mark.slow
def test_live_reports_a_sender_cut_mid_stream(gestures):
    _, rec = gestures
    sender = DvSender(rec, speed=4.0, cut_after=150)
    try:
        rows, end, r = _live(sender.source)
        n_sent = sender.sent()
    finally:
        sender.close()
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert end["events"] == n_sent > 0 and f"after {n_sent} events" in end["end"]
    assert rows  # 1.5 s of stream: decisions came before the cut


def test_live_refuses_a_bad_window_and_an_unreachable_source(capsys):
    from helpers import free_port

    assert main(["live", "sim:gesture", "--window-ms", "100.001"]) == 2
    assert "split into 8" in capsys.readouterr().err
    assert main(["live", f"dv-net:127.0.0.1:{free_port()}"]) == 2
    assert "connection refused" in capsys.readouterr().err


@pytest.mark.slow
def test_a_long_bare_recording_is_a_timeline(gestures, capsys):
    """Eleven gestures without their labels: one decision per hop, merged into runs that tile the
    recording (text, JSON and CSV), and the runs mostly name the gestures they cover."""
    _, rec = gestures
    bare = rec.parent / "bare" / rec.name
    bare.parent.mkdir(exist_ok=True)
    bare.write_bytes(rec.read_bytes())  # no _labels.csv beside this copy
    assert main(["classify", str(bare), "--json"]) == 0
    tl = json.loads(capsys.readouterr().out)["timeline"]
    runs, windows = tl["runs"], tl["windows"]
    assert sum(r["windows"] for r in runs) == len(windows) > 50
    assert all(a["t1_us"] == b["t0_us"] for a, b in itertools.pairwise(runs))  # the runs tile the recording
    assert all(0 < r["confidence"] <= 1 and r["label"] == CLASSES[r["class"]] for r in runs)
    right = 0
    segs = read_labels(rec.with_name(f"{rec.stem}_labels.csv"))
    for c, t0, t1 in segs:
        inside = [w["class"] for w in windows if t0 <= w["t_us"] < t1]
        right += bool(inside) and Counter(inside).most_common(1)[0][0] == c
    assert right >= 0.8 * len(segs)
    assert main(["classify", str(bare)]) == 0
    text = capsys.readouterr().out.splitlines()
    assert len(text) == len(runs) + 3 and text[len(runs)].startswith(f"{len(runs)} runs over {len(windows)} decisions")
    assert text[-2].startswith("spike rates") and "ANN / SNN" in text[-1]  # then the energy of its windows
    assert main(["classify", str(bare), "--csv"]) == 0
    csv_rows = capsys.readouterr().out.splitlines()
    assert csv_rows[0] == "t0_us,t1_us,label,class,confidence,windows" and len(csv_rows) == len(runs) + 1


def test_a_recording_from_another_sensor_is_refused_unless_forced(tmp_path, capsys):
    """A 346 x 260 SAI scene is no DVS128 gesture: one line, status 2; --force answers anyway."""
    from spikelens.datasets.formats.hdf5 import write_h5
    from spikelens.datasets.patterns import random_events
    from spikelens.datasets.recording import RecordingMeta

    path = tmp_path / "sai.h5"
    write_h5(path, random_events(20_000, 346, 260, seed=1), RecordingMeta(None, "test", 346, 260, None))
    assert main(["classify", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "a 346x260 recording, but this model was trained on 128x128" in err
    assert "--force" in err
    assert main(["classify", str(path), "--force", "--json"]) == 0
    assert "label" in json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_live_on_a_file_reports_throughput_not_latency(gestures):
    _, rec = gestures
    rows, end, r = _live(str(rec))
    assert r.returncode == 0 and rows
    assert all(row["latency_ms"] is None for row in rows)  # read as fast as it goes: no latency to speak of
    assert end["events_per_s"] > 0 and end["decisions_per_s"] > 0 and end["decisions"] == len(rows)


@pytest.mark.slow
@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_live_stopped_by_a_signal_prints_its_summary(sig):
    """Ctrl-C (SIGINT) or SIGTERM: the summary line, then status 130. The child gets SIGINT's default
    disposition, as in a terminal: a test run started as a background job (nohup, &) would otherwise pass
    it on ignored, and no Ctrl-C could reach it."""
    import signal
    import time

    p = subprocess.Popen(
        [sys.executable, "-m", "spikelens", "live", "sim:gesture", "--device", "cpu"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert p.stdout.readline()  # the first decision: it is running
        time.sleep(0.3)
        p.send_signal(getattr(signal, sig))
        _, err = p.communicate(timeout=30)
    finally:
        p.kill()
    assert p.returncode == 130, err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("ended: stopped by Ctrl-C;")


@pytest.mark.slow
def test_a_cancelled_classify_stops_before_the_network(gestures, tmp_path, monkeypatch):
    """The GUI's Score file runs classify_path as a job: Cancel stops it, labelled or bare."""
    from spikelens.datasets.formats.hdf5 import write_h5
    from spikelens.pipelines import classification
    from spikelens.pipelines.jobs import Cancelled, Job

    _, rec = gestures
    with open_recording(rec) as r:
        ev, meta = r.load(), r.meta
    bare = tmp_path / "bare.h5"
    write_h5(bare, ev[:50_000], meta)

    def no_network(*_a):
        raise AssertionError("the network ran")

    monkeypatch.setattr(classification, "classify_segment", no_network)
    for path in (rec, bare):
        job = Job()
        job.cancel()
        with pytest.raises(Cancelled):
            classify_path(path, "gesture", "cpu", job)
