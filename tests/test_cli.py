import json
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
    ev = open_recording(bundled_sample()).load()
    img = np.zeros((128, 128))
    np.add.at(img, (ev["y"], ev["x"]), 1)
    assert img[54:74, 54:74].mean() > 5 * img[:10, :10].mean()  # the bar sweeps the centre most
