"""Sensor sizes in one order: ``SensorSize(width, height)``, never a bare tuple.

A bare ``(a, b)`` reads as (width, height) in some libraries and as an
image's (rows, columns) in others, and passing one module's tuple to another
silently transposes the picture. Every API that needs a sensor takes a
:class:`SensorSize` (built from a recording's meta) and refuses anything
else; ``.shape`` is the (height, width) of its images.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol


class _HasSize(Protocol):
    width: int
    height: int


class SensorSize(NamedTuple):
    width: int
    height: int

    @classmethod
    def of(cls, meta: _HasSize) -> SensorSize:
        """The sensor a recording's or stream's meta describes."""
        return cls(int(meta.width), int(meta.height))

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width): the NumPy shape of an image of this sensor."""
        return self.height, self.width

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"


def sensor_size(value: object, name: str = "sensor") -> SensorSize:
    """``value`` itself when it is a SensorSize with positive sides; a TypeError for a bare tuple."""
    if not isinstance(value, SensorSize):
        raise TypeError(f"{name} must be a SensorSize(width, height), got {value!r}: a bare tuple has no order")
    if value.width <= 0 or value.height <= 0:
        raise ValueError(f"{name} must have positive sides, got {value}")
    return value


#: the sensors the bundled data and the simulators default to
DAVIS346 = SensorSize(346, 260)
DVS128 = SensorSize(128, 128)
