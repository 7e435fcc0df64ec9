"""Source strings, parsed in one place: what the command line and the GUI accept wherever a file goes.

=========================  ==================================================
``PATH``                   a recording, read as fast as the consumer takes it
``file:PATH[@SPEED]``      a recording replayed at SPEED x real time (1)
``dv-net:HOST:PORT``       a DV network stream (dv-processing NetworkWriter)
``camera[:SERIAL]``        a USB iniVation camera (the first one found)
``sim:gesture[:SEED]``     the gesture simulator, live
=========================  ==================================================

A scheme prefix wins over a file of the same name; write ``file:camera`` (or
``./camera``) for a file called ``camera``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from spikelens.datasets.detect import open_recording
from spikelens.datasets.streams.base import EventStream

Kind = Literal["path", "file", "dv-net", "camera", "sim"]
SCHEMES = ("file:", "dv-net:", "camera", "sim:")
SYNTAX = "PATH, file:PATH[@SPEED], dv-net:HOST:PORT, camera[:SERIAL] or sim:gesture[:SEED][@SPEED]"


class SourceSyntaxError(ValueError):
    def __init__(self, text: str, problem: str) -> None:
        super().__init__(f"{text!r}: {problem} (sources are {SYNTAX})")


@dataclass(frozen=True)
class SourceSpec:
    kind: Kind
    text: str
    path: Path | None = None
    speed: float = 1.0
    host: str = ""
    port: int = 0
    serial: str | None = None
    seed: int = 0

    @property
    def live(self) -> bool:
        """Open-ended (camera, network, simulator): no end, no seeking."""
        return self.kind in ("dv-net", "camera", "sim")


def _number(text: str, value: str, kind: type, what: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        raise SourceSyntaxError(text, f"{what} must be a number, got {value!r}") from None


def parse_source(text: str | Path) -> SourceSpec:
    """Split a source string into its parts; raises :class:`SourceSyntaxError` (a ValueError)."""
    if isinstance(text, Path):
        return SourceSpec("path", str(text), path=text)
    s = str(text).strip()
    if s.startswith("file:"):
        body, speed = s[5:], 1.0
        head, at, tail = body.rpartition("@")
        if at and tail:
            speed = _number(s, tail.rstrip("x"), float, "the replay speed")
            body = head
            if not speed > 0:
                raise SourceSyntaxError(s, "the replay speed must be positive")
        if not body:
            raise SourceSyntaxError(s, "no file named")
        return SourceSpec("file", s, path=Path(body), speed=speed)
    if s.startswith("dv-net:"):
        host, colon, port = s[7:].rpartition(":")
        if not colon or not host:
            raise SourceSyntaxError(s, "a DV network source is dv-net:HOST:PORT")
        port_n = _number(s, port, int, "the port")
        if not 0 < port_n < 65536:
            raise SourceSyntaxError(s, f"port {port_n} is out of range")
        return SourceSpec("dv-net", s, host=host.strip("[]"), port=port_n)
    if s == "camera" or s.startswith("camera:"):
        serial = s[7:] or None
        return SourceSpec("camera", s, serial=serial)
    if s.startswith("sim:"):
        body, at, pace = s[4:].partition("@")
        what, _, seed = body.partition(":")
        if what != "gesture":
            raise SourceSyntaxError(s, f"unknown simulator {what!r}: sim:gesture[:SEED][@SPEED]")
        speed = _number(s, pace.rstrip("x"), float, "the speed") if at else 1.0
        if not speed > 0:
            raise SourceSyntaxError(s, "the simulator's speed must be positive")
        return SourceSpec("sim", s, seed=_number(s, seed, int, "the seed") if seed else 0, speed=speed)
    if not s:
        raise SourceSyntaxError(s, "empty source")
    return SourceSpec("path", s, path=Path(s))


def open_stream(source: str | Path | SourceSpec, **options: Any) -> EventStream:
    """Open any source as an :class:`EventStream`.

    ``options`` go to live sources (``read_timeout_s``, ``reconnect_s`` for
    the network, ``realtime`` for the simulator). Raises ``FormatError`` /
    ``StreamError`` (both ValueErrors) with a one-line message.
    """
    spec = source if isinstance(source, SourceSpec) else parse_source(source)
    if spec.kind == "path":
        return open_recording(spec.path)
    if spec.kind == "file":
        from spikelens.datasets.streams.replay import ReplayStream

        return ReplayStream(open_recording(spec.path), spec.speed)
    if spec.kind == "dv-net":
        from spikelens.datasets.streams.dv import NetworkStream

        return NetworkStream(spec.host, spec.port, **options)
    if spec.kind == "camera":
        from spikelens.datasets.streams.dv import CameraStream

        return CameraStream(spec.serial, **options)
    from spikelens.datasets.streams.simulated import SimulatedGestureStream

    return SimulatedGestureStream(spec.seed, speed=spec.speed, **options)
