"""Train a reconstruction network: cached pairs, the training loop, and all of `train-reconstruct`.

Prepared pairs are cached in one HDF5 file so training reads no events.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch
from torch import nn

from spikelens.datasets import atomic_output
from spikelens.hybrid_net.reconstruct import (
    with_aps_inputs,
    with_frame_agreement,
    with_frame_gate,
    with_shade_first,
)
from spikelens.hybrid_net.registry import load_model
from spikelens.pipelines import training
from spikelens.pipelines.jobs import Job, JobFactory, ensure, no_jobs
from spikelens.pipelines.reconstruction.evaluation import evaluate, write_report
from spikelens.pipelines.reconstruction.inference import log_map_of, uses_aps, uses_physics
from spikelens.pipelines.reconstruction.inputs import load_sample
from spikelens.pipelines.reconstruction.metrics import affine_fit_l1, ssim_torch
from spikelens.pipelines.sai_world import APS, aps_to_uint8
from spikelens.refocus.frame_sai import APS_CHANNELS, aps_channels

#: The architecture new models are built with, and its default config: reads the physics channels, with
#: the unfolded log map.
DEFAULT_ARCH = "hybridlite"
DEFAULT_CONFIG = {"stride": 2, "physics": True, "log_map": "unfolded"}


def prepare(
    files: Sequence[str | Path], out: str | Path, bins: int = 30, job: Job | None = None, log_map: str = "unfolded"
) -> int:
    """Refocus each file at its true depth and cache frames, physics channels (with ``log_map``) and ground
    truth in one HDF5 file (atomic), in the layout :func:`spikelens.pipelines.sai_world.prepare_world`
    writes."""
    job = ensure(job)
    files = [Path(f) for f in files]
    if not files:
        raise ValueError("no recordings to prepare")
    with atomic_output(out, ".h5") as tmp, h5py.File(tmp, "w") as h5:
        h5.attrs["log_map"] = log_map
        for i, f in enumerate(files):
            s = load_sample(f, None, bins)
            if s.truth is None:
                raise ValueError(f"{f}: no occlusion-free frame (occ_free_aps) to train against")
            g = h5.create_group(f"{i:05d}")
            g.create_dataset("frames", data=s.frames, compression="gzip", compression_opts=1, chunks=True)
            g.create_dataset("physics", data=np.asarray(s.physics[log_map], np.float16))
            g.create_dataset("truth", data=s.truth)
            if s.physics[APS][-1].any():
                g.create_dataset("aps", data=aps_to_uint8(s.physics[APS]))
            g.attrs["source"] = str(f)
            job.report(i + 1, len(files), "refocusing")
    return len(files)


class PreparedPairs(torch.utils.data.Dataset):
    """Random crops (and flips) of prepared pairs from one or more caches; targets in [-1, 1].

    With ``aps`` the physics channels are followed by the APS channels (:func:`aps_channels`: zeros for a
    pair cached without frames), dropped to zeros for a share ``aps_dropout`` of the crops, so a network
    learns recordings without frames too and cannot lean on them alone.
    """

    def __init__(
        self,
        paths: str | Path | Sequence[str | Path],
        crop: int = 128,
        augment: bool = True,
        aps: bool = False,
        aps_dropout: float = 0.0,
    ) -> None:
        self.paths = [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
        self.crop, self.augment, self.aps, self.aps_dropout = crop, augment, aps, aps_dropout
        self.keys = []
        #: each cache's log map (``plain`` in the caches written before it was recorded)
        self.log_maps: list[str] = []
        #: whether each cache holds APS images (the caches written before they were kept do not)
        self.has_aps: list[bool] = []
        for n, path in enumerate(self.paths):
            with h5py.File(path, "r") as h5:
                self.keys += [(n, k) for k in sorted(h5)]
                self.log_maps.append(str(h5.attrs.get("log_map", "plain")))
                self.has_aps.append(any("aps" in g for g in h5.values()))
        self._h5: list[h5py.File] | None = None

    def __len__(self) -> int:
        return len(self.keys)

    def close(self) -> None:
        for h5 in self._h5 or ():
            h5.close()
        self._h5 = None

    def pair(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(frames, physics, truth) of pair ``i``; with ``aps``, physics carries the APS channels after."""
        if self._h5 is None:
            self._h5 = [h5py.File(p, "r") for p in self.paths]
        n, key = self.keys[i]
        g = self._h5[n][key]
        physics, truth = g["physics"][()], g["truth"][()]
        if self.aps:
            aps = aps_channels(g["aps"][()] if "aps" in g else None, truth.shape)
            physics = np.concatenate([physics.astype(np.float32), aps])
        return g["frames"][()], physics, truth

    def crop_pair(self, i: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        frames, physics, truth = self.pair(i)
        if self.aps and rng.random() < self.aps_dropout:
            physics[-APS_CHANNELS:] = 0
        h, w = truth.shape
        c = min(self.crop, h, w) // 8 * 8
        y, x = int(rng.integers(0, h - c + 1)), int(rng.integers(0, w - c + 1))
        f = frames[..., y : y + c, x : x + c].astype(np.float32)
        p = physics[:, y : y + c, x : x + c].astype(np.float32)
        t = truth[y : y + c, x : x + c].astype(np.float32) / 127.5 - 1
        if self.augment and rng.random() < 0.5:
            # a left-right flip is a mirrored scene seen by a camera moving the other way: the events keep
            # their polarity, so the gradient channel (dlog I / dx of the mirror) changes sign
            sign = np.ones((len(p), 1, 1), np.float32)
            sign[0] = -1
            f, p, t = f[..., ::-1], p[..., ::-1] * sign, t[:, ::-1]
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
    #: weight of the affine-invariant L1 (:func:`affine_fit_l1`): structure, whatever the brightness
    fit_weight: float = 0.0
    #: the share of crops a model that reads the frames sees without them (see :class:`PreparedPairs`)
    aps_dropout: float = 0.3
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
    """L1 + SSIM (+ ``fit_weight`` x the affine-invariant L1), AdamW, cosine schedule, seeded; saves to ``out``.

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
    pairs = PreparedPairs(data, cfg.crop, aps=uses_aps(model), aps_dropout=cfg.aps_dropout)
    wrong = [f"{p} ({m})" for p, m in zip(pairs.paths, pairs.log_maps, strict=True) if m != log_map_of(model)]
    if uses_physics(model) and wrong:
        raise ValueError(
            f"the model reads the {log_map_of(model)} log map, these caches hold another: {', '.join(wrong)} "
            "(write them again with that --log-map, or train with theirs)"
        )
    if uses_aps(model) and not any(pairs.has_aps):
        raise ValueError(
            f"the model reads the APS frames, and {', '.join(map(str, pairs.paths))} hold none "
            "(caches written before the frames were kept: write them again)"
        )
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
            if cfg.fit_weight:
                loss = loss + cfg.fit_weight * affine_fit_l1(pred, y)
            losses.append(run.step(loss))
            job.report(epoch * steps + s + 1, cfg.epochs * steps, f"loss {losses[-1]:.4f}")
        run.end_epoch(epoch, losses)
    pairs.close()
    return run.finish()


def build_model(arch: str = DEFAULT_ARCH, seed: int = 0, **config: object) -> nn.Module:
    """A fresh model of a registered architecture (its default config, updated by ``config``), its weights
    drawn from ``seed``."""
    from spikelens.hybrid_net.registry import MODELS

    if arch not in MODELS:
        raise ValueError(f"unknown model {arch!r}: choose from {sorted(MODELS)}")
    cls = MODELS[arch]
    with training.seeded(seed):
        model = cls(cls.config_class(**config))
    log_map_of(model)  # an unknown log map fails here, not at the first batch
    return model


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


@dataclass(frozen=True)
class FrameOptions:
    """The options on the APS frames (HybridLite only): ``aps`` reads them, ``frame_gate`` mixes them in
    (:func:`~spikelens.hybrid_net.reconstruct.with_frame_gate`), ``target_first`` / ``shade_first`` order
    their percentiles (:func:`~spikelens.hybrid_net.reconstruct.target_first`,
    :func:`~spikelens.hybrid_net.reconstruct.with_shade_first`), ``frame_agreement`` lets the gate read
    their agreement with the events (:func:`~spikelens.hybrid_net.reconstruct.with_frame_agreement`), and
    ``calibrate`` fits the estimate's gain and offset to them before the gate mixes them
    (:func:`~spikelens.hybrid_net.reconstruct.calibrated`)."""

    aps: bool = False
    frame_gate: bool = False
    target_first: bool = False
    shade_first: bool = False
    frame_agreement: bool = False
    calibrate: bool = False

    def __post_init__(self) -> None:
        if self.target_first and self.shade_first:
            raise ValueError("target_first and shade_first are two orders of the same percentiles: choose one")

    def config(self) -> dict[str, bool]:
        """The HybridLite config entries these imply (only the ones set): every option reads the APS
        frames, and the frames' agreement and calibration work through the frame gate."""
        gate = self.frame_gate or self.frame_agreement or self.calibrate
        wanted = {
            "aps": self.aps or gate or self.target_first or self.shade_first,
            "frame_gate": gate,
            "target_first": self.target_first,
            "shade_first": self.shade_first,
            "frame_agreement": self.frame_agreement,
            "calibrate": self.calibrate,
        }
        return {k: True for k, v in wanted.items() if v}


def _with_frame_options(net: nn.Module, frames: dict[str, bool]) -> nn.Module:
    """A trained ``net`` given the :meth:`FrameOptions.config` entries it lacks, each its own way: new inputs and
    a new gate silent until trained, the shade's order keeping the gate's trust, calibration as a flag."""
    if frames.get("aps") and not uses_aps(net):
        net = with_aps_inputs(net)
    if frames.get("frame_gate"):
        net = with_frame_gate(net)
    if frames.get("target_first"):
        net.config = dataclasses.replace(net.config, target_first=True, shade_first=False)
    if frames.get("shade_first"):
        net = with_shade_first(net)
    if frames.get("frame_agreement"):
        net = with_frame_agreement(net)
    if frames.get("calibrate"):
        net.config = dataclasses.replace(net.config, calibrate=True)  # no weights of its own
    return net


def train_reconstruction(
    data: Sequence[str | Path],
    out: str | Path,
    cfg: TrainConfig,
    *,
    test: Sequence[str | Path] = (),
    arch: str = DEFAULT_ARCH,
    model_config: dict | None = None,
    init: str | Path | None = None,
    log_map: str | None = None,
    frames: FrameOptions = FrameOptions(),
    device: str = "auto",
    bins: int = 30,
    resume: bool = False,
    jobs: JobFactory = no_jobs,
) -> training.TrainReport | None:
    """Train on ``data`` and score the test set: the whole of ``spikelens train-reconstruct``.

    ``data``: prepared caches (.h5 written by :func:`prepare` or ``spikelens simulate world``) used as
    they are, or E-SAI-layout folders whose train/ split is refocused into a cache beside ``out`` first.
    ``test``: recordings or folders scored after training (default: the data folders' test/ splits).
    ``log_map`` overrides the physics channels' log map of ``init``'s model (a fine-tune onto the other
    map; new models take ``model_config``'s). ``frames`` (:class:`FrameOptions`) go into a new model's
    config; ``init``'s model gains each its own way (:func:`_with_frame_options`): new inputs and a new gate
    silent until trained.
    Under torchrun every rank trains its share; rank 0 prepares, saves and returns the report (the others
    return None). The report (JSON + CSV beside ``out``) carries every baseline and the loss curve.
    """
    options = frames.config()
    if options and init is None and arch != "hybridlite":
        raise ValueError("the options on the frames: only hybridlite reads the APS frames")
    data = [Path(d) for d in data]
    caches = [d for d in data if d.is_file() and d.suffix == ".h5" and _is_cache(d)]
    folders = [d for d in data if d not in caches]
    test_files = recordings(test, "test") if test else recordings(folders, "test")
    if not test_files:
        raise ValueError("nothing to score after training: give --test recordings, or folders with a test/ split")
    rank = training.start_distributed(device)
    out = Path(out)
    if init is None:
        net = build_model(arch, cfg.seed, **{**(model_config or {}), **options})
    else:
        net = _with_frame_options(load_model(init, "cpu"), options)
    if log_map is not None and uses_physics(net):
        net.config = dataclasses.replace(net.config, log_map=log_map)
    made = out.with_suffix(".train.h5") if folders else None
    if made is not None:
        train_files = recordings(folders, "train")
        if not train_files:
            raise ValueError(f"{folders[0]}: no train/ recordings (spikelens simulate sai writes them)")
        if rank == 0:
            with jobs("refocus", "file", len(train_files)) as job:
                prepare(train_files, made, bins, job, log_map_of(net))
        training.barrier()
        caches.append(made)
    with jobs("train", "step", None) as job:
        history = train(net, caches, cfg, out, device, job, resume)
    if rank > 0:
        return None
    if made is not None:
        made.unlink()
    with jobs("evaluate", "file", len(test_files)) as job:
        report = evaluate(out, test_files, job, device=device, bins=bins)
    report["train"] = {
        "config": dataclasses.asdict(cfg),
        "data": [str(d) for d in data],
        "model_config": dataclasses.asdict(net.config),
        "loss": history,
    }
    write_report(report, out.with_suffix(".json"))
    return training.TrainReport(out, out.with_suffix(".json"), tuple(history), report)


def _is_cache(path: Path) -> bool:
    try:
        with h5py.File(path, "r") as h5:
            return len(h5) > 0 and all(isinstance(g, h5py.Group) and "truth" in g for g in h5.values())
    except OSError:
        return False
