"""Training and inference build the same network input: one binner, at sizes that do not divide evenly."""

from __future__ import annotations

import numpy as np
import pytest

from spikelens.datasets import SensorSize, make_events
from spikelens.datasets.patterns import random_events
from spikelens.hybrid_net.classify import ClassifierConfig
from spikelens.pipelines.classification import DropEvents, ScaleShift, Segment, augment_window
from spikelens.pipelines.classify_windows import window_frames


@pytest.mark.parametrize("sensor", [SensorSize(346, 260), SensorSize(304, 240), SensorSize(128, 128)])
def test_training_frames_equal_inference_frames_with_augmentation_off(sensor):
    cfg = ClassifierConfig()
    w, h = sensor
    ev = random_events(50_000, w, h, rate_hz=50_000 / (cfg.window_us / 1e6) * 0.99, seed=w)
    ev["t"] += 1_000_000  # all inside the one window
    seg = Segment(ev, 0, 1_000_000, 1_000_000 + cfg.window_us)  # one window long: its start is fixed
    train = augment_window(seg, cfg, sensor, np.random.default_rng(0), augment=False)
    infer = window_frames(ev, 1_000_000 + cfg.window_us, cfg, sensor)
    np.testing.assert_array_equal(train, infer)
    # every edge column and row of the sensor lands where inference puts it (the old training binner's
    # floor((x + 0.5) * S / W) moved 32 of them one pixel on 346 x 260)
    assert train.sum() == np.count_nonzero(ev["t"] < 1_000_000 + cfg.window_us) > 45_000


def test_scale_shift_and_drop_by_hand():
    ev = make_events([0, 1, 2, 3], [0, 5, 9, 9], [0, 5, 9, 0], [1, 0, 1, 1])
    same = ScaleShift(1.0, 0.0, 0.0)(ev, SensorSize(10, 10))
    np.testing.assert_array_equal(same, ev)
    moved = ScaleShift(1.0, 2.0, -1.0)(ev, SensorSize(10, 10))  # x' = x + 2, y' = y - 1: only (5, 5) stays on
    assert moved["x"].tolist() == [7] and moved["y"].tolist() == [4] and moved["t"].tolist() == [1]
    zoom = ScaleShift(2.0, 0.0, 0.0)(ev, SensorSize(10, 10))  # about the centre: (5, 5) -> floor(5.5 * 2 - 5) = 6
    assert zoom["x"].tolist() == [6] and zoom["y"].tolist() == [6]
    assert DropEvents(0.0)(ev, np.random.default_rng(0)).size == 4
    assert DropEvents(1.0)(ev, np.random.default_rng(0)).size == 0


def test_one_frame_layout_channel_0_is_on_for_every_packer():
    """Refocus frames, E-SAI's packing, the physics pass and the classifier's binner agree: ON in channel 0."""
    from spikelens.datasets.sai_scene import SAIScene
    from spikelens.pipelines.classify_windows import bin_events
    from spikelens.refocus import pack_frames, pack_frames_esai
    from spikelens.refocus.frames import polarity_images

    sensor = SensorSize(40, 30)
    on = make_events(np.arange(0, 1000, 10), np.arange(100) % 40, np.arange(100) % 30, np.ones(100))
    off = on.copy()
    off["p"] = 0
    scene = SAIScene(fx=320.0, v=0.177, t_ref_us=500, sensor=sensor)
    for ev, ch in ((on, 0), (off, 1)):
        outs = {
            "pack_frames": pack_frames(ev, 0.0, 500, 4, sensor)[:, ch],
            "pack_frames_esai": pack_frames_esai(ev, scene, 1.0, 4)[:, ch],
            "polarity_images": polarity_images(ev, 0.0, 500, sensor)[ch],
            "bin_events": bin_events(ev, 0, 250, 4, sensor, 8)[:, ch],
        }
        for name, frames in outs.items():
            assert frames.sum() == 100, (name, ch)
