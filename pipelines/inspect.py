"""What `spikelens info` reports about a recording."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from spikelens.datasets import open_recording


def describe(path: str | Path) -> dict[str, Any]:
    """Format, geometry, event count and time span (one streaming pass) plus metadata.

    ``spikelens info --json`` prints the first seven keys; ``camera`` and
    ``extra`` (arrays summarised by shape) follow.
    """
    with open_recording(path) as rec:
        st = rec.stats()
        m = rec.meta
        info: dict[str, Any] = {
            "format": m.format,
            "width": m.width,
            "height": m.height,
            "events": st.events,
            "t_start_us": st.t_start_us,
            "t_end_us": st.t_end_us,
            "duration_us": st.duration_us,
            "camera": m.camera,
        }
        extra = {}
        for k, v in m.extra.items():
            if k == "header":
                continue
            if isinstance(v, np.ndarray):
                extra[k] = v.tolist() if v.size <= 8 else f"array{tuple(v.shape)} {v.dtype}"
            elif isinstance(v, np.generic):
                extra[k] = v.item()
            else:
                extra[k] = v
        info["extra"] = extra
    return info
