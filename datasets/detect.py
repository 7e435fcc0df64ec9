"""Open any supported recording, recognising the format from its content."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from spikelens.datasets.errors import FormatError
from spikelens.datasets.formats import aedat2, aedat3, aedat4, atis_bin, esai, hdf5, numpy_files, prophesee
from spikelens.datasets.formats._binary import check_path
from spikelens.datasets.recording import Recording

SNIFF_BYTES = 4096


def detect_format(path: str | Path) -> str:
    """Name of the format of ``path``, from magic bytes and headers (the suffix only breaks ties)."""
    path = check_path(path)
    with open(path, "rb") as f:
        head = f.read(SNIFF_BYTES)
    if aedat2.sniff(head):
        return "aedat2"
    if aedat3.sniff(head):
        return "aedat3"
    if aedat4.sniff(head):
        return "aedat4"
    if hdf5.sniff(head):
        return "hdf5"
    if head.startswith(numpy_files.NPY_MAGIC):
        return {"esai": "esai-npy", "events": "npy-events", "tonic": "tonic-dvsgesture-npy"}[
            numpy_files.kind_of_npy(path)
        ]
    if head.startswith(numpy_files.ZIP_MAGIC):
        return "npz-events"
    if prophesee.sniff(head):
        low = head.lower()
        if b"% evt " in low or b"% format evt" in low or path.suffix.lower() == ".raw":
            return "prophesee-raw"
        return "prophesee-dat"
    if path.suffix.lower() == ".bin":
        if path.stat().st_size % atis_bin.RECORD_BYTES == 0:
            return "atis-bin"
        raise FormatError(path, "a .bin file whose size is not a multiple of 5 bytes: truncated ATIS file?")
    raise FormatError(path, f"unrecognised file format (starts with {head[:16]!r})")


def open_recording(path: str | Path, **options: Any) -> Recording:
    """Open ``path`` with the reader its content calls for.

    ``options`` go to the reader (``chip=`` for AEDAT 2, ``width``/``height``
    for header-less formats). Raises :class:`FormatError` for anything that
    is not a readable recording.
    """
    path = Path(path)
    fmt = detect_format(path)
    openers = {
        "aedat2": aedat2.Aedat2Recording,
        "aedat3": aedat3.Aedat31Recording,
        "aedat4": aedat4.Aedat4Recording,
        "hdf5": hdf5.H5Recording,
        "esai-npy": esai.open_esai,
        "npy-events": numpy_files.open_events_npy,
        "tonic-dvsgesture-npy": numpy_files.open_tonic_gesture,
        "npz-events": numpy_files.open_npz,
        "prophesee-raw": prophesee.RawRecording,
        "prophesee-dat": prophesee.DatRecording,
        "atis-bin": atis_bin.AtisBinRecording,
    }
    return openers[fmt](path, **options)
