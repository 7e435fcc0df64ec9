import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from spikelens.datasets.events import empty_events
from spikelens.datasets.simulator import EventSimulator, SensorParams, frame_times, simulate
from spikelens.datasets.simulator.pixels import NEVER, emit_pixels, emit_pixels_reference

QUIET = SensorParams(noise_rate_hz=0.0)


def run_kernel(log0, log1, t0, t1, ref, last, c_on, c_off, refr, width, cap):
    """Drive the kernel the way the simulator does: resume, with a doubled buffer, whenever the output is full."""
    parts, start = [], 0
    while start < log0.size:
        cols = [np.empty(cap, dt) for dt in (np.int64, np.int64, np.int64, np.int8)]
        n, start = emit_pixels(log0, log1, t0, t1, ref, last, c_on, c_off, refr, width, start, *cols)
        parts.append([c[:n] for c in cols])
        cap *= 2
    return tuple(np.concatenate(c) for c in zip(*parts, strict=True))


def lexsorted(cols):
    order = np.lexsort(cols[::-1])
    return [c[order].tolist() for c in cols]


@given(
    h=st.integers(1, 5),
    w=st.integers(1, 6),
    steps=st.integers(1, 4),
    refr=st.sampled_from([0.0, 30.0, 400.0]),
    cap=st.sampled_from([1, 3, 1000]),
    seed=st.integers(0, 2**16),
)
def test_kernel_matches_reference(h, w, steps, refr, cap, seed):
    rng = np.random.default_rng(seed)
    n = h * w
    c_on = rng.uniform(0.05, 0.4, n).astype(np.float32)
    c_off = rng.uniform(0.05, 0.4, n).astype(np.float32)
    log = rng.normal(0, 1, n).astype(np.float32)
    state_k = [log.astype(np.float64), np.full(n, NEVER)]
    state_r = [s.copy() for s in state_k]
    t = 0
    for _ in range(steps):
        new = (log + rng.normal(0, 1.0, n) * rng.integers(0, 2, n)).astype(np.float32)
        dt = int(rng.integers(1, 2000))
        k = run_kernel(log, new, t, t + dt, *state_k, c_on, c_off, refr, w, cap)
        r = emit_pixels_reference(log, new, t, t + dt, *state_r, c_on, c_off, refr, w)
        assert lexsorted(list(k)) == lexsorted(list(r))
        np.testing.assert_array_equal(state_k[0], state_r[0])
        np.testing.assert_array_equal(state_k[1], state_r[1])
        assert all((t <= e <= t + dt) for e in k[0])
        log, t = new, t + dt


def one_pixel(a, b, t1, c, refr):
    ref, last = np.array([a], np.float64), np.array([NEVER])
    on = off = np.array([c], np.float32)
    return run_kernel(np.float32([a]), np.float32([b]), 0, t1, ref, last, on, off, refr, 1, 16), ref


def test_timestamps_are_interpolated_crossings():
    (t, _, _, p), ref = one_pixel(0.0, 1.0, 1000, 0.25, 0.0)
    assert t.tolist() == [250, 500, 750, 1000] and p.tolist() == [1, 1, 1, 1]
    assert ref[0] == 1.0
    (t, _, _, p), _ = one_pixel(0.0, -0.5, 1000, 0.25, 0.0)
    assert t.tolist() == [500, 1000] and p.tolist() == [0, 0]


def test_refractory_period_blocks_then_fires_at_its_end():
    # crossings every 100 us; a 250 us refractory lets the pixel fire at 100, then at 350, 600, 850
    (t, *_), ref = one_pixel(0.0, 1.0, 1000, 0.1, 250.0)
    assert t.tolist() == [100, 350, 600, 850]
    assert ref[0] == pytest.approx(0.85)  # the pixel memorises the level at its last event


def test_static_scene_gives_only_noise():
    rng = np.random.default_rng(0)
    scene = rng.uniform(0.1, 0.9, (60, 80)).astype(np.float32)
    times = frame_times(2_000_000, 10_000)
    assert simulate(lambda t: scene, times, QUIET).size == 0
    params = SensorParams(noise_rate_hz=2.0)
    ev = simulate(lambda t: scene, times, params, seed=1)
    expected = 2.0 * scene.size * 2.0
    assert abs(ev.size - expected) < 5 * np.sqrt(expected)
    assert np.all(np.diff(ev["t"]) >= 0) and 0.45 < ev["p"].mean() < 0.55


def test_hot_pixels_fire_at_their_rate():
    scene = np.full((40, 50), 0.5, np.float32)
    params = SensorParams(noise_rate_hz=0.0, hot_pixel_fraction=0.01, hot_pixel_rate_hz=500.0)
    sim = EventSimulator(scene, 0, params, seed=3)
    ev = np.concatenate([sim.step(scene, t) for t in range(10_000, 1_000_001, 10_000)])
    pix = ev["y"].astype(np.int64) * 50 + ev["x"]
    assert set(np.unique(pix)) == set(sim.hot_pixels.tolist())
    assert abs(ev.size - 500 * 20) < 5 * np.sqrt(500 * 20)


def test_shot_noise_is_densest_in_the_dark_and_comes_in_pairs():
    """A static half-black, half-white scene: v2e's model gives a black pixel the full rate and a white one
    ``shot_noise_bright`` of it; each noise crossing moves the memorised level, so the pixel fires back (the
    opposite polarity, same pixel) as soon as it can, and a static scene shows only such pairs."""
    h, w, seconds, rate = 30, 40, 4.0, 3.0
    scene = np.zeros((h, w), np.float32)
    scene[:, w // 2 :] = 1.0
    params = SensorParams(noise_rate_hz=0.0, threshold_sigma=0.0, refractory_us=0.0, shot_noise_hz=rate)
    sim = EventSimulator(scene, 0, params, seed=5)
    ev = np.concatenate([sim.step(scene, t) for t in range(5_000, int(seconds * 1e6) + 1, 5_000)])
    dark = ev["x"] < w // 2
    for mask, share in ((dark, 1.0), (~dark, params.shot_noise_bright)):
        expected = 2 * rate * share * seconds * h * w / 2  # noise events and as many returns
        assert abs(mask.sum() - expected) < 5 * np.sqrt(expected), (mask.sum(), expected)
    pix = ev["y"].astype(np.int64) * w + ev["x"]
    order = np.lexsort((ev["t"], pix))
    pix, t, pol = pix[order], ev["t"][order], ev["p"][order]
    starts = np.flatnonzero(np.r_[True, pix[1:] != pix[:-1]])
    ends = np.r_[starts[1:], pix.size]
    pairs = 0
    for a, b in zip(starts, ends, strict=True):  # each pixel's events: (noise, its return), (noise, return), ...
        n = (b - a) // 2 * 2
        first, then = slice(a, a + n, 2), slice(a + 1, a + n, 2)
        assert np.all(pol[first] != pol[then]) and np.all(t[then] - t[first] <= 5_000)
        pairs += n // 2
    assert pairs >= 0.99 * ev.size / 2  # only a last noise event whose return fell after the end is unpaired
    assert 0.45 < ev["p"].mean() < 0.55


def test_no_shot_noise_draws_nothing():
    """shot_noise_hz = 0 consumes no random numbers: recordings simulated before it existed stay bit-identical."""
    rng = np.random.default_rng(2)
    frames = [rng.uniform(0.1, 0.9, (20, 30)).astype(np.float32) for _ in range(4)]
    a = EventSimulator(frames[0], 0, SensorParams(noise_rate_hz=1.0), seed=4)
    b = EventSimulator(frames[0], 0, SensorParams(noise_rate_hz=1.0, shot_noise_hz=0.0, shot_noise_bright=0.9), seed=4)
    for k, f in enumerate(frames[1:], 1):
        assert a.step(f, k * 1000).tobytes() == b.step(f, k * 1000).tobytes()
    with pytest.raises(ValueError):
        SensorParams(shot_noise_hz=-1.0)
    with pytest.raises(ValueError):
        SensorParams(shot_noise_bright=1.5)


def edge(x0_px: float, speed_px_s: float, bright_left: bool, shape=(16, 48)):
    xs = np.arange(shape[1])

    def render(t):
        pos = x0_px + speed_px_s * t * 1e-6
        left = np.clip(pos - xs + 0.5, 0, 1)  # 1 left of the edge, 0 right of it, linear across one pixel
        img = 0.1 + 0.8 * (left if bright_left else 1 - left)
        return np.broadcast_to(img, shape).astype(np.float32)

    return render


@pytest.mark.parametrize("bright_left", [True, False])
def test_moving_edge_fires_where_and_when_it_passes(bright_left):
    ev = simulate(edge(8, 100.0, bright_left), frame_times(300_000, 1000), QUIET)
    assert ev.size > 0
    assert set(ev["p"].tolist()) == {1 if bright_left else 0}  # brightening pixels fire ON, darkening OFF
    assert ev["x"].min() >= 8 and ev["x"].max() <= 8 + 30  # only the columns the edge swept
    # each column fires while the edge crosses it: t in ((x - 8.5) / 100 s, (x - 7.5) / 100 s)
    centre = (ev["x"] - 8.0) * 10_000
    assert np.all(np.abs(ev["t"] - centre) <= 5_000 + 1000)
    per_pixel = np.bincount(ev["y"].astype(int) * 48 + ev["x"], minlength=16 * 48)
    swept = per_pixel.reshape(16, 48)[:, 9:37]
    expected = np.log(0.9 + 0.01) - np.log(0.1 + 0.01)
    assert abs(swept.mean() - expected / 0.2) < 1.0  # one event per threshold's worth of contrast


def test_seed_fixes_everything():
    render = edge(8, 100.0, True)
    times = frame_times(100_000, 1000)
    a, b = (simulate(render, times, SensorParams(noise_rate_hz=5.0), seed=7) for _ in range(2))
    c = simulate(render, times, SensorParams(noise_rate_hz=5.0), seed=8)
    np.testing.assert_array_equal(a, b)
    assert a.size != c.size or not np.array_equal(a, c)


def test_threshold_mismatch_has_the_requested_spread():
    sim = EventSimulator(np.zeros((100, 100), np.float32), 0, SensorParams(threshold_on=0.3, threshold_sigma=0.03))
    assert sim.c_on.mean() == pytest.approx(0.3, abs=0.002)
    assert sim.c_on.std() == pytest.approx(0.03, rel=0.05)


def test_bad_frames_are_rejected():
    sim = EventSimulator(np.zeros((4, 4), np.float32), 100)
    with pytest.raises(ValueError, match="increase"):
        sim.step(np.zeros((4, 4), np.float32), 100)
    with pytest.raises(ValueError, match="shape"):
        sim.step(np.zeros((4, 5), np.float32), 200)
    with pytest.raises(ValueError, match="positive"):
        SensorParams(threshold_on=0)


def test_uint8_and_colour_frames_are_accepted():
    grey = np.full((4, 4), 200, np.uint8)
    sim = EventSimulator(np.zeros((4, 4, 3), np.uint8), 0, QUIET)
    ev = sim.step(np.stack([grey] * 3, axis=2), 1000)
    assert ev.size > 0 and set(ev["p"].tolist()) == {1}
    assert sim.step(grey, 2000).dtype == empty_events().dtype
