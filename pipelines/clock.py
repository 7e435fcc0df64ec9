"""The replay position: wall time in, recording time out; open-ended while a live source runs."""

from __future__ import annotations

from dataclasses import dataclass

SPEEDS = (0.01, 0.03, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0)


@dataclass
class Clock:
    """Playback position. ``speed`` None means as fast as possible: one frame window per tick.

    ``t_end_us`` None is open-ended (a live source): the clock never stops at an end.
    """

    t_start_us: int
    t_end_us: int | None
    position_us: int
    speed: float | None = 1.0
    loop: bool = False
    playing: bool = False

    def advance(self, wall_s: float, frame_us: int) -> bool:
        """Move on by ``wall_s`` of wall time; returns False when playback stopped at the end."""
        step = frame_us if self.speed is None else max(1, round(wall_s * 1e6 * self.speed))
        pos = self.position_us + step
        if self.t_end_us is not None and pos > self.t_end_us:
            if self.loop:
                pos = self.t_start_us + (pos - self.t_end_us) % max(1, self.t_end_us - self.t_start_us)
            else:
                self.position_us, self.playing = self.t_end_us, False
                return False
        self.position_us = pos
        return True

    def seek(self, t_us: int) -> None:
        end = self.t_end_us if self.t_end_us is not None else t_us
        self.position_us = int(min(max(t_us, self.t_start_us), end))

    def step(self, frames: int, frame_us: int) -> None:
        self.seek(self.position_us + frames * frame_us)
