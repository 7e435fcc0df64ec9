"""Broken input of every kind gets a FormatError naming the file; nothing else escapes."""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spikelens.datasets import EVENT_DTYPE, FormatError, open_recording
from spikelens.datasets.formats import aedat3, atis_bin, prophesee
from spikelens.datasets.patterns import random_events

PREFIXES = {
    "x.aedat": b"#!AER-DAT2.0\r\n",
    "y.aedat": b"#!AER-DAT3.1\r\n#!END-HEADER\r\n",
    "z.aedat4": b"#!AER-DAT4.0\r\n",
    "a.h5": b"\x89HDF\r\n\x1a\n",
    "b.npy": b"\x93NUMPY\x01\x00",
    "c.npz": b"PK\x03\x04",
    "d.dat": b"% Version 2\n",
    "e.raw": b"% evt 3.0\n% geometry 64x64\n% end\n",
    "f.raw": b"% evt 2.0\n% geometry 64x64\n% end\n",
    "g.bin": b"",
}


def read_all(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with open_recording(path) as rec:
            ev = rec.load()
            packets = list(rec.packets(max_events=64))
    assert ev.dtype == EVENT_DTYPE
    assert sum(p.size for p in packets) == ev.size
    assert np.all(ev["x"] < rec.meta.width) and np.all(ev["y"] < rec.meta.height)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(sorted(PREFIXES)), tail=st.binary(max_size=600))
def test_fuzz_readers_raise_only_format_error(tmp_path, name, tail):
    path = tmp_path / name
    path.write_bytes(PREFIXES[name] + tail)
    try:
        read_all(path)
    except FormatError as exc:
        assert str(path) in str(exc)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(1, 400), flip=st.integers(0, 10_000))
def test_fuzz_damaged_valid_files(tmp_path, cut, flip):
    ev = random_events(300, 64, 64, rate_hz=1e5, seed=0)
    files = {
        "a.aedat": aedat3.header_text() + aedat3.encode_polarity_packet(ev),
        "b.bin": atis_bin.encode(ev),
        "c.raw": b"% evt 3.0\n% geometry 64x64\n% end\n" + prophesee.encode_evt3(ev).tobytes(),
        "d.dat": prophesee.encode_dat(ev, 64, 64),
    }
    for name, data in files.items():
        data = bytearray(data[: max(1, len(data) - cut)])
        data[flip % len(data)] ^= 0xFF
        path = tmp_path / name
        path.write_bytes(bytes(data))
        try:
            read_all(path)
        except FormatError as exc:
            assert str(path) in str(exc)


def test_empty_file_and_directory_and_missing(tmp_path):
    (tmp_path / "e.aedat").write_bytes(b"")
    with pytest.raises(FormatError, match="file is empty"):
        open_recording(tmp_path / "e.aedat")
    with pytest.raises(FormatError, match="is a directory"):
        open_recording(tmp_path)
    with pytest.raises(FormatError, match="no such file"):
        open_recording(tmp_path / "nope.h5")


def test_wrong_magic_and_garbage_header(tmp_path):
    (tmp_path / "w.aedat").write_bytes(b"#!AER-DAT9.9\r\n" + b"\0" * 16)
    with pytest.raises(FormatError, match="unrecognised file format"):
        open_recording(tmp_path / "w.aedat")
    (tmp_path / "g.aedat").write_bytes(b"#!AER-DAT2.0 and no newline " + b"x" * 100)
    with pytest.raises(FormatError, match="not terminated"):
        open_recording(tmp_path / "g.aedat")


def test_impossible_coordinates(tmp_path):
    ev = random_events(50, 64, 64)
    ev["x"][10] = 64
    (tmp_path / "i.dat").write_bytes(prophesee.encode_dat(ev, 64, 64))
    with pytest.raises(FormatError, match=r"impossible event \(x=64"):
        open_recording(tmp_path / "i.dat").load()
    with pytest.raises(FormatError, match="for a 64x64 sensor"):
        list(open_recording(tmp_path / "i.dat").packets())


def test_unsorted_timestamps_are_sorted_with_a_warning(tmp_path):
    ev = random_events(100, 64, 64)
    ev["t"][[10, 11]] = ev["t"][[11, 10]] + np.array([0, 5])
    (tmp_path / "u.dat").write_bytes(prophesee.encode_dat(ev, 64, 64))
    with pytest.warns(UserWarning, match="not monotonic; events were sorted"):
        got = open_recording(tmp_path / "u.dat").load()
    assert np.all(np.diff(got["t"]) >= 0) and got.size == 100
