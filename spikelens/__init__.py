"""SpikeLens: an event-camera workbench. Subpackages live in spikelens.<folder>."""

__version__ = "0.1.0"
