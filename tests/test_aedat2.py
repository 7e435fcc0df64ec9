import struct

import numpy as np
import pytest
import tonic.io

from spikelens.datasets import FormatError, open_recording
from spikelens.datasets.events import new_checks
from spikelens.datasets.formats import aedat2
from spikelens.datasets.patterns import random_events

from helpers import assert_checks_match, assert_events_equal

HEADER = b"#!AER-DAT2.0\r\n# This is a raw AE data file - do not edit\r\n# Timestamps tick is 1 us\r\n"


def write(path, records, chip_line=b""):
    body = b"".join(struct.pack(">II", a, t) for a, t in records)
    path.write_bytes(HEADER + chip_line + body)
    return path


def test_dvs128_spec_file(tmp_path):
    # raw a = bits 1-7, b = bits 8-14, bit 0 = 0 means ON (jAER flips polarity)
    recs = [((5 << 8) | (7 << 1) | 0, 10), ((127 << 8) | (0 << 1) | 1, 20), (0x8000 | 3, 25), ((1 << 8) | 1 << 1, 30)]
    ev = open_recording(write(tmp_path / "a.aedat", recs)).load()
    assert ev["t"].tolist() == [10, 20, 30]  # the sync event (bit 15) is dropped
    assert ev["x"].tolist() == [127 - 7, 127 - 0, 127 - 1]
    assert ev["y"].tolist() == [127 - 5, 127 - 127, 127 - 1]
    assert ev["p"].tolist() == [1, 0, 1]


def test_davis346_from_header_and_special_events(tmp_path):
    def addr(x, y, on):
        return (y << 22) | (x << 12) | (on << 11)

    recs = [(addr(0, 0, 1), 1), (0x80000000 | addr(3, 3, 0), 2), (addr(2, 2, 0) | 0x400, 3), (addr(345, 259, 0), 4)]
    path = write(tmp_path / "d.aedat", recs, b"# AEChip: eu.seebetter.ini.chips.davis.Davis346red\r\n")
    rec = open_recording(path)
    assert (rec.meta.width, rec.meta.height, rec.meta.camera) == (346, 260, "DAVIS346")
    ev = rec.load()
    assert ev["t"].tolist() == [1, 4]
    assert ev["x"].tolist() == [345, 0] and ev["y"].tolist() == [259, 0] and ev["p"].tolist() == [1, 0]


def test_timestamp_wrap_is_unwrapped(tmp_path):
    recs = [(2, 2**32 - 10), (4, 2**32 - 1), (6, 5)]
    ev = open_recording(write(tmp_path / "w.aedat", recs)).load()
    assert ev["t"].tolist() == [2**32 - 10, 2**32 - 1, 2**32 + 5]


@pytest.mark.parametrize("chip", ["dvs128", "davis346"])
def test_kernel_matches_reference(chip):
    rng = np.random.default_rng(1)
    raw = rng.integers(0, 256, 8 * 5000, dtype=np.uint8)
    out = aedat2.empty_events(5000)
    checks = new_checks(*aedat2.CHIPS[chip])
    k = aedat2._KERNELS[chip](raw, out, np.zeros(4, np.int64), checks)
    ref = aedat2.decode_reference(raw, chip)
    assert_events_equal(out[:k], ref)
    assert_checks_match(checks, ref)


def test_matches_tonic_dvs128(tmp_path):
    ev = random_events(3000, 128, 128, seed=3)
    path = tmp_path / "r.aedat"
    path.write_bytes(HEADER + aedat2.encode_dvs128(ev))
    ours = open_recording(path).load()
    assert_events_equal(ours, ev)
    # tonic's read_dvs_128 is broken in tonic 1.7 (header unpacking); its AEDAT 2
    # record decoder is independent of ours, so compare the raw fields it returns.
    version, start, _ = tonic.io.read_aedat_header_from_file(str(path))
    raw = tonic.io.get_aer_events_from_file(str(path), version, start)
    a = raw["address"].astype(np.int64)
    np.testing.assert_array_equal(raw["timeStamp"], ours["t"])
    np.testing.assert_array_equal(127 - ((a >> 1) & 0x7F), ours["x"])
    np.testing.assert_array_equal(127 - ((a >> 8) & 0x7F), ours["y"])
    np.testing.assert_array_equal(1 - (a & 1), ours["p"])


def test_matches_tonic_davis346(tmp_path):
    rng = np.random.default_rng(4)
    x, y, p = rng.integers(0, 346, 500), rng.integers(0, 260, 500), rng.integers(0, 2, 500)
    recs = [(int((yy << 22) | (xx << 12) | (pp << 11)), i) for i, (xx, yy, pp) in enumerate(zip(x, y, p, strict=True))]
    path = write(tmp_path / "d.aedat", recs, b"# AEChip: eu.seebetter.ini.chips.davis.Davis346red\r\n")
    ours = open_recording(path).load()
    _, _, theirs = tonic.io.read_davis_346(str(path))
    assert_events_equal(ours, theirs)


def test_real_header_sample(samples):
    rec = open_recording(samples / "sample_aedat_header.aedat")
    assert rec.meta.camera == "DAVIS346" and rec.meta.extra["creation_time_ms"] == 1695355587880
    assert rec.load().size == 0


def test_truncated_record(tmp_path):
    path = write(tmp_path / "t.aedat", [(2, 1), (4, 2)])
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(FormatError, match=r"not a multiple of the 8-byte record"):
        open_recording(path).load()


def test_unknown_chip_is_rejected(tmp_path):
    with pytest.raises(FormatError, match=r"unsupported AEDAT 2\.0 chip"):
        aedat2.Aedat2Recording(write(tmp_path / "x.aedat", []), chip="dvs640")
