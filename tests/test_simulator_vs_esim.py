"""Our event simulator against an independent one: evlib's ESIM (``evlib.simulation.ESIMSimulator``).

Both are ideal level-crossing sensors once ours has its mismatch, refractory
period and noise switched off, so on the same rendered frames they must fire
the same events per pixel. evlib's model, as its ``process_frame`` reads:
``log_intensity = torch.log(torch.maximum(intensity_tensor, log_floor))``
with ``intensity_tensor = frame / 255.0``; ``self._intensity_buffer +=
log_change``; a pixel with ``self._intensity_buffer >= positive_threshold``
fires ``int(buffer / positive_threshold)`` ON events, all stamped with the
frame's time, and keeps the remainder (OFF alike). Ours takes the log of
intensity + ``log_eps``, so evlib is fed (I + log_eps) * 255 to see the same
log; and ours stamps each crossing at its interpolated time inside the frame
step, which evlib rounds up to the step's end.
"""

from __future__ import annotations

import os

import numpy as np

from spikelens.datasets.simulator import SensorParams, frame_times, simulate

_env = dict(os.environ)
try:  # evlib's import sets HDF5_PLUGIN_PATH and LD_LIBRARY_PATH, which every later subprocess would inherit
    from evlib.simulation import ESIMConfig, ESIMSimulator
finally:
    os.environ.clear()
    os.environ.update(_env)

H, W = 24, 40
STEP_US = 1000
IDEAL = SensorParams(threshold_on=0.17, threshold_off=0.23, threshold_sigma=0.0, refractory_us=0.0, noise_rate_hz=0.0)


def render(t_us: int) -> np.ndarray:
    """Two drifting gratings (0.15-0.85): every pixel brightens and darkens several thresholds' worth."""
    t = t_us * 1e-6
    y, x = np.mgrid[0:H, 0:W].astype(np.float64)
    img = 0.5 + 0.2 * np.sin(2 * np.pi * (x - 60 * t) / 13) + 0.15 * np.sin(2 * np.pi * (y + 0.5 * x + 35 * t) / 9)
    return img.astype(np.float32)


def esim_events(times: np.ndarray, params: SensorParams) -> tuple[np.ndarray, ...]:
    cfg = ESIMConfig(
        positive_threshold=params.threshold_on,
        negative_threshold=params.threshold_off,
        refractory_period_ms=0.0,
        device="cpu",
        dtype="float64",
    )
    sim, parts = ESIMSimulator(cfg), []
    for t in times:
        x, y, ts, p = sim.process_frame((render(int(t)).astype(np.float64) + params.log_eps) * 255, t * 1e-6)
        if len(x):
            parts.append((x, y, np.rint(np.asarray(ts) * 1e6).astype(np.int64), np.asarray(p) > 0))
    return tuple(np.concatenate(c) for c in zip(*parts, strict=True))


def per_pixel(x: np.ndarray, y: np.ndarray, on: np.ndarray) -> np.ndarray:
    """2 x H x W counts: ON, then OFF."""
    return np.stack([np.bincount(y[m] * W + x[m], minlength=H * W).reshape(H, W) for m in (on, ~on)])


def test_same_events_per_pixel_as_evlib_esim():
    times = frame_times(200_000, STEP_US)
    ours = simulate(render, times, IDEAL, seed=0)
    ex, ey, _, ep = esim_events(times, IDEAL)
    a = per_pixel(ours["x"].astype(int), ours["y"].astype(int), ours["p"] == 1)
    b = per_pixel(ex, ey, ep)
    assert b.sum() > 5 * H * W  # a real workout: several events per pixel, both polarities
    assert b[1].sum() > 0.3 * b.sum()
    # float32 (ours) against float64 (evlib) may flip a crossing that lands on a threshold exactly
    assert np.abs(a - b).max() <= 1
    assert np.mean(a == b) > 0.99


def test_each_event_falls_in_the_step_evlib_stamps_it_with():
    """Per pixel and polarity, the k-th event of ours lies in (t_k - step, t_k], t_k evlib's stamp."""
    times = frame_times(100_000, STEP_US)
    ours = simulate(render, times, IDEAL, seed=0)
    ex, ey, et, ep = esim_events(times, IDEAL)
    checked = 0
    for pol in (True, False):
        mine = ours[(ours["p"] == 1) == pol]
        theirs = ep == pol
        key_a = mine["y"].astype(int) * W + mine["x"]
        key_b = ey[theirs] * W + ex[theirs]
        ta, tb = mine["t"], et[theirs]
        for k in np.unique(key_b):
            sa, sb = np.sort(ta[key_a == k]), np.sort(tb[key_b == k])
            if sa.size != sb.size:
                continue  # the rare flipped crossing (see above)
            assert np.all(sa <= sb) and np.all(sa >= sb - STEP_US)
            checked += sa.size
    assert checked > 0.95 * ours.size
