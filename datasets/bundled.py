"""Recordings that ship inside the package, for demos, first runs and tests."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def bundled_sample() -> Path:
    """A rotating bar (DVS128-sized, 1 s, 80 k events) in SpikeLens HDF5."""
    return Path(str(resources.files("spikelens.datasets") / "samples" / "rotating_bar.h5"))
