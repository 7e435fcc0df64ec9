from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

#: Real camera recordings shared beside the checkout (absent in a user's clone).
SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "samples"


def require_samples() -> Path:
    """The real recordings: a contributor's clone without them skips the tests that need them; CI (``CI``
    set) fails them, so a missing folder can never pass for tested readers."""
    if not SAMPLES.is_dir():
        why = "../shared/samples (real camera recordings) is not present"
        if os.environ.get("CI"):
            pytest.fail(f"{why}, and CI is set: the tests on real files must run")
        pytest.skip(why)
    return SAMPLES


@pytest.fixture
def samples() -> Path:
    return require_samples()


@pytest.fixture(scope="session")
def gesture_dataset(tmp_path_factory):
    """(root, test recording) of two simulated DVS Gesture subjects, one train and one test, at a seed the
    bundled model never saw; simulated once for the whole run (the classification tests share it)."""
    from spikelens.pipelines.simulate import write_gesture_dataset

    root = tmp_path_factory.mktemp("gestures")
    write_gesture_dataset(root, count=2, seed=90210)
    test = (root / "DvsGesture" / "trials_to_test.txt").read_text().split()
    return root, root / "DvsGesture" / test[0]


@pytest.fixture(scope="module")
def sai_file(tmp_path_factory):
    """A small simulated occluded scene (E-SAI .npy, with ground truth)."""
    import numpy as np

    from spikelens.datasets.formats.esai import write_esai
    from spikelens.datasets.simulator.sai import SAIConfig, make_scene, simulate_scene

    rng = np.random.default_rng(0)
    events, meta = simulate_scene(make_scene("procedural:shapes:3", rng, SAIConfig(96, 64, duration_us=400_000)), rng)
    path = tmp_path_factory.mktemp("sai") / "scene.npy"
    write_esai(path, events, meta)
    return path


@pytest.fixture
def settings_dir(tmp_path):
    """Qt settings in a temporary folder, so GUI tests never read or write the user's."""
    import pyqtgraph as pg
    from PyQt6.QtCore import QCoreApplication, QSettings

    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    QCoreApplication.setOrganizationName("SpikeLensTest")
    QCoreApplication.setApplicationName("SpikeLensTest")
    pg.setConfigOptions(imageAxisOrder="row-major")
    return tmp_path / "settings"


@pytest.fixture
def window(qtbot, settings_dir):
    """The main window, shown; closed afterwards with every worker joined."""
    from PyQt6.QtCore import QThreadPool

    from helpers import WAIT, make_window

    w = make_window(qtbot)
    yield w
    w.close()
    assert QThreadPool.globalInstance().waitForDone(WAIT)
    assert QThreadPool.globalInstance().activeThreadCount() == 0  # no leaked workers


# Numba compiles (or loads its cache) on the first call of each kernel; that is
# not a slow example, so no per-example deadline.
settings.register_profile("spikelens", deadline=None)
settings.load_profile("spikelens")
