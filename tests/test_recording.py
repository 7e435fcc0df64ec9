import warnings

import numpy as np
import pytest

from spikelens.datasets import FormatError, Recording, RecordingMeta, make_events
from spikelens.datasets.patterns import random_events, rotating_bar

from helpers import assert_events_equal


class Chunked(Recording):
    """A reader that hands out pre-cut raw chunks, to drive the ordering logic."""

    def __init__(self, chunks):
        super().__init__(None, RecordingMeta(None, "test", 64, 64))
        self.chunks = chunks

    def _raw_chunks(self, max_events):
        yield from self.chunks


def test_packets_sort_disorder_between_neighbouring_chunks():
    a = make_events([1, 5, 9], [0, 1, 2], [0, 0, 0], [1, 1, 1])
    b = make_events([7, 8, 12], [3, 4, 5], [0, 0, 0], [0, 0, 0])  # 7, 8 belong before 9
    with pytest.warns(UserWarning, match="sorted"):
        out = np.concatenate(list(Chunked([a, b]).packets()))
    assert out["t"].tolist() == [1, 5, 7, 8, 9, 12]
    assert out["x"].tolist() == [0, 1, 3, 4, 2, 5]


def test_packets_reject_disorder_beyond_one_chunk():
    a = make_events([1, 5], [0, 0], [0, 0], [1, 1])
    b = make_events([6, 7], [0, 0], [0, 0], [1, 1])
    c = make_events([2, 8], [0, 0], [0, 0], [1, 1])  # 2 < 5, already emitted
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(FormatError, match="go back from 5 us to 2 us"):
            list(Chunked([a, b, c]).packets())
        assert Chunked([a, b, c]).load()["t"].tolist() == [1, 2, 5, 6, 7, 8]


def test_generic_window_and_stats():
    ev = random_events(5000, 64, 64, rate_hz=1e4, seed=4)
    rec = Chunked([ev[i : i + 700] for i in range(0, 5000, 700)])
    t0, t1 = int(ev["t"][1234]), int(ev["t"][3456])
    assert_events_equal(rec.window(t0, t1), ev[(ev["t"] >= t0) & (ev["t"] < t1)])
    st = rec.stats()
    assert (st.events, st.t_start_us, st.t_end_us) == (5000, ev["t"][0], ev["t"][-1])
    assert st.duration_us == ev["t"][-1] - ev["t"][0]
    assert Chunked([]).stats().duration_us == 0


def test_rotating_bar_pattern_is_sorted_and_in_bounds():
    ev = rotating_bar(100, 80, n_events=10_000, seed=1)
    assert np.all(np.diff(ev["t"]) >= 0)
    assert ev["x"].max() < 100 and ev["y"].max() < 80
    assert 0.4 < ev["p"].mean() < 0.6
