"""What every training loop shares: torchrun process groups, :class:`Run` (model, optimiser, schedule, AMP,
DDP, checkpoint) and the resumable training state.

Under ``torchrun`` (WORLD_SIZE > 1) :func:`start_distributed` joins the
process group (NCCL on CUDA, gloo on CPU); elsewhere everything here is a
no-op for one process. The training state (model, optimiser, schedule,
scaler, RNGs, epoch, history) is written atomically beside the checkpoint
after each epoch, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from spikelens.datasets import atomic_output
from spikelens.hybrid_net.registry import resolve_device, save_model


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Torch's generators (CPU and every CUDA device) seeded for a block and restored after it: the block
    is reproducible and the caller's random state is left as it was; nothing seeds torch globally."""
    with torch.random.fork_rng(devices=range(torch.cuda.device_count())):
        torch.manual_seed(seed)
        yield


def seeded_by(seed_of: Callable[[dict], int]) -> Callable:
    """Decorate a training function to run under :func:`seeded`, the seed taken from its bound arguments."""

    def decorate(fn: Callable) -> Callable:
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def run(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            with seeded(seed_of(bound.arguments)):
                return fn(*args, **kwargs)

        return run

    return decorate


@dataclass(frozen=True)
class TrainReport:
    """What a whole training job (``train_classifier``, ``train_reconstruction``) produced, on rank 0."""

    model: Path  # the trained checkpoint
    report: Path  # its evaluation report (JSON), written beside it
    loss: tuple[float, ...]  # the mean loss of each epoch
    scores: dict  # the evaluation on the test data: the JSON report's contents


def start_distributed(device: str = "auto") -> int:
    """Join torchrun's process group when launched by it (WORLD_SIZE > 1): NCCL on CUDA, else gloo. Returns the rank."""
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if resolve_device(device).type == "cuda" else "gloo")
    return world()[0]


def barrier() -> None:
    import torch.distributed as dist

    if world()[1] > 1:
        dist.barrier()


def world() -> tuple[int, int]:
    """(rank, world size) under torchrun / an initialised process group, else (0, 1)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def rank_device(device: str) -> torch.device:
    """This process's device: under torchrun on GPUs, the GPU of its LOCAL_RANK."""
    rank, n = world()
    dev = resolve_device(device)
    if n > 1 and dev.type == "cuda":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
    return dev


def broadcast_buffers(model: torch.nn.Module) -> None:
    """BN statistics are updated locally in each forward: end with rank 0's on every rank, as DDP does."""
    import torch.distributed as dist

    if world()[1] > 1:
        for b in model.buffers():
            dist.broadcast(b, 0)


class Run:
    """One training run's machinery, the same for every model: the model on this rank's device (wrapped in
    DistributedDataParallel under torchrun), AdamW, a schedule, AMP on CUDA, the state saved after each
    epoch and restored by ``resume``, and the checkpoint written by rank 0 at the end.

    ``rngs`` are the run's NumPy generators (data order, augmentation): saved and restored with the rest.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        device: str,
        lr: float,
        weight_decay: float,
        schedule: Callable[[torch.optim.Optimizer], object],
        out: str | Path,
        rngs: tuple[np.random.Generator, ...],
        resume: bool = False,
    ) -> None:
        from torch.nn.parallel import DistributedDataParallel

        self.rank, self.world = world()
        self.dev = rank_device(device)
        self.model = model.to(self.dev).train()
        self.net = DistributedDataParallel(self.model) if self.world > 1 else self.model
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=lr, weight_decay=weight_decay)
        self.sched = schedule(self.opt)
        self.amp = self.dev.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.out, self.saved, self.rngs = out, state_path(out), rngs
        self.first, self.history = 0, []
        if resume and self.saved.exists():
            self.first, self.history = load_state(self.saved, self.model, self.opt, self.sched, self.scaler, rngs)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.dev.type, enabled=self.amp):
            return self.net(*inputs).float()

    def step(self, loss: torch.Tensor) -> float:
        """One optimiser step through the AMP grad scaler (a no-op scaler on CPU); returns the loss."""
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()
        self.sched.step()
        return loss.item()

    def end_epoch(self, epoch: int, losses: list[float]) -> None:
        self.history.append(float(np.mean(losses)))
        if self.rank == 0:
            save_state(self.saved, self.model, self.opt, self.sched, self.scaler, epoch, self.history, self.rngs)

    def finish(self) -> list[float]:
        """Rank 0's BN statistics everywhere, the checkpoint (rank 0), the state file gone; the epoch losses."""
        broadcast_buffers(self.model)
        if self.rank == 0:
            save_model(self.model.cpu().eval(), self.out)
            self.saved.unlink(missing_ok=True)
        barrier()
        return self.history


def state_path(out: str | Path) -> Path:
    """Where training keeps what ``resume`` needs: beside the checkpoint, ``<name>.state.pt``."""
    return Path(out).with_suffix(".state.pt")


def save_state(path: Path, model, opt, sched, scaler, epoch: int, history: list, rngs: tuple) -> None:
    state = {
        "model": model.state_dict(),
        "opt": opt.state_dict(),
        "sched": sched.state_dict(),
        "scaler": scaler.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "meta": json.dumps({"epoch": epoch, "history": history, "rngs": [r.bit_generator.state for r in rngs]}),
    }
    with atomic_output(path, ".pt") as tmp:
        torch.save(state, tmp)


def load_state(path: Path, model, opt, sched, scaler, rngs: tuple[np.random.Generator, ...]) -> tuple[int, list]:
    """Restore what :func:`save_state` wrote; returns (first epoch to run, history)."""
    st = torch.load(path, map_location="cpu", weights_only=True)
    meta = json.loads(st["meta"])
    model.load_state_dict(st["model"])
    opt.load_state_dict(st["opt"])
    sched.load_state_dict(st["sched"])
    scaler.load_state_dict(st["scaler"])
    torch.set_rng_state(st["torch_rng"].cpu())
    for r, s in zip(rngs, meta["rngs"], strict=True):
        r.bit_generator.state = s
    return meta["epoch"] + 1, meta["history"]
