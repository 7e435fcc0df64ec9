"""Train and evaluate RefocusNet on simulated synthetic-aperture scenes.

Each sample is a textured target plane at a random depth behind a random
occluder, seen by a camera sliding at v = 0.177 m/s with fx = 320 px (the
E-SAI geometry), cropped to a small square sensor. The network regresses
psi = rate * bin duration from the unfocused frames; the Average Pixel Shift
Error (APSE) compares it with manual autofocus on the same samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from spikelens.datasets.patterns import sai_points
from spikelens.hybrid_net.checkpoint import save_checkpoint
from spikelens.hybrid_net.refocusnet import RefocusNet, RefocusNetConfig, apse
from spikelens.pipelines.jobs import Job, ensure
from spikelens.pipelines.training import seeded_by
from spikelens.refocus import autofocus, pack_frames, shift_rate

FX, V = 320.0, 0.177


@dataclass(frozen=True)
class ShiftSamples:
    frames: torch.Tensor  # (N, T, 2, S, S) unfocused counts
    psi: torch.Tensor  # (N,) true px per bin
    events: list[np.ndarray]  # raw events, for the autofocus comparison
    t_ref_us: int
    duration_us: int
    size: int

    @property
    def n_bins(self) -> int:
        return self.frames.shape[1]

    @property
    def ref_bin(self) -> float:
        return self.n_bins / 2 - 0.5


def simulate_samples(
    n: int,
    n_bins: int = 16,
    size: int = 64,
    duration_us: int = 400_000,
    depth_range: tuple[float, float] = (0.5, 2.0),
    seed: int = 0,
) -> ShiftSamples:
    rng = np.random.default_rng(seed)
    frames = np.zeros((n, n_bins, 2, size, size), np.float32)
    psi = np.zeros(n, np.float32)
    events = []
    t_ref = duration_us // 2
    for i in range(n):
        depth = float(rng.uniform(*depth_range))
        occluder = float(rng.uniform(0.2, 0.4)) if rng.random() < 0.7 else None
        ev, t_ref = sai_points(
            size,
            size,
            FX,
            V,
            depth,
            occluder,
            duration_us,
            n_events=int(rng.integers(8_000, 20_000)),
            n_points=int(rng.integers(40, 160)),
            occluder_fraction=float(rng.uniform(0.1, 0.4)),
            seed=rng,
        )
        frames[i] = pack_frames(ev, 0.0, t_ref, n_bins, (size, size), t_range=(0, duration_us), dtype=np.float32)
        psi[i] = shift_rate(FX, V, depth) * duration_us / n_bins / 1e6
        events.append(ev)
    return ShiftSamples(torch.from_numpy(frames), torch.from_numpy(psi), events, t_ref, duration_us, size)


@dataclass
class TrainHistory:
    train_loss: list[float]
    val_apse: list[float]


@seeded_by(lambda a: a["seed"])  # weights and shuffles; the caller's torch generators stay as they were
def train_refocusnet(
    train: ShiftSamples,
    val: ShiftSamples,
    epochs: int = 30,
    batch_size: int = 32,
    lr: float = 2e-3,
    seed: int = 0,
    device: str = "cpu",
    job: Job | None = None,
) -> tuple[RefocusNet, TrainHistory]:
    """Supervised L1 regression of psi; returns the model with the best validation APSE.

    A job: one report per epoch (train L1, validation APSE); cancelling raises ``Cancelled``.
    """
    job = ensure(job)
    gen = torch.Generator().manual_seed(seed)
    model = RefocusNet(RefocusNetConfig(n_bins=train.n_bins)).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    history = TrainHistory([], [])
    best, best_state = float("inf"), None
    for epoch in range(epochs):
        job.check()
        model.train()
        order = torch.randperm(len(train.psi), generator=gen)
        total = 0.0
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            x, y = train.frames[idx].to(device), train.psi[idx].to(device)
            if torch.rand(1, generator=gen).item() < 0.5:  # mirror time and space: psi is unchanged
                x = x.flip(1).flip(-1)
            loss = (model(x) - y).abs().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        sched.step()
        score = evaluate_apse(model, val, device)
        history.train_loss.append(total / len(order))
        history.val_apse.append(score)
        if score < best:
            best, best_state = score, {k: v.clone() for k, v in model.state_dict().items()}
        job.report(epoch + 1, epochs, f"train L1 {history.train_loss[-1]:.4f} px/bin, val APSE {score:.4f} px")
    if best_state is not None:
        model.load_state_dict(best_state)
    return model.eval(), history


@torch.no_grad()
def predict_psi(model: RefocusNet, samples: ShiftSamples, device: str = "cpu") -> torch.Tensor:
    model.eval()
    return torch.cat([model(samples.frames[i : i + 64].to(device)).cpu() for i in range(0, len(samples.psi), 64)])


def evaluate_apse(model: RefocusNet, samples: ShiftSamples, device: str = "cpu") -> float:
    return apse(predict_psi(model, samples, device), samples.psi, samples.n_bins, samples.ref_bin)


def autofocus_psi(samples: ShiftSamples, depth_range: tuple[float, float] = (0.3, 5.0)) -> torch.Tensor:
    """psi found by manual autofocus (variance sweep) on each sample's events."""
    bin_s = samples.duration_us / samples.n_bins / 1e6
    rates = [
        autofocus(ev, FX, V, samples.t_ref_us, (samples.size, samples.size), depth_range).rate for ev in samples.events
    ]
    return torch.tensor(rates, dtype=torch.float64) * bin_s


@dataclass(frozen=True)
class RefocusNetReport:
    path: Path
    n_val: int
    apse_net: float
    apse_autofocus: float
    history: TrainHistory


def train_to_checkpoint(
    path: str | Path, samples: int = 768, epochs: int = 25, seed: int = 0, job: Job | None = None
) -> RefocusNetReport:
    """`spikelens train-refocusnet`: simulate train/validation scenes, train, save, and compare APSE
    with autofocus on the same validation scenes."""
    path = Path(path)
    train = simulate_samples(samples, seed=seed)
    val = simulate_samples(max(samples // 6, 8), seed=seed + 1)
    model, history = train_refocusnet(train, val, epochs=epochs, seed=seed, job=job)
    save_checkpoint(model, path)
    manual = apse(autofocus_psi(val), val.psi, val.n_bins, val.ref_bin)
    return RefocusNetReport(path, len(val.psi), evaluate_apse(model, val), manual, history)
