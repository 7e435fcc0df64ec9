"""Classify event recordings with the hybrid classifier: train, evaluate, and classify files and folders.

Training samples are random windows of the model's length inside labelled
segments (DVS128 Gesture segments; whole recordings for CIFAR10-DVS and
N-Caltech101), through the dataset classes, augmented by a random shift and
scale of the sensor and random event dropout. A segment's label is the
argmax of its windows' mean probability (windows one bin apart), the same
windows a live stream yields (:mod:`spikelens.pipelines.classify_windows`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from spikelens.datasets import atomic_output
from spikelens.datasets.collections import CIFAR10DVS, DVSGesture, NCaltech101
from spikelens.datasets.collections.base import EventDataset
from spikelens.datasets.collections.dvs_gesture import labels_beside, read_labels
from spikelens.datasets.detect import open_recording
from spikelens.datasets.sensor_size import SensorSize, sensor_size
from spikelens.hybrid_net.classify import ClassifierConfig, HybridClassifier
from spikelens.hybrid_net.energy import energy
from spikelens.hybrid_net.registry import load_model
from spikelens.hybrid_net.spiking_classify import SpikingClassifier, SpikingConfig
from spikelens.pipelines import training
from spikelens.pipelines.classify_windows import bin_events, classify_segment, classify_timeline, window_frames
from spikelens.pipelines.extras import DEFAULT_CLASSIFIER
from spikelens.pipelines.images import write_png
from spikelens.pipelines.jobs import Job, JobFactory, ensure, no_jobs

#: The bundled default classifier's name.
DEFAULT_MODEL = DEFAULT_CLASSIFIER
DATASETS: dict[str, type[EventDataset]] = {
    "dvsgesture": DVSGesture,
    "cifar10dvs": CIFAR10DVS,
    "ncaltech101": NCaltech101,
}


@dataclass(frozen=True)
class Segment:
    events: np.ndarray
    label: int
    t0: int
    t1: int


@dataclass(frozen=True)
class SegmentSet:
    """Labelled segments and the sensor that recorded them: what classifiers train and are scored on."""

    segments: tuple[Segment, ...]
    sensor: SensorSize

    @classmethod
    def of(cls, ds: EventDataset, job: Job | None = None) -> SegmentSet:
        return cls(tuple(dataset_segments(ds, job)), SensorSize(*ds.sensor_size[:2]))  # tonic's (W, H, P)

    def __len__(self) -> int:
        return len(self.segments)


def dataset_segments(ds: EventDataset, job: Job | None = None) -> list[Segment]:
    """Every item of a dataset as a segment spanning its events."""
    job = ensure(job)
    out = []
    for i in range(len(ds)):
        ev, label = ds[i]
        if ev.size:
            out.append(Segment(ev, int(label), int(ev["t"][0]), int(ev["t"][-1]) + 1))
        job.report(i + 1, len(ds), "loading")
    return out


@dataclass(frozen=True)
class ScaleShift:
    """Events scaled by ``k`` about the sensor's centre and shifted by (dx, dy) sensor pixels; events that
    leave the sensor are dropped. A small frozen transform on events, in tonic's style."""

    k: float
    dx: float
    dy: float

    def __call__(self, events: np.ndarray, sensor: SensorSize) -> np.ndarray:
        w, h = sensor_size(sensor)
        x = np.floor((events["x"] + 0.5 - w / 2) * self.k + w / 2 + self.dx).astype(np.int64)
        y = np.floor((events["y"] + 0.5 - h / 2) * self.k + h / 2 + self.dy).astype(np.int64)
        keep = (x >= 0) & (x < w) & (y >= 0) & (y < h)
        out = events[keep].copy()
        out["x"], out["y"] = x[keep], y[keep]
        return out


@dataclass(frozen=True)
class DropEvents:
    """A random ``fraction`` of the events left out (thinning: a dimmer scene, a higher threshold)."""

    fraction: float

    def __call__(self, events: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return events[rng.random(events.size) >= self.fraction]


def augment_window(
    seg: Segment, cfg: ClassifierConfig, sensor: SensorSize, rng: np.random.Generator, augment: bool = True
) -> np.ndarray:
    """T x 2 x S x S frames of a random window inside the segment, through the one binner inference uses
    (:func:`~spikelens.pipelines.classify_windows.bin_events`); with ``augment`` the events are first scaled
    (0.85-1.15 about the centre), shifted (up to an eighth of the sensor) and thinned (up to 30 %)."""
    span = max(0, seg.t1 - seg.t0 - cfg.window_us)
    start = seg.t0 + int(rng.integers(span + 1))
    lo, hi = np.searchsorted(seg.events["t"], [start, start + cfg.window_us])
    ev = seg.events[lo:hi]
    if augment:
        w, h = sensor
        k = rng.uniform(0.85, 1.15)
        dx, dy = rng.uniform(-1, 1, 2) * (w / 8, h / 8)
        ev = DropEvents(rng.uniform(0, 0.3))(ScaleShift(k, dx, dy)(ev, sensor), rng)
    return bin_events(ev, start, cfg.bin_us, cfg.steps, sensor, cfg.size)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 20
    batch: int = 32
    windows_per_segment: int = 2  # random windows drawn from each segment per epoch
    lr: float = 3e-3
    weight_decay: float = 1e-2
    label_smoothing: float = 0.1
    seed: int = 0
    #: weight of the mean spike rate (spikes per neuron per step, averaged over the spiking layers) in the
    #: loss: fewer spikes, fewer synaptic operations, less energy
    spike_rate: float = 0.0


@training.seeded_by(lambda a: a["cfg"].seed)  # dropout's draws; the caller's torch generators stay as they were
def train(
    model: nn.Module,
    data: SegmentSet,
    cfg: TrainConfig,
    out: str | Path,
    device: str = "auto",
    job: Job | None = None,
    resume: bool = False,
) -> list[float]:
    """Cross-entropy (label smoothing) plus ``cfg.spike_rate`` x the mean spike rate, AdamW + cosine, AMP
    on CUDA, seeded (the global torch generator is restored after); saves the model to ``out``.

    Under ``torchrun`` the model is wrapped in DistributedDataParallel and each rank draws every world-th
    sample of one seeded order; rank 0 reports and saves. The training state is saved after each epoch and
    ``resume`` continues from it. Returns the mean loss of each epoch.
    """
    rank, world = training.world()
    job = ensure(job) if rank == 0 else Job()
    segments, sensor = data.segments, data.sensor
    if not segments:
        raise ValueError("no training segments")
    order_rng = np.random.default_rng(cfg.seed)
    aug_rng = np.random.default_rng([cfg.seed, rank])
    steps = max(1, math.ceil(len(segments) * cfg.windows_per_segment / (cfg.batch * world)))
    run = training.Run(
        model,
        device,
        cfg.lr,
        cfg.weight_decay,
        lambda opt: torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=cfg.epochs * steps, pct_start=0.1),
        out,
        (order_rng, aug_rng),
        resume,
    )
    for epoch in range(run.first, cfg.epochs):
        order = np.tile(order_rng.permutation(len(segments)), cfg.windows_per_segment)[rank::world]
        losses = []
        for s in range(steps):
            idx = order[(s * cfg.batch) % len(order) :][: cfg.batch]
            x = np.stack([augment_window(segments[i], model.config, sensor, aug_rng) for i in idx])
            y = torch.tensor([segments[i].label for i in idx], device=run.dev)
            logits = run.forward(torch.from_numpy(x).to(run.dev).transpose(0, 1))
            loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
            if cfg.spike_rate:
                loss = loss + cfg.spike_rate * torch.stack(model.spike_rates).mean()
            losses.append(run.step(loss))
            job.report(epoch * steps + s + 1, cfg.epochs * steps, f"loss {losses[-1]:.3f}")
        run.end_epoch(epoch, losses)
    return run.finish()


@torch.no_grad()
def spike_report(model: nn.Module, frames: np.ndarray) -> dict:
    """Mean spike statistics per layer and the energy estimate per window, over n windows' frames."""
    dev = next(model.parameters()).device
    x = torch.from_numpy(np.ascontiguousarray(frames)).to(dev).transpose(0, 1)
    _, stats = model(x, stats=True)
    layers = [
        {"name": s["name"], "neurons": s["neurons"], "spikes_per_window": s["spikes"], "rate": s["rate"]}
        for s in stats["layers"]
    ]
    return {"layers": layers, "energy": energy(stats)}


def evaluate(model: str | Path | nn.Module, data: SegmentSet, job: Job | None = None, *, device: str = "auto") -> dict:
    """Accuracy, confusion matrix (rows: truth, columns: prediction), spike statistics and energy."""
    job = ensure(job)
    model = model if isinstance(model, nn.Module) else load_model(model, device, "classifier", "evaluate")
    segments, sensor = data.segments, data.sensor
    job.check()
    n_cls = len(model.config.classes)
    confusion = np.zeros((n_cls, n_cls), np.int64)
    rows = []
    t0 = time.perf_counter()
    for i, seg in enumerate(segments):
        probs = classify_segment(model, seg.events, seg.t0, seg.t1, sensor)
        pred = int(np.argmax(probs))
        confusion[seg.label, pred] += 1
        rows.append(
            {"t0": seg.t0, "t1": seg.t1, "label": seg.label, "predicted": pred, "probability": float(probs[pred])}
        )
        job.report(i + 1, len(segments), "classifying")
    n = len(segments)
    rng = np.random.default_rng(0)
    sample = [segments[int(i)] for i in rng.choice(n, min(n, 16), replace=False)] if n else []
    cfg = model.config
    spikes = (
        spike_report(model, np.stack([augment_window(s, cfg, sensor, rng, augment=False) for s in sample]))
        if sample
        else None
    )
    return {
        "accuracy": float(np.trace(confusion) / n) if n else float("nan"),
        "n": n,
        "classes": list(cfg.classes),
        "confusion": confusion.tolist(),
        "spikes": spikes,
        "seconds": time.perf_counter() - t0,
        "segments": rows,
    }


def confusion_png(report: dict, path: str | Path) -> None:
    """The confusion matrix as an image: row-normalised shades, counts written in."""
    m = np.asarray(report["confusion"], np.float64)
    names = report["classes"]
    n, cell, margin = len(names), 36, 230
    img = np.full((margin + n * cell + 10, margin + n * cell + 10, 3), 255, np.uint8)
    frac = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    font = cv2.FONT_HERSHEY_SIMPLEX
    for i in range(n):
        cv2.putText(img, names[i][:28], (6, margin + i * cell + 23), font, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
        for j in range(n):
            y0, x0 = margin + i * cell, margin + j * cell
            shade = int(255 * (1 - frac[i, j]))
            cv2.rectangle(img, (x0, y0), (x0 + cell - 1, y0 + cell - 1), (shade, shade, 255), -1)
            if m[i, j]:
                color = (255, 255, 255) if frac[i, j] > 0.5 else (0, 0, 0)
                cv2.putText(img, str(int(m[i, j])), (x0 + 6, y0 + 23), font, 0.45, color, 1, cv2.LINE_AA)
    col = np.full((margin, margin + n * cell + 10, 3), 255, np.uint8)
    for j in range(n):  # column names, written along a rotated strip
        strip = np.full((cell, margin, 3), 255, np.uint8)
        cv2.putText(strip, names[j][:28], (6, 23), font, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
        col[:, margin + j * cell : margin + (j + 1) * cell] = cv2.rotate(strip, cv2.ROTATE_90_COUNTERCLOCKWISE)
    img[:margin] = np.minimum(img[:margin], col)
    cv2.putText(img, f"accuracy {report['accuracy']:.3f} (n={report['n']})", (6, 20), font, 0.5, (0, 0, 0), 1)
    cv2.putText(img, "predicted (columns)", (margin, 42), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, "true (rows)", (6, margin - 12), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    write_png(img, path)


def write_report(report: dict, path: str | Path) -> None:
    with atomic_output(path, ".json") as tmp:
        Path(tmp).write_text(json.dumps(report, indent=2))


#: The classifier architectures ``train_classifier`` builds: the all-spiking one (NIR-expressible without
#: attention, the bundled default's) and the hybrid SNN front end with an ANN head.
ARCHS = {"spiking": (SpikingClassifier, SpikingConfig), "hybrid": (HybridClassifier, ClassifierConfig)}
DEFAULT_ARCH = "spiking"


def build_model(arch: str = DEFAULT_ARCH, seed: int = 0, **config: object) -> nn.Module:
    """A fresh classifier of architecture ``arch`` (its config's defaults, updated by ``config``), its
    weights drawn from ``seed``."""
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}: choose from {sorted(ARCHS)}")
    cls, config_class = ARCHS[arch]
    with training.seeded(seed):
        return cls(config_class(**config))


def train_classifier(
    data: Sequence[str | Path],
    out: str | Path,
    cfg: TrainConfig,
    *,
    dataset: str = "dvsgesture",
    arch: str = DEFAULT_ARCH,
    model_config: dict | None = None,
    init: str | Path | None = None,
    device: str = "auto",
    resume: bool = False,
    jobs: JobFactory = no_jobs,
) -> training.TrainReport | None:
    """Train on the train splits of ``data`` and score their test splits: the whole of ``spikelens
    train-classify``. ``model_config``: fields of the ``arch``'s config (classes, sensor and the training
    notes come from the data). Under torchrun rank 0 evaluates and writes the report (JSON and confusion
    PNG beside ``out``) and returns it; the other ranks return None."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}: choose from {sorted(DATASETS)}")
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}: choose from {sorted(ARCHS)}")
    rank = training.start_distributed(device)
    out, data = Path(out), [Path(d) for d in data]
    cls = DATASETS[dataset]
    train_sets, test_sets = [cls(d, train=True) for d in data], [cls(d, train=False) for d in data]
    sensor = SensorSize(*train_sets[0].sensor_size[:2])  # tonic's (W, H, P)
    with jobs("load", "sample", None) as job:
        train_data = SegmentSet(tuple(s for ds in train_sets for s in dataset_segments(ds, job)), sensor)
    if init is not None:
        model = load_model(init, "cpu", "classifier", "train-classify")
    else:
        notes = {"trained_on": f"{dataset}: {', '.join(d.name for d in data)}", "seed": cfg.seed}
        fields = {"classes": tuple(train_sets[0].classes), "sensor": sensor, "extra": notes}
        model = build_model(arch, cfg.seed, **(model_config or {}) | fields)
    with jobs("train", "step", None) as job:
        history = train(model, train_data, cfg, out, device, job, resume)
    if rank > 0:
        return None
    net = load_model(out, device)
    test_data = SegmentSet(tuple(s for ds in test_sets for s in dataset_segments(ds)), sensor)
    with jobs("evaluate", "segment", len(test_data)) as job:
        report = evaluate(net, test_data, job)
    report["train"] = {
        "config": dataclasses.asdict(cfg),
        "data": [str(d) for d in data],
        "model_config": dataclasses.asdict(net.config),
        "loss": history,
        "segments": len(train_data),
    }
    write_report(report, out.with_suffix(".json"))
    confusion_png(report, out.with_suffix(".png"))
    return training.TrainReport(out, out.with_suffix(".json"), tuple(history), report)


# ---- classify PATH: a dataset folder, a labelled recording, or a bare one ----


def check_sensor(model: nn.Module, sensor: SensorSize, where: object, force: bool = False) -> None:
    """Refuse a recording whose sensor (width, height) is not the one the model was trained on: it would
    be scaled to the network's input and answered with confidence, meaninglessly. ``force`` lets it run."""
    want = model.config.sensor
    if force or want is None or sensor_size(sensor) == want:
        return
    raise ValueError(
        f"{where}: a {sensor[0]}x{sensor[1]} recording, but this model was trained on {want[0]}x{want[1]} "
        "recordings; its answer would mean nothing (--force runs it anyway)"
    )


#: A bare recording longer than this many windows is classified as a timeline, as ``live`` decides.
TIMELINE_WINDOWS = 5


@dataclass(frozen=True)
class ClassifyResult:
    """What ``spikelens classify`` found, one type for every input: labelled segments scored (``score``,
    :func:`evaluate`'s report), or a bare recording's answer (``label``, ``probabilities``, ``net_ms``)
    and, for one longer than :data:`TIMELINE_WINDOWS` windows, its ``timeline``."""

    classes: tuple[str, ...]
    spikes: dict | None
    score: dict | None = None
    label: str | None = None
    cls: int | None = None
    probabilities: dict[str, float] | None = None
    net_ms: float | None = None
    timeline: dict | None = None

    @property
    def labelled(self) -> bool:
        return self.score is not None

    def as_json(self) -> dict:
        """``classify --json``: the scored report, or the recording's answer (the keys the README lists)."""
        if self.score is not None:
            return self.score
        out = {"label": self.label, "class": self.cls, "probabilities": self.probabilities, "net_ms": self.net_ms}
        out["spikes"] = self.spikes
        return out | ({"timeline": self.timeline} if self.timeline is not None else {})


def classify_path(
    path: str | Path,
    model: str | Path | nn.Module = DEFAULT_MODEL,
    device: str = "auto",
    job: Job | None = None,
    *,
    force: bool = False,
    hop_us: int = 100_000,
    smooth: int = 3,
) -> ClassifyResult:
    """What ``spikelens classify`` prints: a folder's test split or a labelled file scored, or a bare
    recording classified whole (and as a timeline of decisions one hop apart, merged into runs)."""
    net = model if isinstance(model, nn.Module) else load_model(model, device, "classifier", "classify")
    path = Path(path)
    if path.is_dir():
        test = SegmentSet.of(DVSGesture(path, train=False))
        if not len(test):
            raise ValueError(f"{path}: the test split (trials_to_test.txt) lists no labelled gestures")
        check_sensor(net, test.sensor, path, force)
        return _scored(evaluate(net, test, job))
    with open_recording(path) as rec:
        events, sensor = rec.load(), SensorSize.of(rec.meta)
    check_sensor(net, sensor, path, force)
    labels = labels_beside(path)
    if labels is not None:
        segments = tuple(Segment(events, c, t0, t1) for c, t0, t1 in read_labels(labels))
        return _scored(evaluate(net, SegmentSet(segments, sensor), job))
    if events.size == 0:
        raise ValueError(f"{path}: no events to classify")
    job = ensure(job)
    job.check()
    t0 = time.perf_counter()
    probs = classify_segment(net, events, int(events["t"][0]), int(events["t"][-1]) + 1, sensor)
    net_ms = (time.perf_counter() - t0) * 1e3
    k = int(np.argmax(probs))
    classes = list(net.config.classes)
    t_first, t_last = int(events["t"][0]), int(events["t"][-1])
    ends = np.linspace(t_first + net.config.window_us, max(t_last, t_first + net.config.window_us), 16)
    # spikes and energy per window, over 16 windows spread across the recording
    job.check()
    spikes = spike_report(net, np.stack([window_frames(events, int(e), net.config, sensor) for e in ends]))
    job.check()
    timeline = None
    if int(events["t"][-1]) - int(events["t"][0]) > TIMELINE_WINDOWS * net.config.window_us:
        tl = classify_timeline(net, events, sensor, hop_us, smooth)
        timeline = {
            "hop_us": hop_us,
            "smooth": smooth,
            "windows": [
                {
                    "t_us": int(t),
                    "label": classes[int(p.argmax())],
                    "class": int(p.argmax()),
                    "probability": float(p.max()),
                }
                for t, p in zip(tl.ends_us, tl.smoothed, strict=True)
            ],
            "runs": [
                {"label": classes[r.cls], "class": r.cls, "t0_us": r.t0_us, "t1_us": r.t1_us}
                | {"windows": r.windows, "confidence": r.confidence}
                for r in tl.runs
            ],
        }
    probabilities = {c: float(p) for c, p in zip(classes, probs, strict=True)}
    return ClassifyResult(tuple(classes), spikes, None, classes[k], k, probabilities, net_ms, timeline)


def _scored(report: dict) -> ClassifyResult:
    return ClassifyResult(tuple(report["classes"]), report["spikes"], score=report)
