"""The accumulation unfolded by the integrated map (refocus.unfold): what the occluder's transitions add.

The slide is along x, so the signed events carry no vertical gradient: an
edge that spans the image is invisible to the integration. Each cover and
uncover fires |L - L_occluder| / C events, so the accumulation sees it.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_integrate import DEPTH, SEEN, H, _scene

from spikelens.datasets.simulator.sensor import SensorParams
from spikelens.refocus.integrate import integrate
from spikelens.refocus.unfold import LEVELS, agreement, forward_gradient, unfold

C = 0.15
COVER = 0.4


@pytest.mark.parametrize("shade", [0.05, float(np.exp(-1.2))])
def test_an_edge_across_the_image_comes_back(shade):
    """log I = 0.3 sin(2 pi x / 24) - 1.5, plus 0.6 below row 24: an edge along x that no event's gradient
    sees. Correlation with the true log image over the seen columns (what an affine fit scores), measured:
    levelled 0.42 and 0.46, unfolded 0.89 and 0.99. With the fence darker than everything (shade 0.05) the
    accumulation is the fold's linear side and correlates 0.84 itself; with the shade inside the target's
    range (exp(-1.2)) it folds (0.00), and the grating says which rows lie above the shade and which below.
    Along each row the grating stays (median correlation 0.64 and 0.98; levelled 0.76 and 0.95: the dark
    fence's accumulation is noisier than the events' gradient, and its low frequencies come with it)."""
    lower = np.arange(H) >= H // 2

    def target(x):
        return 0.3 * np.sin(2 * np.pi * x / 24.0)[None, :] + np.where(lower, 0.6, 0.0)[:, None] - 1.5

    sensor = SensorParams(C, C, 0.01, noise_rate_hz=0.2)
    events, sai, _rate, truth = _scene(target, cover=COVER, sensor=sensor, seed=7, shade=shade)
    r = integrate(events, sai, DEPTH)

    def corr(image):
        return float(np.corrcoef(image[:, SEEN].ravel(), truth[:, SEEN].ravel())[0, 1])

    assert corr(r.levelled) < 0.6  # the failure this fixes, so the test can fail
    u = r.unfolded
    assert u.used and u.kappa > 0
    assert corr(u.log) > 0.85
    assert np.all(np.diff(u.offsets) >= -1e-9) or np.all(np.diff(u.offsets) <= 1e-9)  # one jump, at the edge
    jump = int(np.argmax(np.abs(np.diff(u.offsets))))
    assert abs(jump + 1 - H // 2) <= 1
    if shade > 0.1:
        assert abs(corr(r.accumulation)) < 0.3
    grating = truth[0, SEEN] - truth[0, SEEN].mean()
    assert np.median([np.corrcoef(row, grating)[0, 1] for row in u.log[:, SEEN]]) > 0.5  # the grating stays


def test_unfold_recovers_row_levels_by_hand():
    """Rows that lost their levels (each centred, as the events leave them), and an accumulation that is
    exactly kappa |L - L_o| + rho |g| + nu plus noise, with the occluder's level inside the picture's
    range: the row levels come back to within two grid steps (the penalty on row-to-row changes holds
    some back by a step), the globals closely, the map with them."""
    rng = np.random.default_rng(11)
    h, w = 40, 90
    truth = np.cumsum(rng.standard_normal((h, w)) * 0.3, axis=1) + np.linspace(-3, 3, h)[:, None]
    truth[h // 2 :] += 2.0  # a level change no row sees
    shade = 0.5  # the occluder's level, inside the truth's range
    g = np.gradient(truth, axis=1)
    kappa, rho, nu, views = 0.8, 1.2, 0.3, 50.0
    a = kappa * np.abs(truth - shade) + rho * np.abs(g) + nu + 0.05 * rng.standard_normal((h, w))
    base = truth - truth.mean(1, keepdims=True)
    seen = np.ones(w, bool)
    u = unfold(base, a * views, np.full(w, views), g, seen)
    want = truth.mean(1) - shade
    step = 4 * np.ptp(base) / (LEVELS - 1)  # the level grid's spacing (at most)
    assert np.abs(u.offsets - want).max() < 2 * step
    assert u.kappa == pytest.approx(kappa, rel=0.1)
    assert u.rho == pytest.approx(rho, rel=0.1) and u.nu == pytest.approx(nu, abs=0.1)
    assert u.r2 > 0.9
    assert np.corrcoef(u.log.ravel(), truth.ravel())[0, 1] > 0.99
    assert np.corrcoef(base.ravel(), truth.ravel())[0, 1] < 0.5  # what the rows alone would have shown


def test_nothing_to_unfold_keeps_the_levelled_map():
    """No occluder (no transitions: the fit finds no fold), an empty accumulation, or no seen column: the
    map is the levelled one, centred."""
    events, sai, _rate, _ = _scene(
        lambda x: 0.5 * np.sin(2 * np.pi * x / 30.0) - 1.5, sensor=SensorParams(C, C, 0.01, noise_rate_hz=0.2)
    )
    r = integrate(events, sai, DEPTH)
    assert not r.unfolded.used
    np.testing.assert_allclose(r.unfolded.log, r.levelled - r.levelled.mean(), atol=1e-5)
    base = np.random.default_rng(0).standard_normal((8, 20))
    for acc, seen in ((np.zeros((8, 20)), np.ones(20, bool)), (np.ones((8, 20)), np.zeros(20, bool))):
        u = unfold(base, acc, np.ones(20), np.zeros((8, 20)), seen)
        assert not u.used
        np.testing.assert_allclose(u.log, base - base.mean(), atol=1e-5)


def test_a_bright_fence_keeps_the_map_below_its_shade():
    """A fence brighter than the whole target (shade 0.8 over log intensities -1.8 to -0.6): every pixel
    lies below the occluder's level. Measured, correlation with the true log image over the seen columns:
    the free fit folds and turns the map upside down (-0.97); the fit that keeps it below the shade is
    the one whose differences follow the events (agreement 0.12 against -0.12) and scores 0.96."""
    lower = np.arange(H) >= H // 2

    def target(x):
        return 0.3 * np.sin(2 * np.pi * x / 24.0)[None, :] + np.where(lower, 0.6, 0.0)[:, None] - 1.5

    sensor = SensorParams(C, C, 0.01, noise_rate_hz=0.2)
    events, sai, _rate, truth = _scene(target, cover=0.6, sensor=sensor, seed=7, shade=0.8)
    r = integrate(events, sai, DEPTH)

    def corr(image):
        return float(np.corrcoef(image[:, SEEN].ravel(), truth[:, SEEN].ravel())[0, 1])

    free = unfold(r.levelled, r.accumulation, r.visibility, r.gradient, r.seen, sides=(0,))
    assert corr(free.log) < -0.5  # the failure the choice fixes, so the test can fail
    u = r.unfolded
    assert u.side == -1 and u.agreement > free.agreement
    assert corr(u.log) > 0.9


def test_agreement_says_which_way_the_map_runs():
    """A map whose centred gradient the events measured: its own agreement is near 1, the map upside
    down near -1, and with a patch flipped (a fold on the wrong side there) in between."""
    rng = np.random.default_rng(3)
    truth = np.cumsum(rng.standard_normal((30, 80)) * 0.3, axis=1)
    g = np.gradient(truth, axis=1)  # centred, as the events give it
    seen = np.ones(80, bool)
    flipped = truth.copy()
    flipped[5:20, 20:50] *= -1
    assert agreement(truth, g, seen) > 0.95
    assert agreement(-truth, g, seen) < -0.95
    assert 0 < agreement(flipped, g, seen) < agreement(truth, g, seen) - 0.1
    fw = forward_gradient(g)
    np.testing.assert_allclose(fw[:, :-1], 0.5 * (g[:, :-1] + g[:, 1:]))
    np.testing.assert_array_equal(fw[:, -1], g[:, -1])


def test_the_row_path_kernel_is_its_numpy_twin():
    """Viterbi over random costs, with barred (infinite) levels and exact ties: the same path."""
    from spikelens.refocus.unfold import _row_path, row_path_reference

    rng = np.random.default_rng(5)
    for h, n in ((1, 5), (40, 65), (7, 3)):
        cost = rng.random((h, n))
        cost[rng.random((h, n)) < 0.2] = np.inf
        cost[:, 0] = rng.random(h)  # every row keeps a level
        jump = np.abs(np.subtract.outer(np.arange(n), np.arange(n))) * 0.3
        np.testing.assert_array_equal(_row_path(cost, jump), row_path_reference(cost, jump))
        ties = np.round(cost * 4) / 4  # many equal sums: the first minimum must win in both
        np.testing.assert_array_equal(_row_path(ties, jump), row_path_reference(ties, jump))


def test_the_folds_prefix_sums_are_the_table_sums():
    """sum_w |lt + c| r_w and sum_w (lt + c)^2 by sorted prefix sums equal the H x levels x W table's."""
    from spikelens.refocus.unfold import _Folds

    rng = np.random.default_rng(6)
    lt = rng.standard_normal((30, 50))
    lt[3, :10] = lt[3, 10]  # repeated values
    folds = _Folds.of(lt)
    table = np.abs(lt[:, None, :] + folds.levels[None, :, None])
    r = rng.standard_normal((30, 50))
    np.testing.assert_allclose(folds.dot(r), np.einsum("hlw,hw->hl", table, r), rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(folds.zz, np.einsum("hlw,hlw->hl", table, table), rtol=1e-10, atol=1e-9)
    j = rng.integers(0, folds.levels.size, 30)
    np.testing.assert_array_equal(folds.fold(j), table[np.arange(30), j])


def test_the_free_fit_comes_first():
    """It decides whether there is a fold at all, so a list of fits without it first is refused."""
    base = np.random.default_rng(0).standard_normal((8, 20))
    with pytest.raises(ValueError, match="free fit"):
        unfold(base, np.ones((8, 20)), np.ones(20), np.zeros((8, 20)), np.ones(20, bool), sides=(1, -1))
