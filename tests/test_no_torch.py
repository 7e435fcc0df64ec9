"""torch only where models are: with its import blocked, the viewer, info, convert, record and refocus work,
and a model command says in one line what to install."""

from __future__ import annotations

import subprocess
import sys

import pytest

from spikelens.datasets.bundled import bundled_sample
from spikelens.pipelines.extras import TORCH_PIN

#: run in the child before anything else: any import of torch fails, as if it were not installed
BLOCK = """
import importlib.abc, runpy, sys
class _NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError("No module named 'torch' (blocked by the test)")
sys.meta_path.insert(0, _NoTorch())
"""


def run_without_torch(code: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", **(env_extra or {})}
    return subprocess.run([sys.executable, "-c", BLOCK + code], capture_output=True, text=True, timeout=120, env=env)


def cli(*args: str) -> subprocess.CompletedProcess:
    return run_without_torch(
        f"sys.argv = ['spikelens', *{list(args)!r}]\nrunpy.run_module('spikelens', run_name='__main__')"
    )


def test_the_viewer_window_opens_a_recording_without_torch():
    code = f"""
from PyQt6.QtWidgets import QApplication
app = QApplication([])
from spikelens.app.main_window import MainWindow
w = MainWindow()
w.open_path({str(bundled_sample())!r})
import time
t0 = time.monotonic()
while w.source is None and time.monotonic() - t0 < 30:
    app.processEvents()
    time.sleep(0.01)
assert w.source is not None and w.source.n_events > 0, "the recording did not open"
assert "torch" not in sys.modules
print("viewer ok")
"""
    r = run_without_torch(code)
    assert r.returncode == 0 and "viewer ok" in r.stdout, r.stderr[-2000:]


@pytest.mark.slow
def test_info_convert_record_and_refocus_without_torch(tmp_path, sai_file):
    r = cli("info", "--json")
    assert r.returncode == 0 and '"events"' in r.stdout, r.stderr
    out = tmp_path / "copy.h5"
    r = cli("convert", str(bundled_sample()), str(out), "-q")
    assert r.returncode == 0 and out.stat().st_size > 0, r.stderr
    rec = tmp_path / "rec.h5"
    r = cli("record", str(bundled_sample()), "-o", str(rec), "-q")
    assert r.returncode == 0 and rec.exists(), r.stderr
    r = cli("refocus", str(sai_file), "--depth", "0.8", "-o", str(tmp_path / "f.npz"))
    assert r.returncode == 0 and (tmp_path / "f.npz").exists(), r.stderr


@pytest.mark.parametrize(
    "command", [["reconstruct", "{sai}", "-o", "{out}"], ["classify", "{rec}"], ["live", "sim:gesture"]]
)
def test_a_model_command_without_torch_is_one_line(tmp_path, sai_file, command):
    args = [a.format(sai=sai_file, out=tmp_path / "o.png", rec=bundled_sample()) for a in command]
    r = cli(*args)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1 and f"needs torch, which is not installed: pip install {TORCH_PIN}" in r.stderr
