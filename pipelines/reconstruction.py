"""Reconstruct the occluded scene from refocused events: prepare, train, evaluate, serve.

Inputs are E-SAI recordings (.npy, or simulated .h5 with SAI metadata). Each
is refocused and packed exactly as E-SAI does (:func:`pack_frames_esai`) into
T x 2 x H x W frames with channel 0 = ON (E-SAI's ``Pos``), and paired with
its occlusion-free APS frame scaled to [-1, 1] (the networks end in tanh).
Prepared pairs are cached in one HDF5 file so training reads no events.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import h5py
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from spikelens.datasets import atomic_output
from spikelens.datasets.sai_scene import SAIScene
from spikelens.hybrid_net.registry import load_model, resolve_device
from spikelens.pipelines import training
from spikelens.pipelines.extras import DEFAULT_RECONSTRUCTOR
from spikelens.pipelines.jobs import Job, JobFactory, ensure, no_jobs
from spikelens.pipelines.sai import image_to_uint8, open_sai
from spikelens.pipelines.sai_world import network_inputs
from spikelens.refocus import accumulate, autofocus
from spikelens.refocus.frames import ESAI_TEST_ROI, Roi
from spikelens.refocus.integrate import log_to_uint8

#: The bundled default model's name.
DEFAULT_MODEL = DEFAULT_RECONSTRUCTOR
#: The architecture new models are built with, and its default config: reads the physics channels.
DEFAULT_ARCH = "hybridlite"
DEFAULT_CONFIG = {"stride": 2, "physics": True}


@dataclass(frozen=True)
class Sample:
    frames: np.ndarray  # T x 2 x H x W int16, channel 0 = ON
    truth: np.ndarray | None  # H x W uint8 occlusion-free frame, when the file has one
    baseline: np.ndarray  # H x W uint8: the refocused event accumulation, scaled as the SAI view shows it
    depth: float
    scene: SAIScene
    frame_sai: np.ndarray | None = None  # H x W uint8: the mean of the refocused APS frames, when there are any
    physics: np.ndarray | None = None  # 2 x H x W float32: the physics channels the new networks read
    integrated: np.ndarray | None = None  # H x W uint8: the training-free reconstruction (--method integrate)
    log: np.ndarray | None = None  # H x W float32: its log map, in units of the threshold
    integrate_ms: float = 0.0
    accumulation: np.ndarray | None = None  # H x W int32: the raw refocused event counts (oracle fits use them)


def load_sample(
    path: str | Path, depth: float | None = None, bins: int = 30, roi: Roi | None = None, auto: bool = False
) -> Sample:
    """Refocus ``path`` at ``depth``; by autofocus with ``auto`` or when neither it nor the file gives one."""
    events, scene = open_sai(path)
    if auto or (depth is None and not scene.depth):
        depth = autofocus(events, scene, roi=roi).depth
    elif depth is None:
        depth = scene.depth
    inputs = network_inputs(events, scene, depth, bins, roi)
    truth = scene.ground_truth
    if truth is not None and roi is not None:
        y, x, h, w = roi
        truth = truth[y : y + h, x : x + w]
    counts = accumulate(events, scene.rate(depth), scene.t_ref_us, scene.sensor, roi)
    baseline = image_to_uint8(counts)
    frame_sai = None
    if scene.aps is not None and scene.aps_t_us is not None and len(scene.aps):
        frame_sai = frame_sai_image(scene.aps, scene.aps_t_us, scene.rate(depth), scene.t_ref_us)
        if roi is not None:
            y, x, h, w = roi
            frame_sai = frame_sai[y : y + h, x : x + w]
    log = inputs.integrated.log
    return Sample(
        inputs.frames,
        truth,
        baseline,
        float(depth),
        scene,
        frame_sai,
        inputs.physics,
        log_to_uint8(log),
        log,
        inputs.integrate_ms,
        counts,
    )


def frame_sai_image(aps: np.ndarray, aps_t_us: np.ndarray, rate: float, t_ref_us: int) -> np.ndarray:
    """Frame-based synthetic aperture: each occluded frame shifted by rate * (t - t_ref) px, as events are
    (sub-pixel, bilinear), then averaged where frames cover the pixel. The classic SAI baseline."""
    _, h, w = aps.shape
    total, weight = np.zeros((h, w), np.float64), np.zeros((h, w), np.float64)
    ones = np.ones((h, w), np.float32)
    for frame, t in zip(aps, np.asarray(aps_t_us, np.int64), strict=True):
        m = np.float32([[1, 0, rate * (int(t) - int(t_ref_us)) / 1e6], [0, 1, 0]])
        total += cv2.warpAffine(frame.astype(np.float32), m, (w, h), flags=cv2.INTER_LINEAR)
        weight += cv2.warpAffine(ones, m, (w, h), flags=cv2.INTER_LINEAR)
    return np.clip(np.rint(total / np.maximum(weight, 1e-6)), 0, 255).astype(np.uint8)


# -- metrics ------------------------------------------------------------------------------------------


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two uint8 images (peak 255)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def oracle_fit(image: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The best affine map of ``image`` onto ``truth`` (least squares), clipped to 8 bits: an oracle that
    knows the answer's brightness and contrast, so a baseline's structure is judged and not its scaling."""
    a = np.asarray(image, np.float64).ravel()
    design = np.stack([a, np.ones_like(a)], 1)
    coef, *_ = np.linalg.lstsq(design, np.asarray(truth, np.float64).ravel(), rcond=None)
    return np.clip(np.rint(design @ coef), 0, 255).astype(np.uint8).reshape(np.shape(truth))


def _gauss(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim_torch(a: torch.Tensor, b: torch.Tensor, peak: float = 1.0) -> torch.Tensor:
    """Mean SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03) of B x 1 x H x W."""
    g = _gauss().to(a)
    win = (g[:, None] * g[None, :])[None, None]
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    mu_a, mu_b = F.conv2d(a, win), F.conv2d(b, win)
    saa = F.conv2d(a * a, win) - mu_a**2
    sbb = F.conv2d(b * b, win) - mu_b**2
    sab = F.conv2d(a * b, win) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * sab + c2)) / ((mu_a**2 + mu_b**2 + c1) * (saa + sbb + c2))
    return s.mean()


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two uint8 images."""
    ta = torch.from_numpy(a.astype(np.float64) / 255)[None, None]
    tb = torch.from_numpy(b.astype(np.float64) / 255)[None, None]
    return float(ssim_torch(ta, tb))


# -- inference ----------------------------------------------------------------------------------------


def uses_physics(model: nn.Module) -> bool:
    return bool(getattr(model, "uses_physics", False))


#: ``run_model``'s precisions: fp32 (exact, the default) and the CPU fast path
PRECISIONS = ("fp32", "bf16")


@functools.cache
def cpu_has_bf16() -> bool:
    """The CPU multiplies bf16 natively (avx512_bf16 or AMX), so oneDNN's bf16 convolutions pay off."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _fast(model: nn.Module) -> nn.Module:
    """The model with channels_last weights (oneDNN's preferred layout for bf16), converted once."""
    if not getattr(model, "_channels_last", False):
        model.to(memory_format=torch.channels_last)
        model._channels_last = True
    return model


def run_model(
    model: nn.Module, frames: np.ndarray, physics: np.ndarray | None = None, precision: str = "fp32"
) -> np.ndarray:
    """The network's raw H x W float32 output (channel 0 of its tanh) on T x 2 x H x W frames (and the
    2 x H x W physics channels, for the models that read them).

    Inputs are reflect-padded up to the model's size multiple and cropped back, so any sensor size works.
    ``precision="bf16"`` is the CPU fast path: bf16 autocast with channels_last weights, on CPUs with
    native bf16 (:func:`cpu_has_bf16`); spikes near threshold may flip, so outputs differ slightly from fp32.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose from {PRECISIONS}")
    dev = next(model.parameters()).device
    x = torch.from_numpy(np.asarray(frames, np.float32))[None].to(dev)
    h, w = x.shape[-2:]
    m = getattr(model, "multiple", 1)
    ph, pw = (-h) % m, (-w) % m
    if ph or pw:
        x = F.pad(x.flatten(1, 2), (0, pw, 0, ph), mode="reflect").unflatten(1, x.shape[1:3])
    extra = ()
    if uses_physics(model):
        if physics is None:
            raise ValueError("this model reads the physics channels: pass them (Sample.physics)")
        p = torch.from_numpy(np.asarray(physics, np.float32))[None].to(dev)
        extra = (F.pad(p, (0, pw, 0, ph), mode="reflect") if ph or pw else p,)
    if precision == "bf16":
        if dev.type != "cpu" or not cpu_has_bf16():
            raise ValueError("the bf16 fast path needs a CPU with avx512_bf16 or AMX (this one has neither)")
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            y = _fast(model)(x, *extra)
    else:
        with torch.inference_mode():
            y = model(x, *extra)
    return y[0, 0, :h, :w].float().cpu().numpy()


def output_to_uint8(raw: np.ndarray) -> np.ndarray:
    """tanh output in [-1, 1] to an 8-bit image."""
    return np.clip(np.rint((np.asarray(raw) + 1) * 127.5), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Reconstruction:
    image: np.ndarray  # H x W uint8
    raw: np.ndarray  # H x W float32, the network's output before scaling
    depth: float
    model: str
    device: str
    net_ms: float
    total_ms: float
    psnr: float | None
    ssim: float | None
    baseline_psnr: float | None


#: ``reconstruct``'s methods: a network, or the training-free integration of the signed events.
METHODS = ("network", "integrate")


def reconstruct(
    path: str | Path,
    depth: float | None = None,
    auto: bool = False,
    model: str | Path = DEFAULT_MODEL,
    device: str = "auto",
    roi: Roi | None = None,
    bins: int = 30,
    method: str = "network",
    precision: str = "fp32",
) -> Reconstruction:
    """Refocus ``path`` (at ``depth``, by autofocus with ``auto``, else at the file's depth) and reconstruct,
    with a network or (``method="integrate"``) by integrating the signed events (no training, no torch
    model). ``net_ms`` is the network's time, or the integration's."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {METHODS}")
    t0 = time.perf_counter()
    dev = resolve_device(device)
    sample = load_sample(path, depth, bins, roi, auto)  # a bad file fails here, before a model is loaded
    if method == "integrate":
        image, raw, name, work_ms = sample.integrated, sample.log, "integrate", sample.integrate_ms
    else:
        net = load_model(model, dev, "reconstruction", "reconstruct")
        t1 = time.perf_counter()
        raw = run_model(net, sample.frames, sample.physics, precision)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        work_ms = (time.perf_counter() - t1) * 1e3
        image, name = output_to_uint8(raw), str(model)
    scores = (None, None, None)
    if sample.truth is not None:
        scores = (psnr(image, sample.truth), ssim(image, sample.truth), psnr(sample.baseline, sample.truth))
    total_ms = (time.perf_counter() - t0) * 1e3
    return Reconstruction(image, raw, sample.depth, name, str(dev), work_ms, total_ms, *scores)


# -- preparation and training -------------------------------------------------------------------------


def prepare(files: Sequence[str | Path], out: str | Path, bins: int = 30, job: Job | None = None) -> int:
    """Refocus each file at its true depth and cache frames, physics channels and ground truth in one HDF5
    file (atomic), in the layout :func:`spikelens.pipelines.sai_world.prepare_world` writes."""
    job = ensure(job)
    files = [Path(f) for f in files]
    if not files:
        raise ValueError("no recordings to prepare")
    with atomic_output(out, ".h5") as tmp, h5py.File(tmp, "w") as h5:
        for i, f in enumerate(files):
            s = load_sample(f, None, bins)
            if s.truth is None:
                raise ValueError(f"{f}: no occlusion-free frame (occ_free_aps) to train against")
            g = h5.create_group(f"{i:05d}")
            g.create_dataset("frames", data=s.frames, compression="gzip", compression_opts=1, chunks=True)
            g.create_dataset("physics", data=np.asarray(s.physics, np.float16))
            g.create_dataset("truth", data=s.truth)
            g.attrs["source"] = str(f)
            job.report(i + 1, len(files), "refocusing")
    return len(files)


class PreparedPairs(torch.utils.data.Dataset):
    """Random crops (and flips) of prepared pairs from one or more caches; targets in [-1, 1]."""

    def __init__(self, paths: str | Path | Sequence[str | Path], crop: int = 128, augment: bool = True) -> None:
        self.paths = [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
        self.crop, self.augment = crop, augment
        self.keys = []
        for n, path in enumerate(self.paths):
            with h5py.File(path, "r") as h5:
                self.keys += [(n, k) for k in sorted(h5)]
        self._h5: list[h5py.File] | None = None

    def __len__(self) -> int:
        return len(self.keys)

    def close(self) -> None:
        for h5 in self._h5 or ():
            h5.close()
        self._h5 = None

    def pair(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(frames, physics, truth) of pair ``i``."""
        if self._h5 is None:
            self._h5 = [h5py.File(p, "r") for p in self.paths]
        n, key = self.keys[i]
        g = self._h5[n][key]
        return g["frames"][()], g["physics"][()], g["truth"][()]

    def crop_pair(self, i: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        frames, physics, truth = self.pair(i)
        h, w = truth.shape
        c = min(self.crop, h, w) // 8 * 8
        y, x = int(rng.integers(0, h - c + 1)), int(rng.integers(0, w - c + 1))
        f = frames[..., y : y + c, x : x + c].astype(np.float32)
        p = physics[:, y : y + c, x : x + c].astype(np.float32)
        t = truth[y : y + c, x : x + c].astype(np.float32) / 127.5 - 1
        if self.augment and rng.random() < 0.5:
            # a left-right flip is a mirrored scene seen by a camera moving the other way: the events keep
            # their polarity, so the gradient channel (dlog I / dx of the mirror) changes sign
            f, p, t = f[..., ::-1], p[..., ::-1] * np.float32([[[-1]], [[1]]]), t[:, ::-1]
        if self.augment and rng.random() < 0.5:
            f, p, t = f[..., ::-1, :], p[:, ::-1], t[::-1]
        return tuple(torch.from_numpy(a.copy()) for a in (f, p, t[None]))  # type: ignore[return-value]


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    batch: int = 4
    crop: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    ssim_weight: float = 0.2
    seed: int = 0


@training.seeded_by(lambda a: a["cfg"].seed)  # dropout masks; the caller's torch generators stay as they were
def train(
    model: nn.Module,
    data: str | Path | Sequence[str | Path],
    cfg: TrainConfig,
    out: str | Path,
    device: str = "auto",
    job: Job | None = None,
    resume: bool = False,
) -> list[float]:
    """L1 + SSIM, AdamW with a cosine schedule, seeded; saves the model (with its header) to ``out``.

    In an initialised process group (``torchrun``: gloo on CPU, NCCL on GPUs) the model is wrapped in
    DistributedDataParallel and each rank takes every world-th recording of the same seeded order, so the
    ranks see disjoint data and end with identical weights; only rank 0 reports progress and saves.
    After every epoch the full training state goes to :func:`state_path` (atomically, removed once training
    ends); ``resume`` continues from it where it stopped: in one process, to the very weights of an unbroken
    run (under torchrun every rank takes rank 0's crop stream). Returns the mean loss of each epoch.
    """
    rank, world = training.world()
    job = ensure(job) if rank == 0 else Job()
    order_rng = np.random.default_rng(cfg.seed)  # the same order on every rank
    crop_rng = np.random.default_rng([cfg.seed, rank])  # each rank its own crops
    pairs = PreparedPairs(data, cfg.crop)
    if len(pairs) < world:
        raise ValueError(f"{data}: {len(pairs)} recordings cannot feed {world} processes")
    steps = max(1, math.ceil(len(pairs) / (cfg.batch * world)))
    run = training.Run(
        model,
        device,
        cfg.lr,
        cfg.weight_decay,
        lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs * steps),
        out,
        (order_rng, crop_rng),
        resume,
    )
    for epoch in range(run.first, cfg.epochs):
        mine = order_rng.permutation(len(pairs))[rank::world]
        losses = []
        for s in range(steps):
            idx = mine[(s * cfg.batch) % len(mine) :][: cfg.batch]
            xs, ps, ys = zip(*(pairs.crop_pair(int(i), crop_rng) for i in idx), strict=True)
            x, y = torch.stack(xs).to(run.dev), torch.stack(ys).to(run.dev)
            pred = run.forward(x, torch.stack(ps).to(run.dev)) if uses_physics(model) else run.forward(x)
            loss = (pred - y).abs().mean() + cfg.ssim_weight * (1 - ssim_torch((pred + 1) / 2, (y + 1) / 2))
            losses.append(run.step(loss))
            job.report(epoch * steps + s + 1, cfg.epochs * steps, f"loss {losses[-1]:.4f}")
        run.end_epoch(epoch, losses)
    pairs.close()
    return run.finish()


def _scores(row: dict, prefix: str, image: np.ndarray, truth: np.ndarray) -> None:
    row[f"{prefix}psnr"], row[f"{prefix}ssim"] = psnr(image, truth), ssim(image, truth)
    if truth.shape[0] >= 258 and truth.shape[1] >= 301:  # E-SAI's test crop (the centre 256 x 256) fits
        c = (slice(ESAI_TEST_ROI[0], ESAI_TEST_ROI[0] + 256), slice(ESAI_TEST_ROI[1], ESAI_TEST_ROI[1] + 256))
        row[f"{prefix}psnr_crop"], row[f"{prefix}ssim_crop"] = psnr(image[c], truth[c]), ssim(image[c], truth[c])


def score_sample(s: Sample, image: np.ndarray | None, path: str | Path = "") -> dict:
    """One evaluation row: the model's image (when given) and every baseline against the ground truth.

    Baselines, as shown to a user: the accumulation (``baseline_``), the training-free integration
    (``integrate_``) and frame-based SAI (``frame_sai_``, when the file has APS frames). With an oracle's
    best affine fit (``oracle_``): the raw accumulation and the integrated log map, judged on structure.
    """
    if s.truth is None:
        raise ValueError(f"{path}: no occlusion-free frame to score against")
    row: dict = {"file": str(path)}
    images = {"": image, "baseline_": s.baseline, "integrate_": s.integrated, "frame_sai_": s.frame_sai}
    for prefix, im in images.items():
        if im is not None:
            _scores(row, prefix, im, s.truth)
    for name, raw in (("accumulation", s.accumulation), ("integrate", s.log)):
        if raw is not None:
            _scores(row, f"oracle_{name}_", oracle_fit(raw, s.truth), s.truth)
    if image is not None and "oracle_accumulation_psnr" in row:
        row["gain_db"] = row["psnr"] - row["oracle_accumulation_psnr"]
    return row


def evaluate(
    files: Sequence[str | Path],
    model: str | Path | None,
    device: str = "auto",
    bins: int = 30,
    job: Job | None = None,
) -> dict:
    """PSNR / SSIM of the model (None: baselines only) and of every baseline, per file and mean.

    ``gain_db`` is the model's PSNR over the best affine fit of the accumulation, an oracle it does not get.
    """
    job = ensure(job)
    net = load_model(model, device, "reconstruction", "evaluate") if model is not None else None
    rows = []
    for i, f in enumerate(files):
        s = load_sample(f, None, bins)
        img = output_to_uint8(run_model(net, s.frames, s.physics)) if net is not None else None
        rows.append(score_sample(s, img, f))
        job.report(i + 1, len(files), "evaluating")
    keys = [k for k in rows[0] if k != "file" and all(k in r for r in rows)]
    mean = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    return {"model": None if model is None else str(model), "n": len(rows), "mean": mean, "files": rows}


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


def build_model(name: str, seed: int = 0, **config: object) -> nn.Module:
    """A fresh model of a registered architecture (its default config, updated by ``config``), its weights
    drawn from ``seed``."""
    from spikelens.hybrid_net.registry import MODELS

    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}: choose from {sorted(MODELS)}")
    cls = MODELS[name]
    with training.seeded(seed):
        return cls(cls.config_class(**config))


def recordings(paths: Sequence[str | Path], split: str | None = None) -> list[Path]:
    """The recordings behind ``paths``: files as they are; folders' ``split`` subfolder (or the folder
    itself when it has none) searched for .npy and .h5."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            d = p / split if split and (p / split).is_dir() else p
            out += sorted(d.glob("*.npy")) + sorted(d.glob("*.h5"))
        else:
            out.append(p)
    return out


def train_reconstruction(
    data: Sequence[str | Path],
    out: str | Path,
    cfg: TrainConfig,
    *,
    test: Sequence[str | Path] = (),
    model: str = DEFAULT_ARCH,
    model_config: dict | None = None,
    init: str | Path | None = None,
    device: str = "auto",
    bins: int = 30,
    resume: bool = False,
    jobs: JobFactory = no_jobs,
) -> dict | None:
    """Train on ``data`` and score the test set: the whole of ``spikelens train-reconstruct``.

    ``data``: prepared caches (.h5 written by :func:`prepare` or ``spikelens simulate world``) used as
    they are, or E-SAI-layout folders whose train/ split is refocused into a cache beside ``out`` first.
    ``test``: recordings or folders scored after training (default: the data folders' test/ splits).
    Under torchrun every rank trains its share; rank 0 prepares, saves and returns the report (the others
    return None). The report (JSON + CSV beside ``out``) carries every baseline and the loss curve.
    """
    data = [Path(d) for d in data]
    caches = [d for d in data if d.is_file() and d.suffix == ".h5" and _is_cache(d)]
    folders = [d for d in data if d not in caches]
    test_files = recordings(test, "test") if test else recordings(folders, "test")
    if not test_files:
        raise ValueError("nothing to score after training: give --test recordings, or folders with a test/ split")
    rank = training.start_distributed(device)
    out = Path(out)
    made = out.with_suffix(".train.h5") if folders else None
    if made is not None:
        train_files = recordings(folders, "train")
        if not train_files:
            raise ValueError(f"{folders[0]}: no train/ recordings (spikelens simulate sai writes them)")
        if rank == 0:
            with jobs("refocus", "file", len(train_files)) as job:
                prepare(train_files, made, bins, job)
        training.barrier()
        caches.append(made)
    net = load_model(init, "cpu") if init is not None else build_model(model, cfg.seed, **(model_config or {}))
    with jobs("train", "step", None) as job:
        history = train(net, caches, cfg, out, device, job, resume)
    if rank > 0:
        return None
    if made is not None:
        made.unlink()
    with jobs("evaluate", "file", len(test_files)) as job:
        report = evaluate(test_files, out, device, bins, job)
    report["train"] = {
        "config": dataclasses.asdict(cfg),
        "data": [str(d) for d in data],
        "model_config": dataclasses.asdict(net.config),
        "loss": history,
    }
    write_report(report, out.with_suffix(".json"))
    return report


def _is_cache(path: Path) -> bool:
    try:
        with h5py.File(path, "r") as h5:
            return len(h5) > 0 and all(isinstance(g, h5py.Group) and "truth" in g for g in h5.values())
    except OSError:
        return False
