"""The one SAI scene type: camera motion, reference time, sensor, true depth, ground truth and APS frames.

Readers put the geometry in ``RecordingMeta.extra`` under the E-SAI names (fx,
v, depth, t_ref_us, occ_free_aps, occ_aps, occ_aps_ts_us); this is the one
place that reads them back, so the GUI and CLI never look up string keys, and
the one place that says what t_ref is when the file does not. The refocus
functions take a scene whole (with a depth), never loose (fx, v, t_ref).

A camera translating at v (m/s) with focal length fx (px) sees a point at
depth d move at fx * v / d px/s (opposite to the camera motion). Refocusing
on that plane shifts every event by (t - t_ref) * fx * v / d, so the plane
lines up at its t_ref position while nearer occluders smear out.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from spikelens.datasets.recording import RecordingMeta
from spikelens.datasets.sensor_size import SensorSize, sensor_size

#: E-SAI's rig (DAVIS346 on a linear slider): the defaults wherever a file does not say
ESAI_FX = 320.0  # px
ESAI_V = 0.177  # m/s
#: where autofocus looks for planes (m): wide, so a fence close to the camera is found too
DEPTH_RANGE = (0.1, 5.0)
#: the depths a focal-stack slider spans (m): even steps in 1/depth, so a near end of 0.1 m
#: would spend most of the slider on the first 20 cm
VIEW_DEPTHS = (0.3, 5.0)


class RefocusError(ValueError):
    """Refocusing parameters or inputs that cannot work."""


def shift_rate(fx: float, v: float, depth: float) -> float:
    """Image-plane speed (px/s) of a plane at ``depth`` m for a camera at ``v`` m/s; 0 at infinity."""
    if not depth > 0:
        raise RefocusError(f"depth must be positive, got {depth}")
    return fx * v / depth


def depth_for_rate(fx: float, v: float, rate: float) -> float:
    if rate <= 0:
        raise RefocusError(f"shift rate must be positive, got {rate}")
    return fx * v / rate


@dataclass(frozen=True)
class SAIScene:
    #: focal length (px) and camera speed along +x (m/s); None when the file does not say
    fx: float | None
    v: float | None
    #: reference time (absolute, the recording's own clock): refocused images align here
    t_ref_us: int
    sensor: SensorSize
    #: the target's true depth (m), when known
    depth: float | None = None
    #: the occlusion-free frame at t_ref (E-SAI ``occ_free_aps``)
    ground_truth: np.ndarray | None = None
    #: occluded APS frames and their times (E-SAI ``occ_aps``, ``occ_aps_ts``)
    aps: np.ndarray | None = None
    aps_t_us: np.ndarray | None = None

    def __post_init__(self) -> None:
        sensor_size(self.sensor, "an SAI scene's sensor")

    @classmethod
    def from_events(cls, meta: RecordingMeta, events: np.ndarray, **explicit) -> SAIScene:
        """:meth:`from_meta` with the span taken from the recording's (time-sorted) events."""
        span = (int(events["t"][0]), int(events["t"][-1])) if events.size else None
        return cls.from_meta(meta, span, **explicit)

    @classmethod
    def from_meta(
        cls,
        meta: RecordingMeta,
        span_us: tuple[int, int] | None,
        *,
        fx: float | None = None,
        v: float | None = None,
        t_ref_us: int | None = None,
    ) -> SAIScene:
        """The scene a recording's metadata describes; explicit values win over the file's.

        ``span_us`` is the recording's (first, last) event time: t_ref
        defaults to its middle when neither the caller nor the file gives one.
        """
        x = meta.extra
        if t_ref_us is None:
            t_ref_us = x.get("t_ref_us")
        if t_ref_us is None:
            t_ref_us = (span_us[0] + span_us[1]) // 2 if span_us is not None else 0

        def num(value: object) -> float | None:
            return None if value is None else float(value)  # type: ignore[arg-type]

        def arr(key: str) -> np.ndarray | None:
            return None if x.get(key) is None else np.asarray(x[key])

        return cls(
            fx=num(fx if fx is not None else x.get("fx")),
            v=num(v if v is not None else x.get("v")),
            t_ref_us=int(t_ref_us),
            sensor=SensorSize.of(meta),
            depth=num(x.get("depth")),
            ground_truth=arr("occ_free_aps"),
            aps=arr("occ_aps"),
            aps_t_us=arr("occ_aps_ts_us"),
        )

    @property
    def has_geometry(self) -> bool:
        """fx and v are known: the recording can be refocused without asking the user."""
        return self.fx is not None and self.v is not None

    def require_geometry(self, where: object = "") -> SAIScene:
        """This scene, or a clear error when the file did not give fx or v."""
        missing = [n for n, val in (("fx", self.fx), ("v", self.v)) if val is None]
        if missing:
            prefix = f"{where}: " if where else ""
            raise RefocusError(f"{prefix}no SAI metadata for {missing}; pass them explicitly (--fx, --v)")
        if not self.fx > 0 or self.v == 0:  # type: ignore[operator]
            raise RefocusError(f"need fx > 0 and a moving camera, got fx={self.fx}, v={self.v}")
        return self

    def rate(self, depth: float) -> float:
        """Signed image speed (px/s) of the plane at ``depth`` m (negative for a camera moving along -x)."""
        self.require_geometry()
        return shift_rate(self.fx, self.v, depth)  # type: ignore[arg-type]

    def with_geometry(self, fx: float, v: float, t_ref_us: int | None = None) -> SAIScene:
        """The same recording under a geometry the user typed in."""
        return replace(self, fx=float(fx), v=float(v), t_ref_us=self.t_ref_us if t_ref_us is None else int(t_ref_us))
