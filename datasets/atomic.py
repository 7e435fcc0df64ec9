"""All-or-nothing file output: write beside the target, then rename over it."""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@functools.cache
def file_mode() -> int:
    """The permissions open() would give a new file (mkstemp makes 0600 ones): 0666 less the umask, read
    from /proc on Linux; elsewhere the umask is read by setting it and putting it straight back, once, on
    the first write (never at import)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_output(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it to ``path`` on success.

    The temporary name ends in ``suffix`` (writers such as OpenCV's pick the
    container from it) and is hidden and marked ``.part`` while incomplete.

    On any exception the temporary file is removed and ``path`` is untouched,
    so a crash never leaves a half-written file that looks whole.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"{path}: cannot write there, the folder {folder} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part" + suffix, dir=folder)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            os.chmod(tmp_path, file_mode())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()
