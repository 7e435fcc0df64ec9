"""Synthetic-aperture geometry: how fast a plane at some depth slides across the sensor.

A camera translating at v (m/s) with focal length fx (px) sees a point at
depth d move at fx * v / d px/s (opposite to the camera motion). Refocusing
on that plane shifts every event by (t - t_ref) * fx * v / d, so the plane
lines up at its t_ref position while nearer occluders smear out.
"""

from __future__ import annotations

from dataclasses import dataclass

from spikelens.datasets import RecordingMeta


class RefocusError(ValueError):
    """Refocusing parameters or inputs that cannot work."""


def shift_rate(fx: float, v: float, depth: float) -> float:
    """Image-plane speed (px/s) of a plane at ``depth`` m for a camera at ``v`` m/s."""
    if depth <= 0:
        raise RefocusError(f"depth must be positive, got {depth}")
    return fx * v / depth


def depth_for_rate(fx: float, v: float, rate: float) -> float:
    if rate <= 0:
        raise RefocusError(f"shift rate must be positive, got {rate}")
    return fx * v / rate


@dataclass(frozen=True)
class SAIGeometry:
    """Camera motion along +x at ``v`` m/s, focal length ``fx`` px, reference time ``t_ref_us``."""

    fx: float
    v: float
    t_ref_us: int
    depth: float | None = None  # the true depth, when the recording knows it

    @classmethod
    def from_meta(
        cls, meta: RecordingMeta, fx: float | None = None, v: float | None = None, t_ref_us: int | None = None
    ) -> SAIGeometry:
        """From E-SAI metadata (fx, v, t_ref_us, depth), with explicit values taking precedence."""
        x = meta.extra
        fx = fx if fx is not None else x.get("fx")
        v = v if v is not None else x.get("v")
        t_ref = t_ref_us if t_ref_us is not None else x.get("t_ref_us")
        missing = [n for n, val in (("fx", fx), ("v", v), ("t_ref", t_ref)) if val is None]
        if missing:
            raise RefocusError(f"{meta.path}: no SAI metadata for {missing}; pass them explicitly")
        depth = x.get("depth")
        return cls(float(fx), float(v), int(t_ref), None if depth is None else float(depth))

    def rate(self, depth: float) -> float:
        return shift_rate(self.fx, self.v, depth)
