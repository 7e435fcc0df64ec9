"""Screenshots of the viewer, SAI, live and classify views for the README, from a real (Xvfb) screen.

    xvfb-run -a -s "-screen 0 1400x900x24" python scripts/screenshots.py [OUT_DIR] [LIVE_FILE]

The viewer shows the bundled rotating-bar recording mid-playback; the SAI
view shows a simulated occluded scene (seeded) focused where autofocus put it, then with the
bundled network's reconstruction; the live
view shows LIVE_FILE (default: the real DVXplorer recording in
../shared/samples, else the bundled sample) served by a real dv-processing
NetworkWriter on 127.0.0.1 at quarter speed, while recording it; the classify
view classifies a simulated gesture recording replayed at 2x. Settings go
to a temporary folder so a developer's own are untouched.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QEventLoop, QSettings, QTimer
from PyQt6.QtWidgets import QApplication

from spikelens.app.main_window import MainWindow
from spikelens.app.theme import apply_dark_theme
from spikelens.datasets.bundled import bundled_sample
from spikelens.datasets.formats.esai import write_esai
from spikelens.datasets.simulator.sai import make_scene, simulate_scene


def wait(ms: int) -> None:
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def wait_for(signal, ms: int = 60_000) -> None:
    loop = QEventLoop()
    signal.connect(loop.quit)
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def shoot(window: MainWindow, path: Path) -> None:
    wait(400)
    pixmap = window.screen().grabWindow(0, window.x(), window.y(), window.width(), window.height())
    if pixmap.isNull() or not pixmap.save(str(path)):
        window.grab().save(str(path))  # platforms without screen capture
    print(f"wrote {path}")


def live_shot(window: MainWindow, path: Path, recording: Path, tmp: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "spikelens.datasets.streams.dv_send", str(recording), "--port", str(port)]
    sender = subprocess.Popen([*cmd, "--speed", "0.25"], stdout=subprocess.PIPE, text=True)
    try:
        assert sender.stdout.readline().strip() == "LISTENING"
        window.tabs.setCurrentIndex(0)
        window.open_stream(f"dv-net:127.0.0.1:{port}")
        wait_for(window.streamOpened)
        wait(600)
        window.start_recording(tmp / "live.h5")
        wait(600)
        shoot(window, path)
    finally:
        sender.kill()
        sender.wait()


def classify_shot(window: MainWindow, path: Path, tmp: Path) -> None:
    """The Classify tab on a simulated gesture recording replayed at 2x, with its ground-truth labels."""
    from spikelens.pipelines.simulate import write_gesture_dataset

    write_gesture_dataset(tmp / "gestures", count=1, seed=5)
    recording = next((tmp / "gestures" / "DvsGesture").glob("*.aedat"))
    window.open_path(recording)
    wait_for(window.recordingOpened)
    window.tabs.setCurrentIndex(2)
    while window.classify.model is None:
        wait(100)
    window.classify.source.setCurrentText(f"file:{recording}@2")
    window.classify.start()
    wait(9000)
    shoot(window, path)
    window.classify.stop()


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots")
    real = Path(__file__).resolve().parents[2] / "shared" / "samples" / "sample.aedat4"
    live_file = Path(sys.argv[2]) if len(sys.argv) > 2 else (real if real.exists() else bundled_sample())
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication(sys.argv[:1])
    tmp = Path(tempfile.mkdtemp(prefix="spikelens-shots-"))
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp / "settings"))
    app.setOrganizationName("SpikeLensScreenshots")
    pg.setConfigOptions(imageAxisOrder="row-major")
    apply_dark_theme(app)

    window = MainWindow()
    window.resize(1360, 860)
    window.move(0, 0)
    window.show()
    window.open_path(bundled_sample())
    wait_for(window.recordingOpened)
    window.seek(300_000)
    window.play()
    wait(700)
    window.pause()
    shoot(window, out / "viewer.png")

    rng = np.random.default_rng(7)
    events, meta = simulate_scene(make_scene("photo:camera", rng), rng)
    sample = tmp / "occluded_scene.npy"
    write_esai(sample, events, meta)
    window.open_path(sample)
    wait_for(window.recordingOpened)
    window.tabs.setCurrentIndex(1)
    window.sai.set_depth(meta.extra["depth"])
    wait(3000)
    window.sai.run_autofocus()
    for _ in range(100):  # autofocus sets the depth it found: the shot shows that, not the truth
        if window.sai.autofocus_result is not None:
            break
        wait(100)
    wait(2000)
    shoot(window, out / "sai.png")
    window.sai.recon_box.setChecked(True)
    wait_for(window.sai.reconstructed)
    shoot(window, out / "reconstruct.png")
    live_shot(window, out / "live.png", live_file, tmp)
    window.stop_stream()
    classify_shot(window, out / "classify.png", tmp)
    window.close()


if __name__ == "__main__":
    main()
