import cv2
import numpy as np
import pytest

from spikelens.cli import main
from spikelens.datasets import FormatError, open_recording
from spikelens.datasets.simulator import SensorParams
from spikelens.pipelines.simulate import simulate_video


def write_video(path, n_frames=30, fps=100.0, size=(64, 48)):
    w, h = size
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert out.isOpened()
    for i in range(n_frames):
        frame = np.full((h, w, 3), 40, np.uint8)
        frame[:, 10 + i : 20 + i] = 220  # a bright bar moving one pixel a frame to the right
        out.write(frame)
    out.release()


def test_video_to_h5(tmp_path):
    src, dst = tmp_path / "bar.avi", tmp_path / "bar.h5"
    write_video(src)
    n = simulate_video(src, dst, SensorParams(noise_rate_hz=0), seed=1)
    with open_recording(dst) as rec:
        ev = rec.load()
        assert (rec.meta.width, rec.meta.height) == (64, 48) and rec.meta.extra["fps"] == pytest.approx(100.0)
    assert ev.size == n > 0 and ev["t"].max() <= 290_000
    # only the leading edge (brightening: ON) reaches x >= 40, only the trailing one (OFF) crosses x < 20
    lead = ev[ev["x"] >= 40]
    trail = ev[(ev["x"] >= 10) & (ev["x"] < 20)]
    assert lead.size > 100 and trail.size > 100
    assert lead["p"].mean() > 0.9 and trail["p"].mean() < 0.1


def test_bad_video_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "not_a_video.mp4"
    bad.write_bytes(b"\0" * 1000)
    with pytest.raises(FormatError, match="not_a_video"):
        simulate_video(bad, tmp_path / "out.h5")
    assert not (tmp_path / "out.h5").exists()
    assert main(["simulate", "video", str(bad), str(tmp_path / "out.h5")]) == 2
    assert "not_a_video.mp4" in capsys.readouterr().err
    assert main(["simulate", "video", str(bad), str(tmp_path / "out.txt")]) == 2


def test_cli_video(tmp_path):
    src = tmp_path / "bar.avi"
    write_video(src, n_frames=10)
    assert main(["simulate", "video", str(src), str(tmp_path / "o.h5"), "--size", "32", "24", "-q"]) == 0
    with open_recording(tmp_path / "o.h5") as rec:
        assert (rec.meta.width, rec.meta.height) == (32, 24) and len(rec.load()) > 0
    counts = []
    for shot in ("0", "200"):  # the low-light option reaches the sensor: a dark video gains noise pairs
        out = tmp_path / f"shot{shot}.h5"
        argv = ["simulate", "video", str(src), str(out), "--noise-hz", "0", "--shot-noise-hz", shot, "-q"]
        assert main(argv) == 0
        with open_recording(out) as rec:
            counts.append(len(rec.load()))
    assert counts[1] > counts[0] + 1000
