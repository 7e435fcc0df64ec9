"""Score a model beside every baseline on recordings, and write the report (JSON + CSV, atomic)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from torch import nn

from spikelens.datasets import atomic_output
from spikelens.hybrid_net.registry import load_model
from spikelens.pipelines.jobs import Job, ensure
from spikelens.pipelines.reconstruction.inference import output_to_uint8, run_model, uses_aps, without_frames
from spikelens.pipelines.reconstruction.inputs import Sample, load_sample
from spikelens.pipelines.reconstruction.metrics import esai_ssim, oracle_fit, psnr, ssim
from spikelens.refocus.frames import ESAI_TEST_ROI


def _scores(row: dict, prefix: str, image: np.ndarray, truth: np.ndarray) -> None:
    """Ours (full frame, Wang's SSIM) and, where the frame holds it, E-SAI's: its Evaluation.py crops the
    truth to ``[2:2+256, 45:45+256]`` and calls sewar's ``psnr`` and ``ssim(imgTrue, imgTest, 16)``."""
    row[f"{prefix}psnr"], row[f"{prefix}ssim"] = psnr(image, truth), ssim(image, truth)
    if truth.shape[0] >= 258 and truth.shape[1] >= 301:
        c = (slice(ESAI_TEST_ROI[0], ESAI_TEST_ROI[0] + 256), slice(ESAI_TEST_ROI[1], ESAI_TEST_ROI[1] + 256))
        row[f"{prefix}esai_psnr"], row[f"{prefix}esai_ssim"] = psnr(image[c], truth[c]), esai_ssim(truth[c], image[c])


def score_sample(s: Sample, image: np.ndarray | None, path: str | Path = "") -> dict:
    """One evaluation row: the model's image (when given) and every baseline against the ground truth.

    Baselines, as shown to a user: the accumulation (``baseline_``), the training-free integration
    (``integrate_``) and frame-based SAI, classic (``frame_sai_``, the mean) and occlusion-robust
    (``frame_sai_robust_``, :mod:`spikelens.refocus.frame_sai`), when the file has APS frames. With an oracle's
    best affine fit (``oracle_``), judged on structure: the raw accumulation, the integration's image as
    ``reconstruct --method integrate`` writes it (``oracle_integrate_``) and its log map before the
    exponential (``oracle_integrate_log_``), and the model's own image (``oracle_model_``): its gap to the
    model's own score is global brightness and contrast, which events do not carry.
    """
    if s.truth is None:
        raise ValueError(f"{path}: no occlusion-free frame to score against")
    row: dict = {"file": str(path)}
    images = {
        "": image,
        "baseline_": s.baseline,
        "integrate_": s.integrated,
        "frame_sai_": s.frame_sai,
        "frame_sai_robust_": s.frame_sai_robust,
    }
    for prefix, im in images.items():
        if im is not None:
            _scores(row, prefix, im, s.truth)
    raws = {"model": image, "accumulation": s.accumulation, "integrate": s.integrated, "integrate_log": s.log}
    for name, raw in raws.items():
        if raw is not None:
            _scores(row, f"oracle_{name}_", oracle_fit(raw, s.truth), s.truth)
    if image is not None and "oracle_accumulation_psnr" in row:
        row["gain_db"] = row["psnr"] - row["oracle_accumulation_psnr"]
    return row


def score_model(net: nn.Module | None, s: Sample, path: str | Path = "") -> dict:
    """:func:`score_sample` of ``net``'s image (None: the baselines alone); a model that reads the APS frames
    is scored without them too (``events_only_``: its APS channels blank, as on a recording without)."""
    img = output_to_uint8(run_model(net, s.frames, s.physics)) if net is not None else None
    row = score_sample(s, img, path)
    if net is not None and uses_aps(net) and s.truth is not None and s.physics is not None:
        _scores(row, "events_only_", output_to_uint8(run_model(net, s.frames, without_frames(s.physics))), s.truth)
    return row


def evaluate(
    model: str | Path | nn.Module | None,
    data: Sequence[str | Path],
    job: Job | None = None,
    *,
    device: str = "auto",
    bins: int = 30,
) -> dict:
    """PSNR / SSIM of the model (None: baselines only) and of every baseline, per file and mean.

    ``gain_db`` is the model's PSNR over the best affine fit of the accumulation, an oracle it does not get.
    A model that reads the APS frames is scored without them too (``events_only_``: its APS channels
    blank, as on a recording that has no frames).
    """
    job = ensure(job)
    net = model
    if model is not None and not isinstance(model, nn.Module):
        net = load_model(model, device, "reconstruction", "evaluate")
    files = list(data)
    rows = []
    for i, f in enumerate(files):
        rows.append(score_model(net, load_sample(f, None, bins), f))
        job.report(i + 1, len(files), "evaluating")
    keys = [k for k in rows[0] if k != "file" and all(k in r for r in rows)]
    mean = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    name = None if model is None else type(model).__name__ if isinstance(model, nn.Module) else str(model)
    return {"model": name, "n": len(rows), "mean": mean, "files": rows}


def write_report(report: dict, json_path: str | Path) -> None:
    """The report as JSON, and its per-file rows as CSV beside it (same name, .csv); both atomic."""
    import csv

    with atomic_output(json_path, ".json") as tmp:
        Path(tmp).write_text(json.dumps(report, indent=2))
    rows = report["files"]
    with atomic_output(Path(json_path).with_suffix(".csv"), ".csv") as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
        w.writeheader()
        w.writerows(rows)
