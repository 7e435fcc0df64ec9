"""Synthetic-aperture geometry, re-exported where refocusing code looks for it.

The scene type and its constants live in :mod:`spikelens.datasets.sai_scene`
(readers build it from a recording's metadata); this module keeps the
refocus package's import path for them.
"""

from spikelens.datasets.sai_scene import (
    DEPTH_RANGE,
    ESAI_FX,
    ESAI_V,
    VIEW_DEPTHS,
    RefocusError,
    SAIScene,
    depth_for_rate,
    shift_rate,
)

__all__ = [
    "DEPTH_RANGE",
    "ESAI_FX",
    "ESAI_V",
    "VIEW_DEPTHS",
    "RefocusError",
    "SAIScene",
    "depth_for_rate",
    "shift_rate",
]
