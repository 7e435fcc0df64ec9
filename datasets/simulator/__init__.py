"""A seeded event-camera simulator and the synthetic scenes built on it.

:mod:`.sensor` turns rendered intensity frames into events (ESIM/v2e model);
:mod:`.sai` renders a camera sliding past an occluded target (E-SAI samples);
:mod:`.gesture` renders a figure performing the 11 DVS128 Gesture classes.
"""

from spikelens.datasets.simulator.sensor import EventSimulator, SensorParams, frame_times, simulate, simulate_frames

__all__ = ["EventSimulator", "SensorParams", "frame_times", "simulate", "simulate_frames"]
