"""The hybrid classifier and its pipelines: model, statistics, training, offline and streaming windows."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from spikelens.datasets import SensorSize
from spikelens.datasets.detect import open_recording
from spikelens.datasets.events import make_events
from spikelens.hybrid_net.classify import ClassifierConfig, HybridClassifier
from spikelens.hybrid_net.energy import E_AC_PJ, E_MAC_PJ, energy
from spikelens.hybrid_net.registry import load_model, save_model
from spikelens.pipelines import classification as cl
from spikelens.pipelines.classify_windows import StreamClassifier, bin_events, classify_offline, window_ends

TINY = ClassifierConfig(classes=("left", "right"), size=16, steps=4, window_us=400_000, channels=(4, 8), head=16)


def bar_segment(direction: int, rng: np.random.Generator, t0: int = 0, sensor: int = 32) -> cl.Segment:
    """A vertical edge sweeping the sensor left to right (0) or right to left (1) in about 0.6 s, with noise."""
    speed = rng.uniform(40, 70)  # px/s
    ts, xs, ys, ps = [], [], [], []
    for col in range(sensor):
        x = col if direction == 0 else sensor - 1 - col
        t = t0 + int(col / speed * 1e6)
        for y in range(rng.integers(0, 8), sensor, 2):
            ts.append(t + int(rng.integers(0, 3000)))
            xs.append(x)
            ys.append(y)
            ps.append(1)
    n = 200
    ts += list(t0 + rng.integers(0, int(sensor / speed * 1e6), n))
    xs += list(rng.integers(0, sensor, n))
    ys += list(rng.integers(0, sensor, n))
    ps += list(rng.integers(0, 2, n))
    ev = make_events(ts, xs, ys, ps)
    ev = ev[np.argsort(ev["t"], kind="stable")]
    return cl.Segment(ev, direction, int(ev["t"][0]), int(ev["t"][-1]) + 1)


@pytest.mark.parametrize(("neuron", "attention"), [("lif", "none"), ("plif", "tcja"), ("plif", "ma")])
def test_classifier_shapes_gradients_and_checkpoint(neuron, attention, tmp_path):
    cfg = dataclasses.replace(TINY, neuron=neuron, attention=attention)
    torch.manual_seed(0)
    m = HybridClassifier(cfg)
    x = torch.poisson(torch.full((4, 3, 2, 16, 16), 0.8))
    logits = m(x)
    assert logits.shape == (3, 2)
    logits.sum().backward()
    assert all(p.grad is not None for p in m.parameters() if p.requires_grad)
    save_model(m.eval(), tmp_path / "c.pt")
    back = load_model(tmp_path / "c.pt", "cpu")
    assert back.config == cfg
    torch.testing.assert_close(back(x), m(x))
    with pytest.raises(ValueError, match="T = 4"):
        m(torch.zeros(5, 1, 2, 16, 16))


def test_spike_statistics_and_energy_by_hand():
    torch.manual_seed(1)
    m = HybridClassifier(dataclasses.replace(TINY, threshold=0.2)).eval()
    x = torch.poisson(torch.full((4, 2, 2, 16, 16), 1.5))
    with torch.no_grad():
        logits, stats = m(x, stats=True)
        s1 = m.stages[0](torch.log1p(x))
    torch.testing.assert_close(logits, m(x))
    first, _ = stats["layers"]
    assert first["neurons"] == 4 * 8 * 8
    assert first["spikes"] == pytest.approx(float(s1.sum()) / 2) and first["spikes"] > 0
    assert first["rate"] == pytest.approx(float(s1.mean()))
    op1, op2, head = stats["ops"]
    assert op1["macs_ann"] == 16 * 16 * 2 * 4 * 9 and op2["macs_ann"] == 8 * 8 * 4 * 8 * 9
    assert op1["macs_snn"] == op1["macs_ann"] * 4 and op1["synops"] == 0  # counts in: it multiplies every step
    # each stage-1 spike reaches 8 channels x the 3 x 3 positions around it, fewer on the 8 x 8 map's border
    reach = np.array([len([o for o in (i - 1, i, i + 1) if 0 <= o < 8]) for i in range(8)])
    expect = float((s1.sum(dim=(0, 2)).mean(dim=0).numpy() * np.outer(reach, reach)).sum()) * 8
    assert op2["synops"] == pytest.approx(expect)
    step = (8 * 4 * 4) * 16 * 3  # the temporal conv: C x POOLED^2 in, head out, kernel 3
    assert head["macs_snn"] == step * 4 + 2 * 16 and head["macs_ann"] == step + 2 * 16
    e = energy(stats)
    macs_snn = op1["macs_snn"] + head["macs_snn"]
    assert e["snn_uj"] == pytest.approx((macs_snn * E_MAC_PJ + op2["synops"] * E_AC_PJ) * 1e-6)
    assert e["ann_uj"] == pytest.approx((op1["macs_ann"] + op2["macs_ann"] + head["macs_ann"]) * E_MAC_PJ * 1e-6)
    assert (E_MAC_PJ, E_AC_PJ) == (4.6, 0.9)


def test_bin_events_places_each_event_by_hand():
    ev = make_events([0, 99, 100, 250, 399, 400], [0, 127, 64, 10, 3, 5], [0, 127, 32, 20, 3, 5], [1, 0, 1, 0, 1, 1])
    f = bin_events(ev, 0, 100, 4, SensorSize(128, 128), 32)
    assert f.shape == (4, 2, 32, 32) and f.sum() == 5  # t = 400 is past the last bin
    assert f[0, 0, 0, 0] == 1 and f[0, 1, 31, 31] == 1  # ON is channel 0; 127 // 4 = 31
    assert f[1, 0, 8, 16] == 1 and f[2, 1, 5, 2] == 1 and f[3, 0, 0, 0] == 1


def test_a_tiny_training_run_lowers_the_loss_and_learns_direction(tmp_path):
    """Left vs right differ only in time order: the spiking front end plus the temporal head must see it."""
    rng = np.random.default_rng(0)
    train = [bar_segment(i % 2, rng) for i in range(48)]
    test = [bar_segment(i % 2, rng) for i in range(16)]
    model = cl.build_model("hybrid", 0, **dataclasses.asdict(TINY))
    cfg = cl.TrainConfig(epochs=6, batch=16, windows_per_segment=2, lr=1e-2)
    data = cl.SegmentSet(tuple(train), SensorSize(32, 32))
    history = cl.train(model, data, cfg, tmp_path / "bar.pt", "cpu")
    assert history[-1] < 0.8 * history[0]
    report = cl.evaluate(tmp_path / "bar.pt", cl.SegmentSet(tuple(test), SensorSize(32, 32)), device="cpu")
    assert report["accuracy"] >= 0.8, report["confusion"]
    assert report["n"] == 16 and np.sum(report["confusion"]) == 16
    assert [layer["name"] for layer in report["spikes"]["layers"]] == ["stage1", "stage2"]


def test_an_interrupted_training_resumes_to_the_same_weights(tmp_path):
    from spikelens.pipelines.jobs import Cancelled, Job

    rng = np.random.default_rng(1)
    segs = cl.SegmentSet(tuple(bar_segment(i % 2, rng) for i in range(8)), SensorSize(32, 32))
    cfg = cl.TrainConfig(epochs=3, batch=4, windows_per_segment=1)

    def fresh():
        return cl.build_model("hybrid", 0, **dataclasses.asdict(TINY))

    cl.train(fresh(), segs, cfg, tmp_path / "whole.pt", "cpu")
    job = Job(lambda done, total, msg: job.cancel() if done > 2 else None)
    with pytest.raises(Cancelled):
        cl.train(fresh(), segs, cfg, tmp_path / "broken.pt", "cpu", job)
    cl.train(fresh(), segs, cfg, tmp_path / "broken.pt", "cpu", resume=True)
    a, b = (load_model(tmp_path / n, "cpu").state_dict() for n in ("whole.pt", "broken.pt"))
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def real_events():
    from conftest import require_samples

    with open_recording(require_samples() / "sample.aedat4") as rec:  # DVXplorer, Unix-epoch microseconds
        return rec.load(), SensorSize.of(rec.meta)  # 0.59 s, 111,954 events


@pytest.mark.parametrize("hop_us", [25_000, 15_000])
def test_streaming_decisions_equal_offline_windows(real_events, hop_us):
    """Packets of random sizes through the stream classifier give the offline windows' probabilities."""
    events, sensor = real_events
    torch.manual_seed(2)
    model = HybridClassifier(dataclasses.replace(TINY, classes=tuple("abcde"), size=32, window_us=100_000)).eval()
    ends, offline = classify_offline(model, events, sensor, hop_us)
    assert ends.size >= 15 and ends[0] > 1_000_000_000_000  # real camera time
    sc = StreamClassifier(model, sensor, hop_us, smooth=1)
    rng = np.random.default_rng(3)
    got = []
    lo = 0
    while lo < events.size:
        hi = lo + int(rng.integers(1, 3000))
        got += sc.feed(events[lo:hi])
        lo = hi
    assert [d.t_us for d in got] == ends.tolist()
    np.testing.assert_allclose(np.stack([d.probabilities for d in got]), offline, atol=1e-5)
    assert [d.window_class for d in got] == offline.argmax(axis=1).tolist()
    assert sc.skipped == 0
    lo, hi = np.searchsorted(events["t"], [ends[2] - 100_000, ends[2]])
    assert got[2].events == hi - lo


def test_a_stream_that_falls_behind_skips_windows_and_says_so(real_events):
    events, sensor = real_events
    model = HybridClassifier(dataclasses.replace(TINY, size=32, window_us=100_000)).eval()
    sc = StreamClassifier(model, sensor, 20_000, smooth=2, speed=1.0)
    t0 = int(events["t"][0])
    decisions = []
    for lo in range(0, events.size, 500):
        pkt = events[lo : lo + 500]
        lag_s = 0.1 if 0.25e6 < int(pkt["t"][-1]) - t0 < 0.4e6 else 0.0  # 0.1 s behind in the middle
        decisions += sc.feed(pkt, arrived=(int(pkt["t"][-1]) - t0) / 1e6 + lag_s)
    span = int(events["t"][-1]) - t0
    assert sc.skipped >= 3 and sc.decided + sc.skipped == len(window_ends(t0, t0 + span, model.config, 20_000))
    after = [d for d in decisions if d.skipped]
    assert len(after) == 1 and after[0].skipped == sc.skipped
    np.testing.assert_allclose(decisions[-1].smoothed, np.mean([d.probabilities for d in decisions[-2:]], axis=0))


def _ddp_rank(rank: int, port: int, out_dir: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        rng = np.random.default_rng(5)
        segs = [bar_segment(i % 2, rng) for i in range(8)]
        model = HybridClassifier(TINY)  # unseeded: DDP starts every rank from rank 0's weights
        cfg = cl.TrainConfig(epochs=2, batch=2, windows_per_segment=1)
        cl.train(model, cl.SegmentSet(tuple(segs), SensorSize(32, 32)), cfg, f"{out_dir}/d.pt", "cpu")
        torch.save({k: v.cpu() for k, v in model.state_dict().items()}, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_processes_train_one_classifier(tmp_path):
    from helpers import free_port

    torch.multiprocessing.spawn(_ddp_rank, args=(free_port(), str(tmp_path)), nprocs=2, join=True)
    a, b = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert torch.equal(load_model(tmp_path / "d.pt", "cpu").state_dict()["fc.weight"], a["fc.weight"])
