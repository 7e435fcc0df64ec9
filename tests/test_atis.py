import numpy as np
import pytest
import tonic.io

from spikelens.datasets import FormatError, open_recording
from spikelens.datasets.events import new_checks
from spikelens.datasets.formats import atis_bin
from spikelens.datasets.patterns import random_events

from helpers import assert_checks_match, assert_events_equal


def record(x, y, p, t):
    return bytes([x, y, (p << 7) | (t >> 16), (t >> 8) & 0xFF, t & 0xFF])


def test_spec_file_with_overflow_marker(tmp_path):
    path = tmp_path / "s.bin"
    path.write_bytes(record(1, 2, 1, 100) + record(33, 33, 0, 2**23 - 1) + record(0, 240, 0, 0) + record(3, 4, 1, 7))
    rec = open_recording(path)
    assert (rec.meta.format, rec.meta.width, rec.meta.height) == ("atis-bin", 34, 34)
    ev = rec.load()
    assert ev["t"].tolist() == [100, 2**23 - 1, 2**23 + 7]  # +2**23 after the marker, marker dropped
    assert ev["x"].tolist() == [1, 33, 3] and ev["y"].tolist() == [2, 33, 4] and ev["p"].tolist() == [1, 0, 1]


def test_kernel_matches_reference():
    raw = np.random.default_rng(0).integers(0, 256, 5 * 4000, dtype=np.uint8)
    raw[5 * 100 + 1] = 240
    out = atis_bin.empty_events(4000)
    checks = new_checks(200, 240)
    k = atis_bin.decode(raw, out, np.zeros(4, np.int64), checks)
    ref = atis_bin.decode_reference(raw)
    assert_events_equal(out[:k], ref)
    assert_checks_match(checks, ref)


def test_real_nmnist_sample_matches_tonic(samples):
    path = samples / "sample_nmnist.bin"
    ours = open_recording(path).load()
    theirs = tonic.io.read_mnist_file(str(path), dtype=np.dtype([("x", int), ("y", int), ("t", int), ("p", int)]))
    assert ours.size == 4325
    assert_events_equal(ours, theirs)


def test_roundtrip_and_tonic_on_written_file(tmp_path):
    ev = random_events(3000, 180, 120, rate_hz=1e4, seed=2)
    path = tmp_path / "image_0001.bin"
    path.write_bytes(atis_bin.encode(ev))
    rec = open_recording(path)
    assert (rec.meta.width, rec.meta.height) == (int(ev["x"].max()) + 1, int(ev["y"].max()) + 1)
    assert_events_equal(rec.load(), ev)
    theirs = tonic.io.read_mnist_file(str(path), dtype=np.dtype([("x", int), ("y", int), ("t", int), ("p", int)]))
    assert_events_equal(rec.load(), theirs)


def test_truncated(tmp_path):
    path = tmp_path / "t.bin"
    path.write_bytes(record(1, 2, 1, 100) + b"\x01\x02")
    with pytest.raises(FormatError, match="multiple of 5"):
        open_recording(path)


def test_annotation_both_layouts(tmp_path):
    box = np.array([[10, 20], [50, 20], [50, 60], [10, 60], [10, 20]])
    contour = np.array([[12, 22], [40, 30], [30, 55]])
    # rows=2, cols=N, column-major: x0 y0 x1 y1 ...
    a = [2, 5, *box.ravel(), 2, 3, *contour.ravel()]
    path = tmp_path / "annotation_0001.bin"
    path.write_bytes(np.array(a, "<i2").tobytes())
    ann = atis_bin.read_ncaltech_annotation(path)
    np.testing.assert_array_equal(ann["box"], box)
    np.testing.assert_array_equal(ann["contour"], contour)
    # rows=N, cols=2, column-major: all x then all y
    b = [5, 2, *box[:, 0], *box[:, 1], 3, 2, *contour[:, 0], *contour[:, 1]]
    path.write_bytes(np.array(b, "<i2").tobytes())
    np.testing.assert_array_equal(atis_bin.read_ncaltech_annotation(path)["box"], box)
    path.write_bytes(np.array(a[:8], "<i2").tobytes())
    with pytest.raises(FormatError, match="bad box block"):
        atis_bin.read_ncaltech_annotation(path)
