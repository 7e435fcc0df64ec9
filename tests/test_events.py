import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from spikelens.datasets import EVENT_DTYPE, as_events, make_events
from spikelens.datasets.events import pack_columns, scan_events, scan_events_reference


def test_dtype_is_the_documented_one():
    assert EVENT_DTYPE.names == ("t", "x", "y", "p")
    assert [EVENT_DTYPE[n] for n in EVENT_DTYPE.names] == [np.dtype(t) for t in ("<i8", "<i2", "<i2", "i1")]


def test_as_events_accepts_on_field():
    src = np.zeros(3, np.dtype([("t", "<u8"), ("x", "<u2"), ("y", "<u2"), ("on", "?")]))
    src["on"] = [True, False, True]
    src["t"] = [1, 2, 3]
    ev = as_events(src)
    assert ev["p"].tolist() == [1, 0, 1] and ev["t"].tolist() == [1, 2, 3]
    with pytest.raises(ValueError, match="need fields"):
        as_events(np.zeros(2, np.dtype([("a", "i4")])))


@given(
    st.lists(
        st.tuples(st.integers(-5, 2000), st.integers(-3, 40), st.integers(-3, 40), st.integers(-1, 2)), max_size=60
    )
)
def test_scan_matches_reference(rows):
    t, x, y, p = (list(c) for c in zip(*rows, strict=True)) if rows else ([], [], [], [])
    ev = make_events(np.array(t, np.int64), x, y, p)
    assert scan_events(ev, 32, 30) == scan_events_reference(ev, 32, 30)


def test_scan_edges():
    ev = make_events([0, 1, 1, 0], [0, 31, 32, 0], [0, 29, 0, 0], [0, 1, 1, 0])
    assert scan_events(ev, 32, 30) == (2, 3)
    assert scan_events(ev[:0], 32, 30) == (-1, -1)


@given(
    st.lists(
        st.tuples(st.integers(-5, 2000), st.integers(-3, 40), st.integers(-3, 40), st.integers(-1, 2)), max_size=60
    )
)
def test_pack_columns_matches_make_events_and_scan(rows):
    t, x, y, p = (np.array(c) for c in zip(*rows, strict=True)) if rows else ([np.zeros(0, int)] * 4)
    t, x, y, p = t.astype(np.int64), x.astype(np.int16), y.astype(np.int16), p.astype(np.int8)
    ev, bad, back = pack_columns(t, x, y, p, 32, 30)
    ref = make_events(t, x, y, p)
    np.testing.assert_array_equal(ev, ref)
    assert (bad, back) == scan_events_reference(ref, 32, 30)


@given(st.integers(0, 50), st.integers(0, 20), st.integers(0, 2**31))
def test_split_columns_matches_reference(n, at, seed):
    from spikelens.datasets.events import split_columns, split_columns_reference
    from spikelens.datasets.patterns import random_events

    ev = random_events(n, 40, 30, seed=seed % 1000)
    ev["t"] -= 2**40  # negative and large times survive
    got, want = ([np.full(80, -7, EVENT_DTYPE[c]) for c in "txyp"] for _ in range(2))
    split_columns(ev, tuple(got), at)
    split_columns_reference(ev, tuple(want), at)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)
    assert got[0][at : at + n].tolist() == ev["t"].tolist() and got[0][at + n :].tolist() == [-7] * (80 - at - n)
