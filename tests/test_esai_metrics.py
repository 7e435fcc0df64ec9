"""E-SAI's own scores, against the library its evaluation calls (sewar).

E-SAI's codes/Evaluation.py reads and scores each image as::

    imgTest = cv2.imread(nameTest)
    imgTrue = cv2.imread(nameTrue)[2:2+256,45:45+256,:]
    resPSNR = psnr(imgTrue,imgTest)
    resSSIM = ssim(imgTrue,imgTest,16)[0]

with ``from sewar.full_ref import psnr`` and ``from sewar.full_ref import ssim``; cv2.imread gives a
grey PNG as three equal BGR channels, which is what is fed to sewar here.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from sewar.full_ref import psnr as sewar_psnr
from sewar.full_ref import ssim as sewar_ssim

from spikelens.pipelines.reconstruction import esai_ssim, psnr, score_sample, ssim
from spikelens.pipelines.reconstruction.metrics import oracle_fit
from spikelens.refocus.frames import ESAI_TEST_ROI


def _as_esai_reads(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_esai_ssim_and_psnr_are_sewars(seed):
    rng = np.random.default_rng(seed)
    truth = cv2.GaussianBlur(rng.integers(0, 256, (256, 256)).astype(np.uint8), (0, 0), 3)
    truth = cv2.normalize(truth, None, 0, 255, cv2.NORM_MINMAX)
    noisy = np.clip(truth + rng.normal(0, 8 + 10 * seed, truth.shape), 0, 255).astype(np.uint8)
    want = sewar_ssim(_as_esai_reads(truth), _as_esai_reads(noisy), 16)[0]
    assert esai_ssim(truth, noisy) == pytest.approx(want, abs=1e-9)
    assert psnr(noisy, truth) == pytest.approx(sewar_psnr(_as_esai_reads(truth), _as_esai_reads(noisy)), abs=1e-9)
    assert esai_ssim(truth, noisy) != pytest.approx(ssim(noisy, truth), abs=1e-3)  # a different window


def test_esai_ssim_refuses_what_sewar_would_not_score():
    with pytest.raises(ValueError, match="equal"):
        esai_ssim(np.zeros((20, 20), np.uint8), np.zeros((20, 21), np.uint8))
    with pytest.raises(ValueError, match="16 px"):
        esai_ssim(np.zeros((10, 40), np.uint8), np.zeros((10, 40), np.uint8))


def test_evaluation_rows_carry_esai_scores_on_its_crop(tmp_path):
    from spikelens.datasets.formats.esai import write_esai
    from spikelens.datasets.simulator.sai import SAIConfig, make_scene, simulate_scene
    from spikelens.pipelines.reconstruction import load_sample

    rng = np.random.default_rng(0)  # a DAVIS346 frame, so E-SAI's crop at (2, 45) fits
    events, meta = simulate_scene(make_scene("procedural:shapes:3", rng, SAIConfig(duration_us=300_000)), rng)
    write_esai(tmp_path / "scene.npy", events, meta)
    s = load_sample(tmp_path / "scene.npy")
    row = score_sample(s, s.baseline, "scene.npy")
    y, x, h, w = ESAI_TEST_ROI
    crop = (slice(y, y + h), slice(x, x + w))
    want = sewar_ssim(_as_esai_reads(s.truth[crop]), _as_esai_reads(s.baseline[crop]), 16)[0]
    assert row["esai_ssim"] == pytest.approx(want, abs=1e-9)
    assert row["esai_psnr"] == pytest.approx(sewar_psnr(s.truth[crop], s.baseline[crop]), abs=1e-9)
    assert "baseline_esai_ssim" in row and "integrate_esai_psnr" in row
    assert row["oracle_model_psnr"] == pytest.approx(psnr(oracle_fit(s.baseline, s.truth), s.truth), abs=1e-9)
    assert row["oracle_model_psnr"] >= row["psnr"]  # the oracle can always leave the image as it is
