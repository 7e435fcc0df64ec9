"""Shared plumbing for binary readers: text headers and fixed-size records."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from spikelens.datasets.errors import FormatError
from spikelens.datasets.events import CHECK_BAD, CHECK_UNSORTED, empty_events, new_checks
from spikelens.datasets.recording import RecordingMeta, Scanned

#: A text header longer than this is garbage, not a header.
MAX_HEADER_BYTES = 16 << 20


def read_text_header(
    f: BinaryIO, path: Path, prefix: bytes, stop: Callable[[bytes], bool] | None = None
) -> tuple[list[str], int]:
    """Read ``prefix``-led header lines from the start of ``f``.

    Returns the lines (prefix and line ending stripped) and the offset where
    binary data begins. ``stop(line)`` ends the header after that line.
    """
    f.seek(0)
    lines: list[str] = []
    while True:
        pos = f.tell()
        if f.read(len(prefix)) != prefix:
            f.seek(pos)
            return lines, pos
        line = f.readline(MAX_HEADER_BYTES)
        if not line.endswith(b"\n"):
            raise FormatError(path, "header line is not terminated (garbage or truncated header)")
        if f.tell() > MAX_HEADER_BYTES:
            raise FormatError(path, f"header is longer than {MAX_HEADER_BYTES} bytes")
        text = line.rstrip(b"\r\n").decode("latin-1")
        lines.append(text)
        if stop is not None and stop(prefix + line):
            return lines, f.tell()


def check_path(path: str | Path) -> Path:
    """Common checks every reader does before opening a file."""
    path = Path(path)
    if path.is_dir():
        raise FormatError(path, "is a directory, not a recording")
    if not path.exists():
        raise FormatError(path, "no such file")
    if path.stat().st_size == 0:
        raise FormatError(path, "file is empty")
    return path


def map_file(path: Path, offset: int, dtype: np.dtype | str = np.uint8) -> np.ndarray:
    """The file from ``offset`` on, memory-mapped read-only (an empty array if nothing is there).

    Mapping beats read(): no copy into a freshly faulted buffer, and streaming
    a huge file keeps only what the page cache holds.
    """
    dtype = np.dtype(dtype)
    n = (os.path.getsize(path) - offset) // dtype.itemsize
    if n <= 0:
        return np.empty(0, dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=(n,))


def fixed_record_chunks(
    path: Path,
    offset: int,
    record_bytes: int,
    decode: Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], int],
    max_events: int | None,
    meta: RecordingMeta,
) -> Iterator[Scanned]:
    """Decode a file of fixed-size records in bounded chunks.

    ``decode(raw_bytes, out, state, checks)`` fills ``out`` (one slot per
    record, through :func:`spikelens.datasets.events.emit`) and returns how
    many events it kept (special records may be dropped); ``state``
    (int64[4], zeroed at the start) carries wraps between chunks.
    """
    size = os.path.getsize(path) - offset
    if size % record_bytes:
        raise FormatError(
            path,
            f"data is {size} bytes, not a multiple of the {record_bytes}-byte record: "
            "the file is truncated or not this format",
        )
    raw = map_file(path, offset)
    n_records = size // record_bytes
    step = n_records if max_events is None else max_events
    state = np.zeros(4, np.int64)
    for first in range(0, n_records, max(step, 1)):
        n = min(step, n_records - first)
        out = empty_events(n)
        checks = new_checks(meta.width, meta.height)
        kept = decode(raw[first * record_bytes : (first + n) * record_bytes], out, state, checks)
        yield Scanned(out[:kept], int(checks[CHECK_BAD]), int(checks[CHECK_UNSORTED]))
