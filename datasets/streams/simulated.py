"""``sim:gesture[:SEED]``: the gesture simulator as an open-ended live source, for demos without hardware.

One subject performs the 11 DVS128 Gesture classes in random order, over and
over, with rest pauses between gestures; events are released when their
time comes (real time, starting at t = 0). ``labels`` lists the gestures
scheduled so far (the current round of 11) as (class index, start_us,
end_us): the ground truth a live classifier can be scored against.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np

from spikelens.datasets.collections.dvs_gesture import CLASSES
from spikelens.datasets.recording import RecordingMeta
from spikelens.datasets.simulator.gesture import SIZE, GestureRenderer, Subject
from spikelens.datasets.simulator.sensor import EventSimulator, SensorParams
from spikelens.datasets.streams.base import LiveStream, sleep_until

#: render step: coarser than the dataset writer's 1 ms so the simulator keeps up with real time
STEP_US = 2_500
GAP_US = 400_000
SEGMENT_S = (1.5, 3.0)


class SimulatedGestureStream(LiveStream):
    def __init__(self, seed: int = 0, realtime: bool = True, step_us: int = STEP_US, speed: float = 1.0) -> None:
        super().__init__(f"sim:gesture:{seed}", RecordingMeta(None, "sim-gesture", SIZE, SIZE, "simulated"))
        self.meta.extra.update({"source": self.source, "classes": list(CLASSES)})
        if not speed > 0:
            raise ValueError(f"the simulator's speed must be positive, got {speed}")
        self.realtime = realtime
        #: stream seconds per wall second (paced, like a replay at SPEED)
        self.speed = float(speed)
        self.rng = np.random.default_rng(seed)
        self.subject = Subject.draw(self.rng)
        self.params = SensorParams(threshold_on=0.2, threshold_off=0.2, noise_rate_hz=0.1)
        self.step_us = int(step_us)
        self.labels: list[tuple[int, int, int]] = []
        self._closed = False

    def _episode(self, t_us: int) -> GestureRenderer:
        segs = []
        t = t_us + GAP_US
        for label in self.rng.permutation(len(CLASSES)):
            length = int(self.rng.uniform(*SEGMENT_S) * 1e6)
            segs.append((int(label), t, t + length))
            t += length + GAP_US
        return GestureRenderer(self.subject, segs, self.rng)

    def packets(self) -> Iterator[np.ndarray]:
        t = 0
        render = self._episode(t)
        sim = EventSimulator(render(t), t, self.params, self.rng)
        start = time.monotonic()
        while not self._closed:
            end = render.segments[-1][2] + GAP_US
            self.labels.extend(seg[:3] for seg in render.segments)
            while t < end and not self._closed:
                t += self.step_us
                ev = sim.step(render(t), t)
                if self.realtime:
                    sleep_until(start + t / 1e6 / self.speed)
                if ev.size:
                    self.events_received += ev.size
                yield ev
            render = self._episode(t)

    def close(self) -> None:
        self._closed = True
