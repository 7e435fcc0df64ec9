"""A bounded gate in front of dv-processing's NetworkReader: we read the sender, it reads only checked bytes.

dv-processing trusts the sizes a peer sends: random bytes, or a first length
prefix of 2 GB, make it allocate gigabytes before it fails. So we connect to
the sender ourselves, check DV's framing with bounded buffers, and serve the
checked bytes on a loopback port that the NetworkReader connects to.

DV's network framing (AEDAT 4 over TCP, as a dv-processing NetworkWriter
sends it; checked on the wire):
- int32 (little-endian) header length L, then the IOHeader: a size-prefixed
  flatbuffer of L bytes whose file identifier, at bytes 4-8, is ``IOHE``.
  A real one is the stream description, well under :data:`MAX_HEADER`.
- Then packets: int32 stream id, int32 size, and ``size`` bytes of payload
  (an event packet; uncompressed, itself a size-prefixed flatbuffer whose
  prefix is ``size - 4``).

Anything else closes both ends and leaves one line in :meth:`DvGate.refusal`.
The gate runs in a small process of its own (stdlib only, started with
``python -I``): dv-processing's NetworkReader holds the GIL while it reads the
header, so a thread of ours could not serve it.
Memory stays bounded by one packet (:data:`MAX_PACKET`): a slow consumer
slows the sender down (TCP back-pressure), it never queues without limit.
"""

from __future__ import annotations

import socket
import struct
import time

#: the largest IOHeader we accept (a real one is a few kB)
MAX_HEADER = 64 * 1024
#: the largest packet we accept (a 10 ms packet at 30 M ev/s is about 5 MB)
MAX_PACKET = 16 * 1024 * 1024
#: a real sender writes its header on connect
HEADER_TIMEOUT_S = 3.0
CONNECT_TIMEOUT_S = 5.0
#: how long a read may block before the gate checks the header's deadline
POLL_S = 0.2
#: after the sender's clean end, how long the reader's side stays open so it can parse what came
LINGER_S = 0.5


class GateError(Exception):
    """The peer is not a DV event stream (or went silent before its header)."""


class Cut(Exception):
    """The sender stopped inside a block: a sender that dies mid-stream, not a malformed one."""


def _read_exact(sock: socket.socket, n: int, deadline: float | None = None) -> bytes | None:
    """``n`` bytes, or None at a clean end of stream; GateError past ``deadline``, Cut on a short read."""
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        if deadline is not None and time.monotonic() > deadline:
            raise GateError(f"no complete DV header within {HEADER_TIMEOUT_S:g} s")
        try:
            k = sock.recv_into(view[got:], n - got)
        except TimeoutError:
            continue
        if k == 0:
            if got == 0:
                return None
            raise Cut(f"the sender stopped inside a {n}-byte block ({got} bytes came)")
        got += k
    return bytes(buf)


def read_header(sock: socket.socket) -> bytes:
    """The length prefix and IOHeader, checked within HEADER_TIMEOUT_S: GateError names what was wrong."""
    try:
        return _header(sock, time.monotonic() + HEADER_TIMEOUT_S)
    except Cut as exc:
        raise GateError(f"not a DV event stream: {exc} of its header") from None


def _header(sock: socket.socket, deadline: float) -> bytes:
    prefix = _read_exact(sock, 4, deadline)
    if prefix is None:
        raise GateError("the sender closed before sending a DV header")
    (size,) = struct.unpack("<i", prefix)
    if not 8 <= size <= MAX_HEADER:
        raise GateError(f"not a DV event stream: its header claims {size} bytes (a real one is a few kB)")
    body = _read_exact(sock, size, deadline)
    if body is None:
        raise GateError("the sender closed inside its DV header")
    if body[4:8] != b"IOHE":
        raise GateError(f"not a DV event stream: the header is not an IOHeader (identifier {body[4:8]!r})")
    return prefix + body


def check_packet(stream_id: int, size: int) -> None:
    if not 0 <= stream_id < 1 << 16:
        raise GateError(f"not a DV event stream: a packet for stream {stream_id}")
    if not 8 <= size <= MAX_PACKET:
        raise GateError(f"not a DV event stream: a packet claims {size} bytes (at most {MAX_PACKET} accepted)")


#: bytes of one event in an EventPacket's vector (int64 t, int16 x, int16 y, bool polarity, padding)
EVENT_BYTES = 16


def check_payload(payload: bytes) -> None:
    """An uncompressed event packet must be a whole flatbuffer: its size prefix, identifier ``EVTS``, the
    table's vtable, and the event vector (n x 16 bytes) inside the packet. A damaged length would make
    dv-processing allocate n events, however many the bytes say. (A compressed packet, whose first word
    is not the size prefix, is passed as it is: checking it would mean decompressing it.)"""
    if len(payload) < 8 or struct.unpack_from("<i", payload)[0] != len(payload) - 4:
        return
    buf = memoryview(payload)[4:]
    n_buf = len(buf)
    try:
        (table,) = struct.unpack_from("<I", buf)
        if bytes(buf[4:8]) != b"EVTS":
            raise GateError(f"not an event packet (identifier {bytes(buf[4:8])!r})")
        (back,) = struct.unpack_from("<i", buf, table)
        vtable = table - back
        vt_size, _ = struct.unpack_from("<HH", buf, vtable)
        if vtable < 0 or vt_size < 6 or vtable + vt_size > n_buf:
            raise GateError("a damaged event packet (its vtable)")
        (field,) = struct.unpack_from("<H", buf, vtable + 4)
        if field == 0:
            return  # no events
        (rel,) = struct.unpack_from("<I", buf, table + field)
        vector = table + field + rel
        (n,) = struct.unpack_from("<I", buf, vector)
    except struct.error:
        raise GateError("a damaged event packet (an offset points outside it)") from None
    if vector + 4 + n * EVENT_BYTES > n_buf:
        raise GateError(f"a damaged event packet: {n} events claimed in {n_buf} bytes")


def _serve(host: str, port: int, out) -> int:
    """The gate's own process: connect, check the header, announce the local port, forward checked packets.

    One line on ``out`` says how it went: ``READY <port>``, ``REFUSED <why>`` or ``ERROR <why>`` (also
    when a packet is refused later). Exit status 0 when the sender simply went away.
    """
    try:
        up = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S)
    except ConnectionRefusedError:
        print("REFUSED connection refused", file=out, flush=True)
        return 2
    except OSError as exc:
        print(f"REFUSED {exc}", file=out, flush=True)
        return 2
    down = None
    try:
        up.settimeout(POLL_S)
        header = read_header(up)
        with socket.create_server(("127.0.0.1", 0)) as listener:
            print(f"READY {listener.getsockname()[1]}", file=out, flush=True)
            listener.settimeout(CONNECT_TIMEOUT_S)
            down, _ = listener.accept()
        down.sendall(header)
        while True:
            try:
                head = _read_exact(up, 8)
                if head is not None:
                    stream_id, size = struct.unpack("<ii", head)
                    check_packet(stream_id, size)
                    payload = _read_exact(up, size)
            except Cut:
                head = None  # a sender that dies mid-packet ends the stream like one that closes
            if head is None or payload is None:
                time.sleep(LINGER_S)  # dv-processing drops what it has not parsed once its socket closes
                return 0
            check_payload(payload)
            down.sendall(head + payload)
    except GateError as exc:
        print(f"ERROR {exc}", file=out, flush=True)
        return 2
    except OSError:
        return 0  # the reader went away, or the sender was cut: the stream just ends
    finally:
        for s in (down, up):
            if s is not None:
                s.close()


class DvGate:
    """The gate for ``host:port`` in a process of its own (dv-processing's NetworkReader holds the GIL
    while it reads a header, so a gate thread in this process could never answer it).

    On return the header has been checked and ``address`` is where to point dv-processing; otherwise
    GateError (not a DV stream) or ConnectionRefusedError / OSError. :meth:`refusal` tells a later one.
    """

    def __init__(self, host: str, port: int) -> None:
        import subprocess
        import sys

        self._proc = subprocess.Popen(
            [sys.executable, "-I", __file__, host, str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        self._error: str | None = None
        word, _, rest = self._line(CONNECT_TIMEOUT_S + HEADER_TIMEOUT_S + 2.0).partition(" ")
        if word == "READY":
            self.address = ("127.0.0.1", int(rest))
            return
        self.close()
        if word == "REFUSED":
            raise ConnectionRefusedError(rest) if "refused" in rest else OSError(rest)
        raise GateError(rest or "the DV gate ended without a word")

    def _line(self, timeout_s: float) -> str:
        import select

        ready, _, _ = select.select([self._proc.stdout], [], [], timeout_s)
        if not ready:
            return "ERROR no answer from the sender"
        return self._proc.stdout.readline().strip()

    def refusal(self, wait_s: float = 1.0) -> str | None:
        """What the gate refused after the header, else None; waits up to ``wait_s`` for it to end (the
        reader sees the connection close a moment before the gate's process has said why)."""
        import subprocess

        if self._error is None:
            try:
                self._proc.wait(wait_s)
            except subprocess.TimeoutExpired:
                return None
            word, _, rest = self._proc.stdout.readline().strip().partition(" ") if self._proc.stdout else ("", "", "")
            self._error = rest if word == "ERROR" else ""
        return self._error or None

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait(5)
        self.refusal(0)
        if self._proc.stdout is not None:
            self._proc.stdout.close()


if __name__ == "__main__":
    import sys

    sys.exit(_serve(sys.argv[1], int(sys.argv[2]), sys.stdout))
