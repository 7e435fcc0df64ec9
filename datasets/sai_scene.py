"""An E-SAI scene, typed: camera motion, reference time, true depth, ground truth and APS frames.

Readers put these in ``RecordingMeta.extra`` under the E-SAI names (fx, v,
depth, t_ref_us, occ_free_aps, occ_aps, occ_aps_ts_us); this is the one
place that reads them back, so the GUI and CLI never look up string keys,
and the one place that says what t_ref is when the file does not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spikelens.datasets.recording import RecordingMeta


@dataclass(frozen=True)
class SAIScene:
    #: focal length (px) and camera speed along +x (m/s); None when the file does not say
    fx: float | None
    v: float | None
    #: reference time (absolute, the recording's own clock): refocused images align here
    t_ref_us: int
    #: the target's true depth (m), when known
    depth: float | None = None
    #: the occlusion-free frame at t_ref (E-SAI ``occ_free_aps``)
    ground_truth: np.ndarray | None = None
    #: occluded APS frames and their times (E-SAI ``occ_aps``, ``occ_aps_ts``)
    aps: np.ndarray | None = None
    aps_t_us: np.ndarray | None = None

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
            depth=num(x.get("depth")),
            ground_truth=arr("occ_free_aps"),
            aps=arr("occ_aps"),
            aps_t_us=arr("occ_aps_ts_us"),
        )

    @property
    def has_geometry(self) -> bool:
        """fx and v are known: the recording can be refocused without asking the user."""
        return self.fx is not None and self.v is not None
