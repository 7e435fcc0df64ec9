"""Hostile or broken DV network senders on 127.0.0.1: one line, status 2 (or a clean end), in seconds and
bounded memory. The fuzzer replays a real DV NetworkWriter's bytes with mutations."""

from __future__ import annotations

import random
import socket
import struct
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from conftest import require_samples

from spikelens.datasets import open_recording
from spikelens.datasets.streams.dv_gate import MAX_PACKET

from helpers import DvSender

#: what a hostile peer may cost us (the issue's bar: 500 MB, 5 s)
MAX_RSS_MB = 500
MAX_S = 5.0


class Peer:
    """A TCP server on 127.0.0.1 that sends ``data`` to each client, then holds or closes the connection."""

    def __init__(self, data: bytes, hold_s: float = 0.0) -> None:
        self.data, self.hold_s = data, hold_s
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.sock.settimeout(10)
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            try:
                conn.sendall(self.data)
                time.sleep(self.hold_s)
            except OSError:
                pass

    def close(self) -> None:
        self.sock.close()
        self.thread.join(12)


#: runs a command and appends its process tree's peak resident memory (KB) to stderr
_MEASURE = (
    "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
    "sys.stderr.write(f'@@RSS {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}'); sys.exit(r.returncode)"
)


def record(port: int, tmp_path) -> tuple[subprocess.CompletedProcess, float, float]:
    """``spikelens record`` against the peer: (result without the measurement, seconds, peak RSS in MB)."""
    cmd = ["-m", "spikelens", "record", f"dv-net:127.0.0.1:{port}", "-o", str(tmp_path / "x.h5"), "-q"]
    t0 = time.monotonic()
    r = subprocess.run(
        [sys.executable, "-c", _MEASURE, sys.executable, *cmd],
        capture_output=True,
        text=True,
        timeout=60,
    )
    seconds = time.monotonic() - t0
    stderr, _, rss = r.stderr.rpartition("@@RSS ")
    return subprocess.CompletedProcess(r.args, r.returncode, r.stdout, stderr), seconds, int(rss) / 1024


def assert_one_line(r: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in r.stderr, r.stderr
    assert r.stderr.count("\n") <= 1, r.stderr


@pytest.mark.parametrize(
    ("data", "hold_s", "says"),
    [
        (np.random.default_rng(0).bytes(1 << 20), 2.0, "not a DV event stream"),
        (struct.pack("<i", 2**31 - 1) + b"\0" * 4096, 2.0, "claims 2147483647 bytes"),
        (struct.pack("<i", 700) + b"\0" * 700, 2.0, "not an IOHeader"),
        (b"", 8.0, "no complete DV header"),  # connects, then says nothing
    ],
    ids=["random-bytes", "2GB-header", "not-iohe", "silent"],
)
@pytest.mark.slow
def test_a_hostile_peer_is_one_line_in_seconds_and_bounded_memory(tmp_path, data, hold_s, says):
    peer = Peer(data, hold_s)
    try:
        r, seconds, rss_mb = record(peer.port, tmp_path)
    finally:
        peer.close()
    assert r.returncode == 2 and says in r.stderr, r.stderr
    assert_one_line(r)
    assert r.stderr.startswith("spikelens: error: dv-net:127.0.0.1:")
    assert seconds < MAX_S and rss_mb < MAX_RSS_MB, (seconds, rss_mb)
    assert not (tmp_path / "x.h5").exists()


@pytest.fixture(scope="module")
def real_stream() -> bytes:
    """Every byte a real dv-processing NetworkWriter (in its own process) sends for a real recording."""
    sender = DvSender(require_samples() / "sample.aedat4", speed=20.0)
    try:
        client = socket.create_connection(("127.0.0.1", sender.port))
        client.settimeout(10)
        data = b""
        while chunk := client.recv(1 << 20):
            data += chunk
        client.close()
    finally:
        sender.close()
    return data


def _packet_starts(data: bytes) -> list[int]:
    (size,) = struct.unpack_from("<i", data)
    i, starts = 4 + size, []
    while i + 8 <= len(data):
        starts.append(i)
        i += 8 + struct.unpack_from("<ii", data, i)[1]
    return starts


@pytest.mark.slow
def test_the_real_stream_replayed_is_read_whole(tmp_path, real_stream):
    """The unmutated bytes are a valid stream: the gate passes every event through."""
    peer = Peer(real_stream)
    try:
        r, _, _ = record(peer.port, tmp_path)
    finally:
        peer.close()
    assert r.returncode == 0, r.stderr
    with open_recording(tmp_path / "x.h5") as got:
        assert got.load().size > 1000


def mutations(data: bytes, n: int, seed: int = 0):
    """Bit flips anywhere, truncations, and packet or header sizes replaced by huge or negative ones."""
    rng = random.Random(seed)
    starts = _packet_starts(data)
    for k in range(n):
        b = bytearray(data)
        kind = k % 4
        if kind == 0:
            for _ in range(rng.randint(1, 20)):
                i = rng.randrange(len(b))
                b[i] ^= 1 << rng.randrange(8)
        elif kind == 1:
            b = b[: rng.randrange(1, len(b))]
        elif kind == 2:
            i = rng.choice(starts)
            struct.pack_into("<i", b, i + 4, rng.choice([2**31 - 1, MAX_PACKET + 1, -5, 0, 3]))
        else:
            struct.pack_into("<i", b, 0, rng.choice([2**31 - 1, -1, 0, 10**7]))
        yield kind, bytes(b)


def _fuzz_one(case: tuple[int, str, bytes], tmp_path) -> None:
    i, kind, data = case
    folder = tmp_path / f"m{i}"
    folder.mkdir()
    peer = Peer(data)
    try:
        r, seconds, rss_mb = record(peer.port, folder)
    finally:
        peer.close()
    assert r.returncode in (0, 2), (kind, r.returncode, r.stderr)
    assert_one_line(r)
    assert seconds < 15 and rss_mb < MAX_RSS_MB, (kind, seconds, rss_mb)
    if r.returncode == 0:  # a stream cut short or with harmless damage: what came is a valid file
        with open_recording(folder / "x.h5") as got:
            got.load()


@pytest.mark.slow
def test_fuzzed_real_streams_never_hang_trace_or_grow(tmp_path, real_stream):
    """16 mutations, four recorders at a time (each mostly waits on its peer, so the bounds still hold)."""
    from concurrent.futures import ThreadPoolExecutor

    cases = [(i, kind, data) for i, (kind, data) in enumerate(mutations(real_stream, 16))]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda c: _fuzz_one(c, tmp_path), cases))
