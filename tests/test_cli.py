import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from spikelens.cli import main
from spikelens.datasets import open_recording
from spikelens.datasets.bundled import bundled_sample
from spikelens.datasets.formats import aedat3
from spikelens.datasets.patterns import random_events

from helpers import assert_events_equal

JSON_KEYS = ["format", "width", "height", "events", "t_start_us", "t_end_us", "duration_us"]


def test_info_json_contract(capsys):
    assert main(["info", str(bundled_sample()), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert list(info) == JSON_KEYS
    assert info["format"] == "hdf5" and (info["width"], info["height"]) == (128, 128)
    assert info["events"] == 80_000 and info["duration_us"] == info["t_end_us"] - info["t_start_us"]
    assert main(["info", str(bundled_sample()), "--json", "--meta"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert list(info) == [*JSON_KEYS, "camera", "extra"] and info["extra"]["seed"] == 0


def test_info_defaults_to_the_bundled_sample(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "rotating_bar.h5" in out and re.search(r"^events: +80000$", out, re.M)
    # every value starts in one column, after at least one space: no long key runs into its value
    columns = {len(m.group(1)) for m in re.finditer(r"^(\S+: +)\S", out, re.M)}
    assert len(columns) == 1 and all(line.count(": ") >= 1 for line in out.splitlines())


def test_bad_file_is_one_line_and_status_2(tmp_path):
    bad = tmp_path / "broken.aedat"
    bad.write_bytes(b"#!AER-DAT3.1\r\n#!END-HEADER\r\n" + b"\x01" * 30)
    r = subprocess.run([sys.executable, "-m", "spikelens", "info", str(bad)], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.count("\n") == 1 and str(bad) in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("suffix", [".h5", ".npz"])
def test_convert_is_lossless(tmp_path, suffix, capsys):
    ev = random_events(20_000, 128, 128, seed=9)
    src = tmp_path / "user02_led.aedat"
    src.write_bytes(aedat3.header_text() + aedat3.encode_polarity_packet(ev))
    out = tmp_path / f"out{suffix}"
    assert main(["convert", str(src), str(out), "-q"]) == 0
    rec = open_recording(out)
    assert_events_equal(rec.load(), ev)
    assert (rec.meta.width, rec.meta.height, rec.meta.camera) == (128, 128, "DVS128")
    assert rec.meta.extra["source_format"] == "aedat3"


def test_convert_failure_leaves_nothing_behind(tmp_path):
    src = tmp_path / "bad.aedat"
    src.write_bytes(aedat3.header_text() + aedat3.encode_polarity_packet(random_events(100, 128, 128))[:-4])
    out = tmp_path / "out.h5"
    out.write_bytes(b"previous result")
    assert main(["convert", str(src), str(out), "-q"]) == 2
    assert out.read_bytes() == b"previous result"  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.aedat", "out.h5"]  # no temp files


def test_convert_rejects_unknown_suffix(tmp_path, capsys):
    assert main(["convert", str(bundled_sample()), str(tmp_path / "x.csv")]) == 2
    assert "must end in .h5" in capsys.readouterr().err


def test_bundled_sample_is_a_rotating_bar():
    """What bundled_sample() says it is: DVS128, 1 s, 80 k events of a bar turning once a second about the
    centre, ON on its leading edge. In every 25 ms slice the events' principal axis is the bar's angle, and
    ON and OFF lie on opposite sides of it, leading side first."""
    with open_recording(bundled_sample()) as rec:
        ev, m = rec.load(), rec.meta
    assert (m.width, m.height) == (128, 128) and ev.size == 80_000 and ev["t"][-1] - ev["t"][0] < 1_000_000
    for t0 in range(0, 1_000_000, 25_000):
        s = ev[(ev["t"] >= t0) & (ev["t"] < t0 + 25_000)]
        x, y = s["x"] - 63.5, s["y"] - 63.5
        near = np.hypot(x, y) < 55  # the bar's reach; drops most of the uniform noise
        x, y, p = x[near], y[near], s["p"][near]
        _, vecs = np.linalg.eigh(np.cov(np.stack([x, y])))
        found = np.arctan2(vecs[1, 1], vecs[0, 1]) % np.pi
        want = (2 * np.pi * (t0 + 12_500) / 1e6) % np.pi
        assert min(abs(found - want), np.pi - abs(found - want)) < np.radians(8), t0
        a = 2 * np.pi * s["t"][near] / 1e6
        side = -x * np.sin(a) + y * np.cos(a)  # distance along the bar's direction of motion
        assert np.median(side[p == 1]) > 0.5 and np.median(side[p == 0]) < -0.5, t0


def _actions(parser):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from ((f"{name} {n}", a) for n, a in _actions(sub))
        elif not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            yield action.dest, action


@pytest.mark.slow
def test_every_argument_has_help_and_defaults_show():
    from spikelens.cli import build_parser

    parser = build_parser()
    missing = [name for name, a in _actions(parser) if not a.help]
    assert not missing
    text = {}
    for cmd in (["simulate", "sai"], ["simulate", "gesture"], ["refocus"], ["record"]):
        r = subprocess.run([sys.executable, "-m", "spikelens", *cmd, "--help"], capture_output=True, text=True)
        text[cmd[-1]] = " ".join(r.stdout.split())
    assert "(default: 10)" in text["sai"] and "(default: (346, 260))" in text["sai"]
    assert "(default: (1.5, 3.0))" in text["gesture"] and "(default: 0)" in text["gesture"]
    assert "(--depth DEPTH | --auto)" in text["refocus"]
    assert "(default: None)" not in text["refocus"] and text["refocus"].count("(default: from the file") == 3


def test_gui_without_a_display_is_one_line_and_status_2():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    r = subprocess.run([sys.executable, "-m", "spikelens", "gui"], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "no display" in r.stderr and "xvfb-run" in r.stderr


def test_convert_into_a_missing_folder_names_the_output(tmp_path, capsys):
    out = tmp_path / "nowhere" / "x.h5"
    assert main(["convert", str(bundled_sample()), str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert str(out) in err and "does not exist" in err and ".part" not in err


def test_info_metadata_is_stable_across_runs_and_conversion(tmp_path, samples, capsys):
    real = samples / "sample.aedat4"
    assert main(["info", str(real), "--json", "--meta"]) == 0
    first = json.loads(capsys.readouterr().out)["extra"]
    assert list(first["streams"]) == sorted(first["streams"], key=int)
    out = tmp_path / "real.h5"
    assert main(["convert", str(real), str(out), "-q"]) == 0
    capsys.readouterr()
    assert main(["info", str(out), "--json", "--meta"]) == 0
    after = json.loads(capsys.readouterr().out)["extra"]
    assert after["streams"] == first["streams"]


GEST = ("0.2", "0.2")


@pytest.mark.slow
def test_progress_prints_lines_when_stderr_is_not_a_terminal(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "spikelens", "simulate", "gesture", str(tmp_path), "--count", "1", "--segment-s", *GEST],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("simulate gesture")]
    assert lines and "\r" not in r.stderr and "1/1" in lines[-1]  # whole lines, ending on the final state
    assert len(lines) == len(set(lines))  # no line printed twice (a quick job: just its end)


def test_outputs_are_not_overwritten_without_asking(tmp_path, capsys):
    out = tmp_path / "copy.h5"
    assert main(["convert", str(bundled_sample()), str(out), "-q"]) == 0
    before = out.read_bytes()
    assert main(["convert", str(bundled_sample()), str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{out} exists: pass --overwrite to replace it" in err
    assert out.read_bytes() == before
    assert main(["convert", str(bundled_sample()), str(out), "-q", "--overwrite"]) == 0
    assert main(["record", str(bundled_sample()), "-o", str(out), "-q"]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_progress_lines_never_repeat_the_line_before():
    """A job whose last update already printed its final state: the end prints nothing more."""
    import io

    from spikelens.progress import _Lines

    out = io.StringIO()
    lines = _Lines(out)
    for text in ("\rjob: 1/2", "\rjob: 2/2", "\rjob: 2/2\n", "", "\rjob: 2/2 done"):
        lines.write(text)
    assert out.getvalue() == "job: 1/2\njob: 2/2\njob: 2/2 done\n"
