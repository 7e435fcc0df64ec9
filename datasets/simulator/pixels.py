"""The DVS pixel model: level crossings of log intensity between two rendered frames.

Within one step every pixel's log intensity is taken to move linearly from
``log0`` (at ``t0``) to ``log1`` (at ``t1``), as in ESIM. A pixel fires an ON
(OFF) event when its level rises (falls) by its own threshold from the level
memorised at its last event, at the interpolated instant of the crossing, and
then memorises the level at that instant (a real pixel resets its
differencing amplifier). During the refractory period after an event it
cannot fire; if the change has passed the threshold when the period ends it
fires at once. So a big change yields several events per step, spaced by the
crossings, never by the frame clock.

:func:`emit_pixels` is the Numba kernel; :func:`emit_pixels_reference` is an
independent, vectorised NumPy version (rounds of "next event of every pixel")
that the tests hold it to, event for event and state for state.
"""

from __future__ import annotations

import numba as nb
import numpy as np

#: ``last_t`` of a pixel that has never fired.
NEVER = -1e18


@nb.njit(cache=True, nogil=True)
def emit_pixels(log0, log1, t0, t1, ref, last_t, c_on, c_off, refractory, width, start, out_t, out_x, out_y, out_p):
    """Events of pixels ``start..`` for the step (t0, t1], written in pixel order.

    ``ref`` and ``last_t`` (float64, per pixel) are the state, updated in place.
    Returns ``(n, stop)``: events written, and the first pixel not processed
    (``log0.size`` when done). A pixel whose events do not fit in the output
    is left untouched, so the caller can grow the buffers and resume at ``stop``.
    """
    cap = out_t.size
    n = 0
    span = t1 - t0
    for i in range(start, log0.size):
        a = np.float64(log0[i])
        b = np.float64(log1[i])
        r = ref[i]
        on = np.float64(c_on[i])
        off = np.float64(c_off[i])
        if max(a, b) - r < on and r - min(a, b) < off:
            continue  # the level stays inside the threshold band all step: most pixels, most steps
        last = last_t[i]
        k = n
        t = np.float64(t0)
        while True:
            ta = max(t, last + refractory)
            if ta >= t1:
                break
            la = a + (b - a) * ((ta - t0) / span)
            d = la - r
            pol = -1
            te = ta
            if d >= on:
                pol = 1
            elif -d >= off:
                pol = 0
            elif b > la and b - r >= on:
                pol = 1
                te = t0 + ((r + on - a) / (b - a)) * span
                la = r + on
            elif b < la and r - b >= off:
                pol = 0
                te = t0 + ((r - off - a) / (b - a)) * span
                la = r - off
            if pol < 0:
                break
            if k >= cap:
                return n, i
            out_t[k] = np.int64(np.floor(te + 0.5))
            out_x[k] = i % width
            out_y[k] = i // width
            out_p[k] = pol
            k += 1
            r = la
            last = te
            t = te
        ref[i] = r
        last_t[i] = last
        n = k
    return n, log0.size


def emit_pixels_reference(log0, log1, t0, t1, ref, last_t, c_on, c_off, refractory, width):
    """All pixels' events as (t, x, y, p) arrays, in rounds; updates ``ref``/``last_t`` in place."""
    a = log0.astype(np.float64)
    b = log1.astype(np.float64)
    on = c_on.astype(np.float64)
    off = c_off.astype(np.float64)
    t = np.full(a.size, float(t0))
    live = np.ones(a.size, bool)
    out = []
    with np.errstate(divide="ignore", invalid="ignore"):
        while live.any():
            i = np.flatnonzero(live)
            ta = np.maximum(t[i], last_t[i] + refractory)
            la = a[i] + (b[i] - a[i]) * ((ta - t0) / (t1 - t0))
            d = la - ref[i]
            up_now, down_now = d >= on[i], -d >= off[i]
            down_now &= ~up_now
            up_x = ~(up_now | down_now) & (b[i] > la) & (b[i] - ref[i] >= on[i])
            down_x = ~(up_now | down_now | up_x) & (b[i] < la) & (ref[i] - b[i] >= off[i])
            fires = (ta < t1) & (up_now | down_now | up_x | down_x)
            level = np.where(up_x, ref[i] + on[i], np.where(down_x, ref[i] - off[i], la))
            te = np.where(up_x | down_x, t0 + ((level - a[i]) / (b[i] - a[i])) * (t1 - t0), ta)
            j, level, te = i[fires], level[fires], te[fires]
            pol = (up_now | up_x)[fires].astype(np.int8)
            out.append((np.floor(te + 0.5).astype(np.int64), j % width, j // width, pol))
            ref[j], last_t[j], t[j] = level, te, te
            live[i[~fires]] = False
    if not out:
        return tuple(np.zeros(0, dt) for dt in (np.int64, np.int64, np.int64, np.int8))
    return tuple(np.concatenate(c) for c in zip(*out, strict=True))
