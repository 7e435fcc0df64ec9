"""The viewer's session, driven without Qt: opening, the SAI policy, playback, live ticks, recording.

The window (tests/test_app*.py) only checks that it renders what this session returns.
"""

import time

import pytest

from spikelens.datasets.bundled import bundled_sample
from spikelens.datasets.streams import open_stream, parse_source
from spikelens.pipelines import viewer
from spikelens.pipelines.display_frames import FrameSettings
from spikelens.pipelines.jobs import Job
from spikelens.pipelines.viewer import ViewerSession, load


def loaded(path, previews=None):
    return load(path, (lambda ev, meta: previews.append((ev, meta))) if previews is not None else None, Job())


def test_a_file_opens_previews_first_and_plays_to_its_end():
    s = ViewerSession(FrameSettings(window_us=50_000))
    previews = []
    got = loaded(bundled_sample(), previews)
    first = s.preview(*previews[0])
    assert first is not None and first.image.shape == (128, 128) and first.n_events > 0
    s.open_file(got)
    assert s.preview(*previews[0]) is None  # a recording is on screen: no preview over it
    c = s.clock
    assert c.position_us == c.t_start_us + 50_000 and s.render().n_events > 0
    assert s.position_text().strip().startswith("0.050 s /")
    assert s.play() and s.playing
    s.set_speed(None)  # as fast as it goes: one window per tick
    ticks = 0
    while s.playing and ticks < 10_000:
        s.tick(0.015)
        ticks += 1
    # the 1 s sample from 50 ms in, 50 ms a tick: 19 ticks reach the end, the 20th stops there
    assert (c.t_start_us, c.t_end_us) == (0, 1_000_000)
    assert not s.playing and c.position_us == c.t_end_us and ticks == 20
    assert s.play() and c.position_us == c.t_start_us  # play at the end starts again
    s.set_loop(True)
    s.seek(c.t_end_us - 10)
    s.tick(0.015)
    assert s.playing and c.position_us < c.t_end_us  # looped round
    s.step(-3)
    assert not s.playing
    assert s.seek(c.t_start_us - 10**9).t1_us == c.t_start_us  # clamped
    rows = dict(s.info_rows())
    assert rows["file"] == bundled_sample().name and rows["events"] == f"{got.source.n_events:,}"
    s.close()
    assert s.source is None and s.render() is None and not s.play()


def test_the_roi_and_settings_change_what_the_next_frame_counts():
    s = ViewerSession()
    s.open_file(loaded(bundled_sample()))
    full = s.render().n_events
    s.set_roi((0, 0, 32, 32))
    assert s.render().n_events < full
    s.set_roi(None)
    assert s.render().n_events == full


def test_the_sai_view_gets_what_fits_and_is_told_why_not(sai_file, monkeypatch):
    s = ViewerSession()
    s.open_file(loaded(sai_file))
    assert s.sai.scene is not None and s.sai.scene.has_geometry and s.sai.events.size == s.source.n_events
    assert s.sai.scene.sensor == (96, 64)
    monkeypatch.setattr(viewer, "SAI_EVENT_LIMIT", 1000)
    s.open_file(loaded(sai_file))
    assert s.sai.scene is None and "up to 1,000 events" in s.sai.why_not


def test_a_live_stream_follows_its_newest_event_records_and_reports_its_end_once(tmp_path, request):
    s = ViewerSession()
    request.addfinalizer(s.close)  # a failed assertion must not leave the pump thread running at exit
    s.open_stream("sim:gesture:3", open_stream(parse_source("sim:gesture:3")))
    assert not s.play() and s.sai.scene is None
    deadline = time.monotonic() + 30
    tick = s.live_tick()
    while (tick.frame is None) and time.monotonic() < deadline:
        time.sleep(0.05)
        tick = s.live_tick(with_rates=True)
    assert tick.frame is not None and tick.frame.image.shape == (128, 128)
    # the pump keeps appending on its own thread: the tick follows the newest event of its moment
    before = s.live.buffer.t_last_us
    assert s.live_tick().frame is not None
    after = s.live.buffer.t_last_us
    assert before + 1 <= s.clock.position_us <= after + 1 and s.position_text().startswith("live")
    frozen_at = s.clock.position_us
    time.sleep(0.2)
    assert s.live_tick(frozen=True).frame is None and s.clock.position_us == frozen_at
    out = tmp_path / "live.h5"
    s.start_recording(out)
    time.sleep(0.3)
    s.stop_recording()
    saved = None
    while saved is None and time.monotonic() < deadline:
        time.sleep(0.05)
        saved = s.live_tick().saved
    assert saved is not None and saved.path == out and saved.events > 0 and out.exists()
    assert s.live_tick().saved is None  # reported once
    s.stop_stream()
    ends = [s.live_tick().ended for _ in range(3)]
    assert ends[0] and ends[1:] == [None, None]
    with pytest.raises(ValueError):
        ViewerSession().start_recording(out)
    s.close()
    assert s.live is None
