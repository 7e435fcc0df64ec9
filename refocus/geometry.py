"""Synthetic-aperture geometry: how fast a plane at some depth slides across the sensor.

A camera translating at v (m/s) with focal length fx (px) sees a point at
depth d move at fx * v / d px/s (opposite to the camera motion). Refocusing
on that plane shifts every event by (t - t_ref) * fx * v / d, so the plane
lines up at its t_ref position while nearer occluders smear out.
"""

from __future__ import annotations

from dataclasses import dataclass

from spikelens.datasets.sai_scene import SAIScene


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
    def from_scene(cls, scene: SAIScene, where: object = "") -> SAIGeometry:
        """The refocusing geometry of a scene; a clear error when the file did not give fx or v."""
        missing = [n for n, val in (("fx", scene.fx), ("v", scene.v)) if val is None]
        if missing:
            prefix = f"{where}: " if where else ""
            raise RefocusError(f"{prefix}no SAI metadata for {missing}; pass them explicitly (--fx, --v)")
        assert scene.fx is not None and scene.v is not None
        return cls(scene.fx, scene.v, scene.t_ref_us, scene.depth)

    def rate(self, depth: float) -> float:
        return shift_rate(self.fx, self.v, depth)
