"""Leaky integrate-and-fire neurons with surrogate gradients, state kept explicit.

E-SAI's neuron (codes/Networks/Hybrid.py) updates, per time step,

    mem = mem * decay * (1 - spike) + input,   spike = mem > threshold

with decay 0.75 and threshold 0.5: a leak, a hard reset folded into the
leak, and no input scaling. That is SpikingJelly's ``LIFNode(tau=4,
decay_input=False, v_threshold=0.5, v_reset=0)`` with the reset moved to
the next step (the spikes are the same; our ``mem`` is its voltage before
reset). Spikes are Heaviside in the forward pass; the backward pass uses a
surrogate derivative of (mem - threshold):

- ``rect``: 1 where |x| < alpha, a half width (E-SAI: 0.5, which is SpikingJelly's ``Rect(alpha=1)``)
- ``atan``: alpha / (2 (1 + (pi / 2 * alpha * x)^2)) (SpikingJelly ``ATan``, alpha 2)
- ``sigmoid``: alpha * s * (1 - s), s = sigmoid(alpha * x) (SpikingJelly ``Sigmoid``, alpha 4)

The parametric LIF learns its decay as 1 - sigmoid(w) (Fang et al., ICCV
2021), one per layer. Sequences are time-first, (T, B, ...), as SpikingJelly's
multi-step mode; the state (mem, spike) goes in and comes out of
:func:`lif_multistep`, and the modules start from rest on every call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

Surrogate = Literal["rect", "atan", "sigmoid"]


class _Spike(torch.autograd.Function):
    """Heaviside forward (x > 0, as E-SAI's ``gt``); the surrogate derivative backward."""

    @staticmethod
    def forward(ctx, x: Tensor, kind: str, alpha: float) -> Tensor:
        ctx.save_for_backward(x)
        ctx.kind, ctx.alpha = kind, alpha
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (x,) = ctx.saved_tensors
        return grad * surrogate_grad(x, ctx.kind, ctx.alpha), None, None


def surrogate_grad(x: Tensor, kind: Surrogate, alpha: float) -> Tensor:
    """The surrogate derivative at x = mem - threshold (the formulas in the module docstring)."""
    if kind == "rect":
        return (x.abs() < alpha).to(x.dtype)  # alpha is the half width here
    if kind == "atan":
        return alpha / (2 * (1 + (math.pi / 2 * alpha * x) ** 2))
    if kind == "sigmoid":
        s = torch.sigmoid(alpha * x)
        return alpha * s * (1 - s)
    raise ValueError(f"unknown surrogate {kind!r}: use rect, atan or sigmoid")


#: Default alpha per surrogate: E-SAI's half width, SpikingJelly's defaults.
SURROGATE_ALPHA = {"rect": 0.5, "atan": 2.0, "sigmoid": 4.0}


def spike_fn(x: Tensor, kind: Surrogate = "rect", alpha: float | None = None) -> Tensor:
    if kind not in SURROGATE_ALPHA:
        raise ValueError(f"unknown surrogate {kind!r}: use rect, atan or sigmoid")
    return _Spike.apply(x, kind, SURROGATE_ALPHA[kind] if alpha is None else float(alpha))


@dataclass
class LIFState:
    mem: Tensor
    spike: Tensor


def lif_step(
    x: Tensor,
    state: LIFState | None,
    decay: float | Tensor = 0.75,
    threshold: float = 0.5,
    surrogate: Surrogate = "rect",
) -> tuple[Tensor, LIFState]:
    """One step: mem = mem * decay * (1 - spike) + x, spike = mem > threshold. Returns (spike, new state)."""
    mem = x if state is None else state.mem * decay * (1.0 - state.spike) + x
    spike = spike_fn(mem - threshold, surrogate)
    return spike, LIFState(mem, spike)


def lif_multistep(
    x_seq: Tensor,
    state: LIFState | None = None,
    decay: float | Tensor = 0.75,
    threshold: float = 0.5,
    surrogate: Surrogate = "rect",
) -> tuple[Tensor, LIFState]:
    """Run :func:`lif_step` over the first (time) axis; returns (T x ... spikes, the last state).

    Without autograd (inference) it updates one membrane buffer in place: the same values, no temporaries.
    """
    if not torch.is_grad_enabled() and x_seq.shape[0] > 0:
        return _lif_inplace(x_seq, state, decay, threshold)
    spikes = []
    for x in x_seq:
        s, state = lif_step(x, state, decay, threshold, surrogate)
        spikes.append(s)
    return torch.stack(spikes), state


def _lif_inplace(x_seq: Tensor, state: LIFState | None, decay: float | Tensor, threshold: float):
    """``mem -= mem * spike`` is the reset (exact for 0/1 spikes, and far cheaper than a masked fill)."""
    spikes = torch.empty_like(x_seq)
    mem = x_seq[0].clone() if state is None else state.mem * decay * (1.0 - state.spike) + x_seq[0]
    torch.gt(mem, threshold, out=spikes[0])
    for t in range(1, x_seq.shape[0]):
        mem.addcmul_(mem, spikes[t - 1], value=-1.0).mul_(decay).add_(x_seq[t])  # = mem * decay * (1 - spike) + x
        torch.gt(mem, threshold, out=spikes[t])
    return spikes, LIFState(mem, spikes[-1])


class LIF(nn.Module):
    """Multi-step LIF with a fixed decay (E-SAI's neuron by default), from rest on each call."""

    def __init__(self, decay: float = 0.75, threshold: float = 0.5, surrogate: Surrogate = "rect") -> None:
        super().__init__()
        if not 0 <= decay <= 1:
            raise ValueError(f"decay must be in [0, 1], got {decay}")
        self.decay, self.threshold, self.surrogate = decay, threshold, surrogate

    def forward(self, x_seq: Tensor) -> Tensor:
        return lif_multistep(x_seq, None, self.decay, self.threshold, self.surrogate)[0]

    def extra_repr(self) -> str:
        return f"decay={self.decay}, threshold={self.threshold}, surrogate={self.surrogate}"


class PLIF(nn.Module):
    """Multi-step LIF whose decay 1 - sigmoid(w) is learned; starts at ``init_decay``."""

    def __init__(self, init_decay: float = 0.75, threshold: float = 0.5, surrogate: Surrogate = "atan") -> None:
        super().__init__()
        if not 0 < init_decay < 1:
            raise ValueError(f"init_decay must be in (0, 1), got {init_decay}")
        k = 1 - init_decay  # sigmoid(w) = k
        self.w = nn.Parameter(torch.tensor(math.log(k / (1 - k))))
        self.threshold, self.surrogate = threshold, surrogate

    @property
    def decay(self) -> Tensor:
        return 1 - torch.sigmoid(self.w)

    def forward(self, x_seq: Tensor) -> Tensor:
        return lif_multistep(x_seq, None, self.decay, self.threshold, self.surrogate)[0]
