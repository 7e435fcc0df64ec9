"""Reconstruction in the SAI tab: the panel's PSNR is the command line's, depth changes re-run it (newest
wins), exports, and a wrong checkpoint keeps the model."""

import json
import os
import sys
import threading

import pytest

pytest.importorskip("PyQt6")

from spikelens.cli import main

from helpers import WAIT, open_file


def reconstruct_on(qtbot, w, path):
    open_file(qtbot, w, path)
    w.tabs.setCurrentIndex(1)
    sai = w.sai
    qtbot.waitUntil(lambda: sai.picker.model is not None, timeout=WAIT)
    with qtbot.waitSignal(sai.reconstructed, timeout=WAIT):
        sai.recon_box.setChecked(True)
    return sai


def test_panel_psnr_equals_the_command_line(qtbot, window, sai_file, tmp_path, capsys):
    sai = reconstruct_on(qtbot, window, sai_file)
    r = sai.reconstruction
    assert r.image.shape == (64, 96) and r.psnr is not None and r.net_ms > 0
    assert f"PSNR {r.psnr:.2f} dB" in sai.status.text() and "hybridlite" in sai.status.text()
    assert f"{r.psnr:.2f} dB" in sai.images.labels[2].text
    out = tmp_path / "cli.png"
    assert main(["reconstruct", str(sai_file), "--depth", repr(r.depth), "-o", str(out), "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert cli["psnr"] == pytest.approx(r.psnr, abs=1e-9) and cli["ssim"] == pytest.approx(r.ssim, abs=1e-9)


def test_depth_changes_rerun_and_the_newest_wins(qtbot, window, sai_file, tmp_path):
    sai = reconstruct_on(qtbot, window, sai_file)
    first = sai.reconstruction.depth
    for d in (first * 0.8, first * 1.3, first * 1.1):  # faster than the network: only the last must show
        sai.set_depth(d)
    qtbot.waitUntil(
        lambda: sai.reconstruction.depth == pytest.approx(first * 1.1) and not sai.reconstructing, timeout=WAIT
    )
    png, fig = tmp_path / "r.png", tmp_path / "fig.png"
    sai.export_reconstruction(png)
    sai.export_figure(fig)
    import cv2

    assert cv2.imread(str(png), cv2.IMREAD_UNCHANGED).shape == (64, 96)
    assert cv2.imread(str(fig)).shape[1] > 4 * 96  # four panels side by side


def test_a_classifier_checkpoint_is_refused_and_the_model_stays(qtbot, window, sai_file):
    sai = reconstruct_on(qtbot, window, sai_file)
    before = sai.picker.model
    shown = []
    sai.picker.loadFailed.connect(shown.append)
    sai.picker.load("gesture")
    qtbot.waitUntil(lambda: len(shown) == 1, timeout=WAIT)
    assert "not a reconstruction network" in shown[0] and sai.picker.model is before
    assert sai.picker.model_box.currentText() == "hybridlite"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priority is a Linux feature")
def test_background_pool_runs_at_lower_priority(qtbot):
    """Reconstructions run in a pool whose threads are niced, so the GUI thread and live work get the CPU."""
    from spikelens.app.workers import BACKGROUND_NICE, Worker, WorkerPool

    def my_nice() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    base = os.getpriority(os.PRIO_PROCESS, 0)
    for pool, want in ((WorkerPool(background=True), min(19, base + BACKGROUND_NICE)), (WorkerPool(), base)):
        got = []
        w = Worker(my_nice)
        w.signals.result.connect(got.append)
        pool.start(w)
        qtbot.waitUntil(lambda got=got: len(got) == 1, timeout=WAIT)
        pool.shutdown()
        assert got == [want]


def test_a_cancelled_reconstruction_stops_before_the_network(sai_file):
    from spikelens.datasets import open_recording
    from spikelens.datasets.sai_scene import SAIScene
    from spikelens.pipelines.jobs import Cancelled, Job
    from spikelens.pipelines.sai_view import reconstructed

    with open_recording(sai_file) as rec:
        ev, meta = rec.load(), rec.meta
    job = Job()
    job.cancel()

    class NoNetwork:
        def __call__(self, *a):
            raise AssertionError("the network ran")

    with pytest.raises(Cancelled):
        reconstructed(ev, SAIScene.from_events(meta, ev), 1.0, NoNetwork(), job=job)
