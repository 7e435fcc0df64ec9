import cv2
import numpy as np
import pytest

from spikelens.datasets import FormatError, make_events, write_npz
from spikelens.datasets.bundled import bundled_sample
from spikelens.datasets.patterns import rotating_bar
from spikelens.datasets.recording import RecordingMeta
from spikelens.datasets.sensor_size import SensorSize
from spikelens.pipelines import display_frames as fr
from spikelens.pipelines.clock import Clock
from spikelens.pipelines.images import write_png
from spikelens.pipelines.jobs import Cancelled, Job
from spikelens.pipelines.spool import RATE_BIN_US, open_source
from spikelens.pipelines.video_export import export_video


def cancelled_job() -> Job:
    job = Job()
    job.cancel()
    return job


@pytest.fixture(scope="module")
def bar_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("pb") / "bar.npz"
    write_npz(path, rotating_bar(64, 48, n_events=50_000, seed=2), RecordingMeta(path, "npz", 64, 48))
    return path


def test_memory_and_spilled_sources_agree(bar_file):
    firsts = []
    small = open_source(bar_file, first_packet=lambda ev, meta: firsts.append(ev.size))
    spilled = open_source(bar_file, memory_events=10_000)
    try:
        assert firsts and small.n_events == spilled.n_events == 50_000
        assert spilled._h5 is not None and spilled._temp.exists() and small._events is not None
        for t0, t1 in [(0, 1000), (123_456, 400_000), (990_000, 2_000_000)]:
            np.testing.assert_array_equal(small.window(t0, t1), spilled.window(t0, t1))
        np.testing.assert_array_equal(small.last_n(500_000, 777), spilled.last_n(500_000, 777))
        assert small.rate_hz.sum() * RATE_BIN_US / 1e6 == pytest.approx(50_000)
        assert small.pixel_counts.sum() == 50_000 and small.sensor == SensorSize(64, 48)
    finally:
        temp = spilled._temp
        small.close()
        spilled.close()
    assert not temp.exists()


def test_large_hdf5_replays_from_the_file(bar_file, tmp_path):
    from spikelens.pipelines.convert import convert

    h5 = tmp_path / "bar.h5"
    convert(bar_file, h5)
    small, big = open_source(h5), open_source(h5, memory_events=40_000)
    try:
        assert small._events is not None and big._h5 is not None and big._temp is None
        np.testing.assert_array_equal(small.window(100_000, 300_000), big.window(100_000, 300_000))
        np.testing.assert_array_equal(small.rate_hz, big.rate_hz)
    finally:
        small.close()
        big.close()
    assert h5.exists()


def test_cancel_and_bad_files(bar_file, tmp_path):
    with pytest.raises(Cancelled):
        open_source(bar_file, job=cancelled_job())
    bad = tmp_path / "bad.aedat"
    bad.write_bytes(b"#!AER-DAT2.0\r\n" + b"\x01" * 7)
    with pytest.raises(FormatError, match=r"bad\.aedat"):
        open_source(bad)


def test_render_modes():
    ev = make_events([10, 20, 30, 40], [1, 1, 2, 3], [0, 0, 0, 1], [1, 1, 0, 1])
    s = fr.FrameSettings(saturation=4)
    pol = fr.render(ev, SensorSize(4, 2), s, 50)
    assert pol[0, 1] == int(128 + 2 * 127 / 4) and pol[0, 2] == int(128 - 127 / 4) and pol[0, 0] == 128
    count = fr.render(ev, SensorSize(4, 2), fr.FrameSettings(mode="count", saturation=2), 50)
    assert count[0, 1] == 255 and count[0, 2] == 127 and count[1, 3] == 127
    on = fr.render(ev, SensorSize(4, 2), fr.FrameSettings(mode="on", saturation=1), 50)
    off = fr.render(ev, SensorSize(4, 2), fr.FrameSettings(mode="off", saturation=1), 50)
    assert on[0, 2] == 0 and off[0, 2] == 255 and off[0, 1] == 0
    ts = fr.render(ev, SensorSize(4, 2), fr.FrameSettings(mode="time_surface", tau_us=10.0), 40)
    assert ts[1, 3] == 255 and ts[0, 2] < 128 and 128 < ts[0, 1] < ts[1, 3] and ts[0, 0] == 128


@pytest.mark.parametrize("scheme", fr.SCHEMES)
def test_luts(scheme):
    for signed in (True, False):
        table = fr.lut(scheme, signed)
        assert table.shape == (256, 3) and table.dtype == np.uint8
    assert len({tuple(c) for c in fr.lut(scheme, True)}) > 64


def test_frame_builder_slicing_roi_and_filters(bar_file):
    src = open_source(bar_file)
    fb = fr.FrameBuilder(src)
    f = fb.frame(500_000, fr.FrameSettings(window_us=10_000))
    assert f.n_events == src.window(490_000, 500_000).size and f.image.shape == (48, 64)
    assert fb.frame(500_000, fr.FrameSettings(slicing="count", events=1234)).n_events == 1234
    roi = fb.events(500_000, fr.FrameSettings(window_us=10_000, roi=(12, 16, 24, 32)))
    assert roi.size and roi["x"].min() >= 16 and roi["x"].max() < 48 and roi["y"].min() >= 12 and roi["y"].max() < 36
    denoised = fb.frame(500_000, fr.FrameSettings(window_us=10_000, denoise=True))
    assert 0 < denoised.n_events < f.n_events


def test_clock():
    c = Clock(0, 1_000_000, 0)
    assert c.advance(0.1, 33_000) and c.position_us == 100_000
    c.speed = 0.01
    c.advance(1.0, 33_000)
    assert c.position_us == 110_000
    c.speed = None
    c.advance(5.0, 33_000)
    assert c.position_us == 143_000
    c.speed = 100.0
    assert not c.advance(1.0, 33_000) and c.position_us == 1_000_000 and not c.playing
    c.loop = True
    c.seek(900_000)
    c.speed = 1.0
    assert c.advance(0.25, 33_000) and c.position_us == 150_000
    c.step(-10, 33_000)
    assert c.position_us == 0
    live = Clock(0, None, 0)  # open-ended: a live source has no end to stop at
    assert live.advance(100.0, 33_000) and live.position_us == 100_000_000 and live.playing is False
    live.seek(5 * 10**15)
    assert live.position_us == 5 * 10**15


def test_export_video_and_cancel(tmp_path):
    src = open_source(bundled_sample())
    fb, s = fr.FrameBuilder(src), fr.FrameSettings()
    out = tmp_path / "clip.mp4"
    seen = []
    n = export_video(fb, s, out, 0, 300_000, fps=20, job=Job(lambda d, t, _m: seen.append((d, t))))
    cap = cv2.VideoCapture(str(out))
    frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, frame = cap.read()
    cap.release()
    assert n == 6 and frames == 6 and ok and frame.shape == (128, 128, 3) and seen[-1] == (6, 6)
    with pytest.raises(Cancelled):
        export_video(fb, s, tmp_path / "gone.mp4", 0, 300_000, job=cancelled_job())
    assert not (tmp_path / "gone.mp4").exists() and not list(tmp_path.glob(".gone*"))
    png = tmp_path / "f.png"
    write_png(fr.to_rgb(fb.frame(500_000, s).image, s), png)
    assert cv2.imread(str(png)).shape == (128, 128, 3)
