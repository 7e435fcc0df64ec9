"""What `spikelens info` reports about a recording or a live source."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from spikelens.datasets import open_recording
from spikelens.datasets.streams import SourceSpec, open_stream, parse_source

#: the stable keys of `spikelens info --json`, files and live sources alike
JSON_KEYS = ["format", "width", "height", "events", "t_start_us", "t_end_us", "duration_us"]


def plain_metadata(extra: dict[str, Any], header: bool = False) -> dict[str, Any]:
    """Metadata for printing: arrays summarised by shape, NumPy scalars as Python ones, keys sorted; a
    file's raw ``header`` only when asked for (the GUI shows it whole, `info` does not)."""
    out = {}
    for k in sorted(extra):
        v = extra[k]
        if k == "header" and not header:
            continue
        if isinstance(v, np.ndarray):
            out[k] = v.tolist() if v.size <= 8 else f"array{tuple(v.shape)} {v.dtype}"
        elif isinstance(v, np.generic):
            out[k] = v.item()
        elif isinstance(v, dict):
            out[k] = {str(kk): v[kk] for kk in sorted(v, key=str)}
        else:
            out[k] = v
    return out


def describe(path: str | Path) -> dict[str, Any]:
    """Format, geometry, event count and time span (one streaming pass) plus metadata.

    ``spikelens info --json`` prints the first seven keys; ``camera`` and
    ``extra`` (arrays summarised by shape) follow.
    """
    with open_recording(path) as rec:
        st = rec.stats()
        m = rec.meta
        return {
            "format": m.format,
            "width": m.width,
            "height": m.height,
            "events": st.events,
            "t_start_us": st.t_start_us,
            "t_end_us": st.t_end_us,
            "duration_us": st.duration_us,
            "camera": m.camera,
            "extra": plain_metadata(m.extra),
        }


def describe_source(source: str | Path, probe_s: float = 1.0) -> dict[str, Any]:
    """A file as :func:`describe`; a live source (camera, network, simulator) from ``probe_s`` of its events.

    For live sources ``events`` and the times cover the probe, and
    ``rate_hz`` (events per wall-clock second) and ``probe_s`` are added.
    """
    spec = source if isinstance(source, SourceSpec) else parse_source(source)
    if not spec.live:
        return describe(spec.path)
    n, t0, t1 = 0, None, None
    with open_stream(spec) as stream:
        start = time.monotonic()
        for pkt in stream.packets():
            if pkt.size:
                n += pkt.size
                t0 = int(pkt["t"][0]) if t0 is None else t0
                t1 = int(pkt["t"][-1])
            if time.monotonic() - start >= probe_s:
                break
        wall = time.monotonic() - start
        m = stream.meta
    return {
        "format": m.format,
        "width": m.width,
        "height": m.height,
        "events": n,
        "t_start_us": t0,
        "t_end_us": t1,
        "duration_us": 0 if t0 is None else t1 - t0,
        "rate_hz": round(n / wall, 1) if wall > 0 else 0.0,
        "probe_s": round(wall, 3),
        "camera": m.camera,
        "extra": plain_metadata(m.extra),
    }
