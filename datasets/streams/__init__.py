"""Event streams: one protocol for files, paced replays, DV cameras, DV network streams and the simulator."""

from spikelens.datasets.streams.base import (
    EventStream,
    LiveStream,
    StreamDisconnected,
    StreamError,
    StreamTimeout,
)
from spikelens.datasets.streams.sources import SYNTAX, SourceSpec, SourceSyntaxError, open_stream, parse_source

__all__ = [
    "SYNTAX",
    "EventStream",
    "LiveStream",
    "SourceSpec",
    "SourceSyntaxError",
    "StreamDisconnected",
    "StreamError",
    "StreamTimeout",
    "open_stream",
    "parse_source",
]
