import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from spikelens.datasets import RecordingMeta, SensorSize, make_events
from spikelens.datasets.patterns import random_events, sai_points
from spikelens.datasets.sai_scene import SAIScene
from spikelens.datasets.sensor_size import DAVIS346
from spikelens.refocus import (
    ESAI_TEST_ROI,
    CheckedEvents,
    RefocusError,
    accumulate,
    autofocus,
    check_events,
    depth_for_rate,
    focal_stack,
    pack_frames,
    pack_frames_esai,
    sharpness,
    shift_rate,
    time_surface,
)
from spikelens.refocus import reference as ref

SENSOR = SensorSize(34, 26)


def scene(t_ref: int, sensor: SensorSize = SENSOR, fx: float = 320.0, v: float = 0.177) -> SAIScene:
    return SAIScene(fx=fx, v=v, t_ref_us=t_ref, sensor=sensor)


@st.composite
def streams(draw, max_size=300):
    n = draw(st.integers(0, max_size))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    ev = make_events(
        np.sort(rng.integers(0, draw(st.integers(1, 50_000)), n)),
        rng.integers(0, SENSOR.width, n),
        rng.integers(0, SENSOR.height, n),
        rng.integers(0, 2, n) if draw(st.booleans()) else np.full(n, draw(st.integers(0, 1))),  # all-ON/all-OFF too
    )
    return ev


rates = st.one_of(
    st.just(0.0),
    st.floats(-3000, 3000, allow_nan=False),
    st.tuples(st.floats(-3000, 3000, allow_nan=False), st.floats(-3000, 3000, allow_nan=False)),
)
rois = st.one_of(st.none(), st.just((0, 0, 26, 34)), st.just((3, 5, 10, 20)), st.just((25, 33, 1, 1)))


@given(ev=streams(), rate=rates, n_bins=st.integers(1, 12), roi=rois, t_ref=st.integers(-10_000, 60_000))
def test_pack_frames_matches_reference(ev, rate, n_bins, roi, t_ref):
    got = pack_frames(ev, rate, t_ref, n_bins, SENSOR, roi)
    want = ref.pack_frames_reference(ev, rate, t_ref, n_bins, SENSOR, roi)
    assert got.dtype == want.dtype == np.int16
    np.testing.assert_array_equal(got, want)


@given(
    ev=streams(),
    depth=st.floats(0.05, 10),
    n_bins=st.integers(1, 12),
    roi=rois,
    t_ref=st.integers(-10_000, 60_000),
)
@pytest.mark.slow
def test_esai_mode_matches_transcription(ev, depth, n_bins, roi, t_ref):
    args = (ev, scene(t_ref), depth, n_bins, roi)
    np.testing.assert_array_equal(pack_frames_esai(*args), ref.pack_frames_esai_reference(*args))


@given(ev=streams(), rate=rates, t_ref=st.integers(-10_000, 60_000))
def test_images_match_reference(ev, rate, t_ref):
    np.testing.assert_array_equal(
        accumulate(ev, rate, t_ref, SENSOR), ref.accumulate_reference(ev, rate, t_ref, SENSOR)
    )
    np.testing.assert_array_equal(
        time_surface(ev, rate, t_ref, SENSOR, 5000.0), ref.time_surface_reference(ev, rate, t_ref, SENSOR, 5000.0)
    )


def test_edge_cases_single_event_borders_and_t1():
    ev = make_events([5], [33], [25], [1])  # one event in the bottom-right corner
    f = pack_frames(ev, 0.0, 0, 1, SENSOR)
    assert f.shape == (1, 2, 26, 34) and f[0, 0, 25, 33] == 1 and f.sum() == 1  # ON: channel 0
    assert pack_frames(ev, 1e6, 0, 1, SENSOR).sum() == 0  # shifted off the sensor: dropped
    assert pack_frames(make_events([], [], [], []), 50.0, 0, 4, SENSOR).sum() == 0
    esai = pack_frames_esai(ev, scene(5), 1.0, 3)
    assert esai[0, 0, 25, 33] == 1  # a single event: zero interval, bin 0


def test_manual_refocus_formula_and_bins():
    # x' = x + rint((t - t_ref) * rate); rate 1e5 px/s = 0.1 px/us
    ev = make_events([0, 10, 24, 35, 39], [10, 10, 10, 10, 10], [1, 1, 1, 1, 1], [1, 0, 1, 1, 0])
    f = pack_frames(ev, 1e5, 20, 4, SENSOR)  # bins of 10 us over [0, 40)
    assert f[0, 0, 1, 8] == 1 and f[1, 1, 1, 9] == 1 and f[2, 0, 1, 10] == 1  # channel 0 = ON
    assert f[3, 0, 1, 12] == 1 and f[3, 1, 1, 12] == 1  # 11.5 and 11.9 round to 12 (11.5: half to even)
    assert f.sum() == 5


def test_saturation_instead_of_wraparound():
    ev = make_events(np.arange(40_000), np.zeros(40_000), np.zeros(40_000), np.ones(40_000))
    assert pack_frames(ev, 0.0, 0, 1, SENSOR)[0, 0, 0, 0] == 32767
    assert pack_frames(ev, 0.0, 0, 1, SENSOR, dtype=np.int32)[0, 0, 0, 0] == 40_000


def test_esai_keeps_events_shifted_off_the_sensor_at_their_original_x():
    """E-SAI: ``valid_ind = (x+shift_x >= 0) * (x+shift_x < img_size[1]); x[valid_ind] += shift_x[valid_ind]``."""
    ev = make_events([0, 1_000_000], [0, 5], [2, 2], [1, 1])  # the first would shift to x = -28
    f = pack_frames_esai(ev, scene(500_000), 1.0, 1)
    assert f.sum() == 2 and f[0, 0, 2, 0] == 1 and f[0, 0, 2, 33] == 1  # the second shifts to 5 + 28 = 33
    # bins span ALL events (minT/maxT before any filtering), so a crop does not move the bin edges
    ev = make_events([0, 500_000, 1_000_000], [0, 20, 20], [2, 2, 2], [1, 1, 0])
    cropped = pack_frames_esai(ev, scene(500_000), 100.0, 2, roi=(0, 10, 26, 24))
    assert cropped[1, 0, 2, 10] == 1 and cropped[1, 1, 2, 10] == 1 and cropped.sum() == 2


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_esai_mode_is_bit_identical_on_simulated_scenes(seed):
    """Full DAVIS346 sensor and E-SAI's 256x256 test crop, against the line-by-line transcription."""
    from spikelens.datasets.simulator.sai import SAIConfig, make_scene, simulate_scene

    rng = np.random.default_rng(seed)
    events, meta = simulate_scene(make_scene("procedural:shapes:7", rng, SAIConfig(duration_us=400_000)), rng)
    sai = SAIScene.from_events(meta, events)
    for roi in (None, (2, 45, 256, 256)):
        args = (events, sai, sai.depth, 30, roi)
        np.testing.assert_array_equal(pack_frames_esai(*args), ref.pack_frames_esai_reference(*args))


def test_bad_inputs_raise_refocus_error():
    ev = random_events(100, 34, 26)
    with pytest.raises(RefocusError, match="not sorted"):
        pack_frames(ev[::-1].copy(), 10.0, 0, 4, SENSOR)
    bad = ev.copy()
    bad["p"][7] = 3
    with pytest.raises(RefocusError, match="event 7 has a polarity"):
        pack_frames(bad, 10.0, 0, 4, SENSOR)
    with pytest.raises(RefocusError, match="does not fit"):
        pack_frames(ev, 10.0, 0, 4, SENSOR, roi=(20, 0, 10, 10))
    with pytest.raises(RefocusError, match="at least one time bin"):
        pack_frames(ev, 10.0, 0, 0, SENSOR)
    with pytest.raises(RefocusError, match="EVENT_DTYPE"):
        pack_frames(np.zeros(3), 10.0, 0, 4, SENSOR)
    with pytest.raises(RefocusError, match="depth must be positive"):
        shift_rate(320, 0.177, 0)
    with pytest.raises(RefocusError, match="not sorted"):
        autofocus(ev[::-1].copy(), scene(0))
    with pytest.raises(RefocusError, match="SensorSize"):
        pack_frames(ev, 10.0, 0, 4, (26, 34))  # a bare tuple has no order: refused, never transposed


def test_geometry():
    assert shift_rate(320, 0.177, 1.0) == pytest.approx(56.64)
    assert depth_for_rate(320, 0.177, 56.64) == pytest.approx(1.0)
    meta = RecordingMeta(None, "esai-npy", 346, 260, extra={"fx": 320.0, "v": 0.177, "t_ref_us": 5, "depth": 1.2})
    g = SAIScene.from_meta(meta, (0, 100)).require_geometry()
    assert (g.fx, g.t_ref_us, g.depth, g.sensor) == (320.0, 5, 1.2, DAVIS346)
    assert g.rate(1.2) == pytest.approx(320 * 0.177 / 1.2) and g.rate(np.inf) == 0.0
    with pytest.raises(RefocusError, match="no SAI metadata"):
        SAIScene.from_meta(RecordingMeta(None, "x", 1, 1), (0, 100)).require_geometry()
    with pytest.raises(RefocusError, match="no SAI metadata"):
        SAIScene.from_meta(RecordingMeta(None, "x", 1, 1), (0, 100)).rate(1.0)
    with pytest.raises(TypeError, match="SensorSize"):
        SAIScene(fx=1.0, v=1.0, t_ref_us=0, sensor=(260, 346))


def test_checked_events_are_checked_once_and_stay_checked_only_while_sorted():
    ev = random_events(1000, 34, 26)
    ok = check_events(ev)
    assert isinstance(ok, CheckedEvents) and check_events(ok) is ok and not ok.flags.writeable
    with pytest.raises(ValueError):
        ok["t"][0] = 5  # read-only: nothing can unsort it in place
    assert isinstance(ok[10:500], CheckedEvents) and isinstance(ok[::3], CheckedEvents)
    assert isinstance(ok[ok["p"] == 1], CheckedEvents)  # a boolean selection keeps the order
    for unordered in (ok[::-1], ok[np.array([5, 1, 3])], np.concatenate([ok, ok]), ok["t"]):
        assert not isinstance(unordered, CheckedEvents)
    with pytest.raises(RefocusError, match="not sorted"):
        accumulate(ok[::-1], 0.0, 0, SENSOR)  # the reversed view is checked again, and refused


def test_sai_scene_reads_metadata_in_one_place():
    """t_ref: explicit value, else the file's, else the middle of the recording (the one rule)."""
    aps = np.zeros((2, 3, 4), np.uint8)
    extra = {"fx": 320, "v": 0.177, "depth": 1.5, "occ_free_aps": aps[0], "occ_aps": aps, "occ_aps_ts_us": [1, 2]}
    meta = RecordingMeta(None, "esai-npy", 4, 3, extra=extra)
    mid = SAIScene.from_meta(meta, (1_000, 3_000))
    assert (mid.t_ref_us, mid.fx, mid.depth) == (2_000, 320.0, 1.5)
    assert mid.ground_truth.shape == (3, 4) and mid.aps.shape == (2, 3, 4) and mid.aps_t_us.tolist() == [1, 2]
    assert SAIScene.from_meta(RecordingMeta(None, "x", 4, 3, extra={"t_ref_us": 7}), (0, 10)).t_ref_us == 7
    explicit = SAIScene.from_meta(meta, (1_000, 3_000), fx=100.0, t_ref_us=9)
    assert (explicit.fx, explicit.v, explicit.t_ref_us) == (100.0, 0.177, 9)
    assert not SAIScene.from_meta(RecordingMeta(None, "x", 4, 3), None).has_geometry


@pytest.mark.parametrize("depth", [0.6, 1.0, 1.7])
def test_autofocus_finds_the_textured_plane_behind_an_occluder(depth):
    ev, t_ref = sai_points(depth=depth, occluder_depth=0.35, n_events=300_000, seed=int(depth * 10))
    result = autofocus(ev, scene(t_ref, DAVIS346))
    assert abs(result.depth - depth) / depth < 0.02
    assert result.occluded and abs(result.occluder_depth - 0.35) / 0.35 < 0.02
    assert np.all(np.diff(result.depths) >= 0) and np.all(np.diff(result.behind_depths) >= 0)
    assert result.behind_depths.min() >= result.occluder_depth / 0.85 - 1e-9  # it looks only behind the occluder
    near = abs(result.behind_depths - depth) < 0.03 * depth
    assert result.behind_scores[near].max() > 5 * np.median(abs(result.behind_scores))


def test_focal_stack_is_sharpest_at_the_true_depth():
    ev, t_ref = sai_points(depth=1.0, occluder_depth=None, n_events=200_000, seed=1)
    stack = focal_stack(ev, scene(t_ref, DAVIS346), [0.8, 0.9, 1.0, 1.1, 1.25])
    for metric in ("variance", "gradient", "squares"):
        assert int(np.argmax(sharpness(stack, metric))) == 2
    with pytest.raises(RefocusError, match="unknown sharpness"):
        sharpness(stack, "laplace")


def test_esai_test_roi_fits_davis346():
    ev, t_ref = sai_points(n_events=50_000, seed=2)
    f = pack_frames_esai(ev, scene(t_ref, DAVIS346), 1.0, 30, ESAI_TEST_ROI)
    assert f.shape == (30, 2, 256, 256) and f.dtype == np.float32 and f.sum() > 0


def test_fast_rounding_equals_rint_including_halves():
    from spikelens.refocus.kernels import round_half_even

    rng = np.random.default_rng(0)
    values = np.concatenate(
        [
            rng.uniform(-1e7, 1e7, 100_000),
            np.arange(-1000, 1000) + 0.5,
            [0.0, -0.0, 0.49999999999999994, 2.0**50 + 0.5, -(2.0**50) - 1.5],
        ]
    )
    got = np.array([round_half_even(v) for v in values[:2000]] + [round_half_even(v) for v in values[-5:]])
    want = np.rint(np.concatenate([values[:2000], values[-5:]])).astype(np.int64)
    np.testing.assert_array_equal(got, want)


def test_absurd_rates_are_rejected():
    ev = random_events(10, 34, 26)
    with pytest.raises(RefocusError, match="over 2\\*\\*51 px"):
        pack_frames(ev, 1e300, 0, 2, SENSOR)
    with pytest.raises(RefocusError, match="not finite"):
        accumulate(ev, float("nan"), 0, SENSOR)
