import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from spikelens.datasets.events import make_events
from spikelens.datasets.filters import background_activity_filter, background_activity_filter_reference, hot_pixel_mask
from spikelens.datasets.patterns import random_events, rotating_bar


@given(n=st.integers(0, 400), size=st.integers(1, 8), dt=st.integers(1, 5000), seed=st.integers(0, 999))
def test_kernel_matches_reference(n, size, dt, seed):
    ev = random_events(n, size, size, rate_hz=1e5, seed=seed)
    np.testing.assert_array_equal(
        background_activity_filter(ev, size, size, dt), background_activity_filter_reference(ev, size, size, dt)
    )


def test_keeps_edges_and_drops_isolated_noise():
    bar = rotating_bar(64, 64, n_events=20_000, noise_fraction=0.0, seed=1)
    noise = random_events(300, 64, 64, rate_hz=300.0, seed=2)  # about a second of shot noise
    keep_bar = background_activity_filter(bar, 64, 64, 10_000)
    keep_noise = background_activity_filter(noise, 64, 64, 10_000)
    assert keep_bar.mean() > 0.9 and keep_noise.mean() < 0.05


def test_state_carries_across_packets():
    ev = make_events([0, 10], [5, 6], [5, 5], [1, 1])
    last = np.full(100, np.iinfo(np.int64).min // 2, np.int64)
    assert not background_activity_filter(ev[:1], 10, 10, 100, last)[0]
    assert background_activity_filter(ev[1:], 10, 10, 100, last)[0]


def test_hot_pixel_mask():
    counts = np.ones(1000, np.int64) * 10
    counts[[3, 500]] = 5000
    assert np.flatnonzero(hot_pixel_mask(counts)).tolist() == [3, 500]
    assert not hot_pixel_mask(np.zeros(10)).any()
