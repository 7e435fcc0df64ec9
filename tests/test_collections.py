import numpy as np
import pytest
import tonic.transforms as T
import torch

from spikelens.datasets import DatasetMissingError, FormatError, RecordingMeta
from spikelens.datasets.collections import CIFAR10DVS, DVSGesture, ESAIDataset, NCaltech101
from spikelens.datasets.formats import aedat2, aedat3, atis_bin
from spikelens.datasets.formats.esai import write_esai
from spikelens.datasets.patterns import random_events

from helpers import assert_events_equal

AEDAT2_HEADER = b"#!AER-DAT2.0\r\n# AEChip: ch.unizh.ini.jaer.chip.retina.DVS128\r\n"


@pytest.fixture
def gesture_root(tmp_path):
    base = tmp_path / "DvsGesture"
    base.mkdir()
    trials = {"train": ["user01_fluorescent.aedat", "user02_led.aedat"], "test": ["user24_natural.aedat"]}
    truth = {}
    for split, names in trials.items():
        (base / f"trials_to_{split}.txt").write_text("\n".join(names) + "\n")
        for k, name in enumerate(names):
            ev = random_events(30_000, 128, 128, rate_hz=1e4, seed=k + 10 * len(split))
            (base / name).write_bytes(aedat3.header_text() + aedat3.encode_polarity_packet(ev))
            rows = [(c + 1, 100_000 * c + 1000, 100_000 * c + 60_000) for c in range(11)]
            rows.append((3, 500, 2000))  # classes may repeat and intervals overlap
            csv = "class,startTime_usec,endTime_usec\n" + "".join(f"{c},{a},{b}\n" for c, a, b in rows)
            (base / name.replace(".aedat", "_labels.csv")).write_text(csv)
            truth[name] = (ev, rows)
    return tmp_path, truth


def test_dvs_gesture_segments_and_split(gesture_root):
    root, truth = gesture_root
    train, test = DVSGesture(root), DVSGesture(root, train=False)
    assert (len(train), len(test)) == (24, 12)
    ev, label = train[5]
    full, rows = truth["user01_fluorescent.aedat"]
    c, t0, t1 = rows[5]
    assert label == c - 1
    assert_events_equal(ev, full[(full["t"] >= t0) & (full["t"] < t1)])
    assert train[11][1] == 2 and train.classes[10] == "other_gestures"


def test_dvs_gesture_missing_labels_and_folder(gesture_root, tmp_path_factory):
    root, _ = gesture_root
    (root / "DvsGesture" / "user02_led_labels.csv").unlink()
    with pytest.raises(FormatError, match=r"user02_led_labels\.csv: label CSV is missing"):
        DVSGesture(root)
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(DatasetMissingError, match=r"research\.ibm\.com.*extract them there"):
        DVSGesture(empty)


def test_dvs_gesture_tonic_layout(tmp_path):
    d = tmp_path / "ibmGestureTest" / "user24_led"
    d.mkdir(parents=True)
    a = np.array([[1, 2, 1, 0.5], [3, 4, 0, 1.25]])
    np.save(d / "7.npy", a)
    ds = DVSGesture(tmp_path, train=False)
    ev, label = ds[0]
    assert label == 7 and ev["t"].tolist() == [500, 1250]


def test_dataloader_with_tonic_transform(gesture_root):
    root, _ = gesture_root
    ds = DVSGesture(root, transform=T.ToFrame(sensor_size=DVSGesture.sensor_size, n_time_bins=4))
    frames, labels = next(
        iter(torch.utils.data.DataLoader(ds, batch_size=3, shuffle=True, generator=torch.Generator().manual_seed(0)))
    )
    assert tuple(frames.shape) == (3, 4, 2, 128, 128) and labels.shape == (3,)
    assert frames.sum() > 0


def test_cifar10_dvs_split(tmp_path):
    ev = random_events(200, 128, 128, seed=1)
    for name in CIFAR10DVS.classes:
        (tmp_path / name).mkdir()
        for i in range(20):
            (tmp_path / name / f"cifar10_{name}_{i}.aedat").write_bytes(AEDAT2_HEADER + aedat2.encode_dvs128(ev))
    train, test = CIFAR10DVS(tmp_path), CIFAR10DVS(tmp_path, train=False)
    assert (len(train), len(test)) == (180, 20)
    assert [test[i][1] for i in (0, 1, 2)] == [0, 0, 1]
    assert_events_equal(train[0][0], ev)
    assert {p.name for p, _ in test._samples} >= {"cifar10_airplane_18.aedat", "cifar10_truck_19.aedat"}
    (tmp_path / "truck" / "cifar10_truck_0.aedat").unlink()
    for p in (tmp_path / "truck").iterdir():
        p.unlink()
    with pytest.raises(DatasetMissingError, match="CIFAR10-DVS not found"):
        CIFAR10DVS(tmp_path)


def test_ncaltech101_seeded_disjoint_split(tmp_path):
    base = tmp_path / "Caltech101" / "Caltech101"  # tonic's extra nesting
    ann = tmp_path / "Caltech101_annotations"
    ev = random_events(100, 200, 150, rate_hz=1e4, seed=2)
    for name in ["BACKGROUND_Google", "accordion", "airplanes", "anchor"]:
        (base / name).mkdir(parents=True)
        (ann / name).mkdir(parents=True)
        for i in range(1, 11):
            (base / name / f"image_{i:04d}.bin").write_bytes(atis_bin.encode(ev))
            box = [2, 2, 10, 20, 50, 60]
            (ann / name / f"annotation_{i:04d}.bin").write_bytes(np.array([*box, 2, 1, 30, 40], "<i2").tobytes())
    train, test = NCaltech101(tmp_path, seed=3), NCaltech101(tmp_path, train=False, seed=3)
    assert train.classes == ["accordion", "airplanes", "anchor"]  # no background class
    assert (len(train), len(test)) == (24, 6)
    assert not {p for p, _ in train._samples} & {p for p, _ in test._samples}
    assert [p for p, _ in NCaltech101(tmp_path, seed=3)._samples] == [p for p, _ in train._samples]
    assert [p for p, _ in NCaltech101(tmp_path, seed=4)._samples] != [p for p, _ in train._samples]
    events, label = test[0]
    assert_events_equal(events, ev) and label == 0
    assert test.annotation(0)["box"].tolist() == [[10, 20], [50, 60]]


def test_esai_dataset(tmp_path):
    (tmp_path / "test").mkdir()
    ev = random_events(500, 346, 260, seed=5)
    aps = np.full((260, 346), 7, np.uint8)
    meta = RecordingMeta(
        None, "esai-npy", 346, 260, None, {"fx": 320.0, "depth": 1.0, "v": 0.177, "t_ref_us": 100, "occ_free_aps": aps}
    )
    write_esai(tmp_path / "test" / "0000.npy", ev, meta)
    ds = ESAIDataset(tmp_path, split="test")
    events, target = ds[0]
    assert_events_equal(events, ev)
    assert (target == 7).all() and ds.meta(0).extra["depth"] == 1.0
    with pytest.raises(DatasetMissingError, match="E-SAI"):
        ESAIDataset(tmp_path / "test" / "nothing")
    with pytest.raises(IndexError):
        ds[1]
