"""Hostile pickles in .npy files run nothing: through the reader, the CLI, the dataset class and the GUI."""

import contextlib
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from spikelens.datasets import FormatError, open_recording
from spikelens.datasets.collections import ESAIDataset
from spikelens.datasets.formats.esai import write_esai
from spikelens.datasets.formats.safe_pickle import load_pickled_npy
from spikelens.datasets.simulator.sai import SAIConfig, make_scene, simulate_scene

from helpers import assert_events_equal


class Payload:
    """Pickles as a call of ``fn(*args)``: what an attacker puts in a file."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def sample_dict(events):
    return {
        "events": events,
        "occ_free_aps": np.zeros((4, 4), np.uint8),
        "occ_free_aps_ts": 0.5,
        "fx": 320.0,
        "depth": 1.0,
        "v": 0.177,
        "size": (4, 4),
    }


def write_npy(path, obj):
    with open(path, "wb") as f:
        np.save(f, np.array(obj, dtype=object), allow_pickle=True)
    return path


def exploits(marker):
    """(name, file content) pairs that would create ``marker`` if unpickled normally."""
    touch = f"open({str(marker)!r}, 'w').close()"
    return {
        "os.system": sample_dict(Payload(os.system, f"touch {marker}")),
        "builtins.eval": sample_dict(Payload(eval, touch)),
        "subprocess": sample_dict(Payload(subprocess.check_call, ["touch", str(marker)])),
        "nested in the events array": sample_dict(np.array([1, Payload(os.system, f"touch {marker}")], dtype=object)),
        "top level": Payload(os.system, f"touch {marker}"),
    }


@pytest.mark.parametrize("kind", list(exploits("m")))
def test_exploits_run_nothing_through_the_cli(tmp_path, kind):
    marker = tmp_path / "PWNED"
    evil = write_npy(tmp_path / "evil.npy", exploits(marker)[kind])
    r = subprocess.run(
        [sys.executable, "-m", "spikelens", "info", str(evil)], capture_output=True, text=True, cwd=tmp_path
    )
    assert not marker.exists()
    assert r.returncode == 2 and r.stdout == "" and r.stderr.count("\n") == 1
    assert "evil.npy" in r.stderr and "refused to load" in r.stderr and "Traceback" not in r.stderr


def test_exploits_run_nothing_through_the_reader_and_dataset(tmp_path):
    marker = tmp_path / "PWNED"
    folder = tmp_path / "ESAI" / "test"
    folder.mkdir(parents=True)
    for i, obj in enumerate(exploits(marker).values()):
        write_npy(folder / f"{i:04d}.npy", obj)
        with pytest.raises(FormatError, match=r"refused to load (posix|builtins|subprocess)\."):
            open_recording(folder / f"{i:04d}.npy")
    ds = ESAIDataset(tmp_path / "ESAI", split="test")
    for i in range(len(ds)):
        with pytest.raises(FormatError):
            ds[i]
    assert not marker.exists()


def test_simulated_samples_still_load_bit_for_bit(tmp_path):
    rng = np.random.default_rng(4)
    events, meta = simulate_scene(make_scene("procedural:checker:1", rng, SAIConfig(64, 48, duration_us=200_000)), rng)
    path = tmp_path / "0000.npy"
    write_esai(path, events, meta)
    trusted = np.load(path, allow_pickle=True).item()  # our own file: the plain loader as the reference
    safe = load_pickled_npy(path)
    assert safe.keys() == trusted.keys()
    for k, v in trusted.items():
        np.testing.assert_array_equal(np.asarray(safe[k]), np.asarray(v))
        assert np.asarray(safe[k]).dtype == np.asarray(v).dtype
    with open_recording(path) as rec:
        assert_events_equal(rec.load(), events)
        np.testing.assert_array_equal(rec.meta.extra["occ_aps"], meta.extra["occ_aps"])


plain = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=12,
)


@pytest.mark.slow
@given(obj=plain, protocol=st.integers(2, 5), cut=st.integers(0, 400), flips=st.lists(st.integers(0, 10**6)))
def test_fuzzed_payloads_raise_only_format_error(tmp_path_factory, obj, protocol, cut, flips):
    """Random plain values, pickled, then truncated and bit-flipped: a value or a FormatError, nothing else."""
    path = tmp_path_factory.mktemp("fuzz") / "f.npy"
    write_npy(path, {"v": obj, "a": np.arange(3)})
    data = bytearray(path.read_bytes())
    header = data.index(b"\n") + 1
    body = bytearray(pickle.dumps(np.array({"v": obj, "a": np.arange(3)}, dtype=object), protocol=protocol))
    for f in flips:
        body[f % len(body)] ^= 1 << (f % 8)
    path.write_bytes(bytes(data[:header]) + bytes(body[: len(body) - cut % (len(body) + 1)]))
    with contextlib.suppress(FormatError):  # any other exception fails the test
        load_pickled_npy(path)


@pytest.mark.parametrize(
    ("old", "new", "why"),
    [
        (b"X\x02\x00\x00\x00i8", b"X\x02\x00\x00\x00m8", "kind 'm'"),  # found by fuzzing: segfaulted NumPy
        (b"K?t", b"K\x00t", "flags or size contradict"),  # an object dtype told it holds no objects
    ],
)
def test_states_numpy_would_trust_are_refused_before_it_sees_them(tmp_path, old, new, why):
    """One flipped byte in a sample's pickle: 'i8' read as 'm8' (a datetime state without its unit, which
    NumPy dereferenced as a null pointer: the interpreter died), and an object dtype's flags zeroed (raw
    bytes as object pointers). Both are a FormatError now, and the intact file still loads."""
    path = tmp_path / "s.npy"
    sample = np.array({"a": np.arange(3), "o": np.array([1, "x"], dtype=object)}, dtype=object)
    np.save(path, sample, allow_pickle=True)
    saved = path.read_bytes()
    header = saved[: saved.index(b"\n") + 1]
    raw = header + pickle.dumps(sample, protocol=3)  # as the fuzzing wrote it: short strings as BINUNICODE
    path.write_bytes(raw)
    assert old in raw
    assert load_pickled_npy(path)["o"][1] == "x"
    path.write_bytes(raw.replace(old, new, 1))
    with pytest.raises(FormatError, match=why):
        load_pickled_npy(path)
