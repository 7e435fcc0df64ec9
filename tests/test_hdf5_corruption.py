"""Damaged SpikeLens HDF5 files: every variant loads or raises FormatError, none hangs or leaks an h5py error.

Our files are written with libver="latest": version-2 object headers carry
checksums, so corrupted metadata is detected instead of looped on (an
earlier layout made h5py spin forever on one bit-flip variant). The
variants are read in a child process with a time limit, so a hang fails the
test instead of stalling the suite.
"""

import json
import subprocess
import sys

import numpy as np
import pytest

from spikelens.pipelines.convert import convert

READER = """
import json, sys
from spikelens.datasets import FormatError, open_recording
out = {}
for path in sys.argv[1:]:
    try:
        with open_recording(path) as rec:
            rec.load()
            rec.window(0, 2**62)
        out[path] = "ok"
    except FormatError:
        out[path] = "FormatError"
    except Exception as exc:
        out[path] = f"{type(exc).__name__}: {exc}"
print(json.dumps(out))
"""


def variants(data: bytes, rng: np.random.Generator, n: int) -> list[bytes]:
    """Bit flips, zeroed runs, splices and truncations, most of them in the metadata-heavy head and tail."""
    out = []
    size = len(data)
    for k in range(n):
        b = bytearray(data)
        kind = k % 4
        where = int(rng.integers(0, 4096)) if rng.random() < 0.6 else int(rng.integers(0, size))
        where = min(where, size - 1)
        if kind == 0:
            b[where] ^= 1 << int(rng.integers(8))
        elif kind == 1:
            b[where : where + int(rng.integers(1, 64))] = bytes(min(64, size - where))[: len(b[where : where + 64])]
        elif kind == 2:
            src = int(rng.integers(0, size - 64))
            b[where : where + 32] = data[src : src + 32]
        else:
            b = b[: int(rng.integers(1, size))]
        out.append(bytes(b[:size]) if kind != 3 else bytes(b))
    return out


def test_written_files_carry_checksummed_headers(tmp_path, samples):
    out = tmp_path / "real.h5"
    convert(samples / "sample.aedat4", out)
    data = out.read_bytes()
    assert data[:8] == b"\x89HDF\r\n\x1a\n" and data[8] >= 2  # superblock v2+ (checksummed)
    assert b"OHDR" in data  # version-2 object headers (each with a checksum)


def test_damaged_files_fail_cleanly(tmp_path, samples):
    clean = tmp_path / "real.h5"
    convert(samples / "sample.aedat4", clean)
    data = clean.read_bytes()
    paths = []
    for i, v in enumerate(variants(data, np.random.default_rng(0), 150)):
        p = tmp_path / f"v{i:03d}.h5"
        p.write_bytes(v)
        paths.append(str(p))
    try:
        r = subprocess.run(
            [sys.executable, "-c", READER, *paths], capture_output=True, text=True, timeout=240, check=True
        )
    except subprocess.TimeoutExpired:
        pytest.fail("reading the damaged variants hung")
    results = json.loads(r.stdout)
    bad = {p: v for p, v in results.items() if v not in ("ok", "FormatError")}
    assert not bad
    assert list(results.values()).count("FormatError") > 50
