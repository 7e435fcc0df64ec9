"""The viewer's session without Qt: what is open, where playback stands, what the next frame is.

napari's split between its Viewer and QtViewer: this object holds the state
and the policy (open a file or a live stream, which recordings the SAI view
gets, playback and looping, live ticks, recording a stream, the metadata
shown); app/main_window.py only renders what it returns and forwards the
user's intents. Tests drive it without a window.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from spikelens.datasets.recording import RecordingMeta
from spikelens.datasets.sai_scene import SAIScene
from spikelens.datasets.streams import EventStream
from spikelens.pipelines import display_frames as fr
from spikelens.pipelines.clock import Clock
from spikelens.pipelines.inspect import plain_metadata
from spikelens.pipelines.jobs import Job
from spikelens.pipelines.live import StreamPump
from spikelens.pipelines.record import RecordStats
from spikelens.pipelines.spool import EventSource, open_source
from spikelens.refocus import CheckedEvents, RefocusError, check_events

#: the SAI view loads a recording whole; larger ones are not offered to it
SAI_EVENT_LIMIT = 30_000_000
#: the live rate plot rolls over this much of the recent stream
LIVE_RATE_SPAN_US = 10_000_000


@dataclass(frozen=True)
class Loaded:
    """What reading a file in the background hands the session."""

    path: Path
    source: EventSource
    sai_events: CheckedEvents | None  # checked for refocusing, or None (``sai_why_not`` says why)
    sai_why_not: str = ""


def load(path: str | Path, first_packet, job: Job) -> Loaded:
    """Worker body: index the recording and, when it fits, load (and check, once, off the GUI thread) the
    events the SAI view refocuses."""
    path = Path(path)
    source = open_source(path, first_packet=first_packet, job=job)
    try:
        events, why_not = None, f"SAI view handles up to {SAI_EVENT_LIMIT:,} events; this file has more."
        if source.n_events <= SAI_EVENT_LIMIT:
            try:
                events, why_not = check_events(source.all_events()), ""
            except RefocusError as e:  # unsorted or bad polarities: the viewer plays it, nothing refocuses it
                why_not = f"Cannot refocus this recording: {e}"
        job.check()  # abandoned meanwhile: nobody will take the source, so close it here
    except BaseException:
        source.close()
        raise
    return Loaded(path, source, events, why_not)


@dataclass(frozen=True)
class SAIOffer:
    """What the SAI view gets of the open recording: its events and scene, or why it gets nothing."""

    events: CheckedEvents | None = None
    scene: SAIScene | None = None
    why_not: str = "no recording open"


@dataclass(frozen=True)
class LiveTick:
    """One live update: the frame (unless frozen), the recent rates when asked, and what happened."""

    frame: fr.Frame | None
    rates: tuple[int, np.ndarray] | None  # (first bin's time, events/s per bin)
    n_total: int
    recording: bool
    saved: RecordStats | None  # a recording that just closed
    ended: str | None  # the stream just ended, and why


class ViewerSession:
    """One file or one live stream at a time, its clock and its frame builder."""

    def __init__(self, settings: fr.FrameSettings | None = None) -> None:
        self.settings = settings or fr.FrameSettings()
        self.source: EventSource | None = None
        self.live: StreamPump | None = None
        self.builder: fr.FrameBuilder | None = None
        self.clock: Clock | None = None
        self.path: Path | None = None
        self.name = ""
        self.frame: fr.Frame | None = None
        self.frames_rendered = 0
        self.sai = SAIOffer()
        self.speed: float | None = 1.0
        self.loop = False
        self._ended_reported = False

    # -- opening ----------------------------------------------------------------------------------
    def preview(self, events: np.ndarray, meta: RecordingMeta) -> fr.Frame | None:
        """A first frame from the first packet while the rest loads; None when something is already shown."""
        if self.source is not None or self.live is not None or events.size == 0:
            return None
        t1 = int(events["t"][-1]) + 1
        return fr.FrameBuilder(EventSource.of_events(events, meta)).frame(t1, self.settings)

    def open_file(self, loaded: Loaded) -> None:
        """Show a loaded recording (closing what was open), playback at its start."""
        self.close()
        source = loaded.source
        self.source, self.path, self.name = source, loaded.path, loaded.path.name
        self.builder = fr.FrameBuilder(source)
        self.clock = Clock(source.t_start_us, source.t_end_us, source.t_start_us, self.speed, self.loop)
        self.clock.seek(source.t_start_us + self.settings.window_us)
        if loaded.sai_events is None:
            self.sai = SAIOffer(why_not=loaded.sai_why_not)
        else:
            self.sai = SAIOffer(loaded.sai_events, SAIScene.from_events(source.meta, loaded.sai_events), "")

    def open_stream(self, name: str, stream: EventStream) -> None:
        """Show an open event stream live; the SAI view gets nothing from it."""
        self.close()
        self.path, self.name = None, name
        self.live = StreamPump(stream).start()
        self._ended_reported = False
        self.builder = fr.FrameBuilder(self.live.buffer)
        self.clock = Clock(0, None, 0)
        self.sai = SAIOffer(why_not="live streams are not refocused")

    def close(self) -> RecordStats | None:
        """Let go of the open recording or stream; a recording in progress is finished first (its stats)."""
        self.pause()
        saved = None
        if self.live is not None:
            self.live.stop()
            saved = self.collect_recording()
            self.live = None
        if self.source is not None:
            self.source.close()
            self.source = None
        self.builder, self.clock, self.frame, self.sai = None, None, None, SAIOffer()
        return saved

    @property
    def meta(self) -> RecordingMeta | None:
        if self.source is not None:
            return self.source.meta
        return self.live.stream.meta if self.live is not None else None

    def info_rows(self) -> list[tuple[str, str]]:
        """The Recording dock's rows: the file's facts, then its metadata (headers whole, line by line)."""
        m = self.meta
        if m is None:
            return []
        facts = [("format", m.format), ("sensor", f"{m.width} x {m.height}")]
        if self.source is None:
            return [("source", self.name), *facts, ("camera", m.camera or "")]
        s = self.source
        rows = [
            ("file", self.name),
            *facts,
            ("camera", m.camera or "unknown"),
            ("events", f"{s.n_events:,}"),
            ("duration", f"{s.duration_us / 1e6:.3f} s"),
            ("mean rate", f"{s.n_events / max(s.duration_us, 1):.3f} M ev/s"),
        ]
        return rows + [(k, str(v)) for k, v in plain_metadata(m.extra, header=True).items()]

    # -- playback ---------------------------------------------------------------------------------
    @property
    def playing(self) -> bool:
        return self.clock is not None and self.clock.playing

    def play(self) -> bool:
        """Start replaying a file (from the start again when it stopped at the end); False for a stream."""
        if self.clock is None or self.live is not None:
            return False
        if self.clock.position_us >= self.clock.t_end_us and not self.clock.loop:
            self.clock.seek(self.clock.t_start_us)
        self.clock.playing = True
        return True

    def pause(self) -> None:
        if self.clock is not None:
            self.clock.playing = False

    def seek(self, t_us: int) -> fr.Frame | None:
        if self.clock is None:
            return None
        self.clock.seek(t_us)
        return self.render()

    def step(self, frames: int) -> fr.Frame | None:
        if self.clock is None:
            return None
        self.pause()
        self.clock.step(frames, self.settings.window_us)
        return self.render()

    def jump(self, where: str) -> fr.Frame | None:
        if self.clock is None:
            return None
        return self.seek(self.clock.t_start_us if where == "start" else self.clock.t_end_us)

    def set_speed(self, speed: float | None) -> None:
        self.speed = speed
        if self.clock is not None:
            self.clock.speed = speed

    def set_loop(self, on: bool) -> None:
        self.loop = on
        if self.clock is not None:
            self.clock.loop = on

    def set_settings(self, settings: fr.FrameSettings) -> fr.FrameSettings:
        self.settings = settings
        return settings

    def set_roi(self, roi: tuple[int, int, int, int] | None) -> fr.FrameSettings:
        return self.set_settings(replace(self.settings, roi=roi))

    def tick(self, wall_s: float) -> fr.Frame | None:
        """A file's playback tick: advance by ``wall_s`` of wall time and build the frame there."""
        if self.clock is None or self.live is not None:
            return None
        if not self.clock.advance(wall_s, self.settings.window_us):
            self.pause()
        return self.render()

    def render(self) -> fr.Frame | None:
        if self.builder is None or self.clock is None:
            return None
        self.frame = self.builder.frame(self.clock.position_us, self.settings)
        self.frames_rendered += 1
        return self.frame

    def position_text(self, frozen: bool = False) -> str:
        c = self.clock
        if c is None:
            return "no recording"
        if self.live is not None:
            first = self.live.buffer.t_first_us
            t0 = first if first is not None else c.position_us
            return f"live {(c.position_us - t0) / 1e6:8.3f} s{' (frozen)' if frozen else ''}"
        return f"{(c.position_us - c.t_start_us) / 1e6:8.3f} s / {(c.t_end_us - c.t_start_us) / 1e6:.3f} s"

    # -- live -------------------------------------------------------------------------------------
    def live_tick(self, frozen: bool = False, with_rates: bool = False) -> LiveTick | None:
        """Follow the stream's newest event (unless ``frozen``); report a closed recording and the end once."""
        pump = self.live
        if pump is None or self.clock is None:
            return None
        buf = pump.buffer
        saved = self.collect_recording()
        frame = rates = None
        newest = buf.t_last_us  # read once: the pump thread moves it on
        if newest is not None:
            if not frozen:
                self.clock.position_us = newest + 1
                frame = self.render()
            if with_rates:
                rates = buf.rates(LIVE_RATE_SPAN_US)
        ended = None
        if pump.finished.is_set() and not self._ended_reported:
            self._ended_reported = True
            saved = saved or self.collect_recording()
            ended = pump.error or pump.end_reason or "the stream ended"
        return LiveTick(frame, rates, buf.n_total, pump.is_recording, saved, ended)

    def stop_stream(self) -> None:
        if self.live is not None:
            self.live.stop()

    def start_recording(self, path: str | Path) -> None:
        """Record the live stream through the same recorder as `spikelens record` (raises on a bad path)."""
        if self.live is None:
            raise ValueError("no live stream to record")
        self.live.start_recording(path)

    def stop_recording(self) -> None:
        if self.live is not None:
            self.live.stop_recording()

    @property
    def recording(self) -> bool:
        return self.live is not None and self.live.is_recording

    def collect_recording(self) -> RecordStats | None:
        """The stats of a recording that has closed since the last call, once."""
        if self.live is None or self.live.recording is None:
            return None
        stats, self.live.recording = self.live.recording, None
        return stats
