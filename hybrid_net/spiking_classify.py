"""An all-spiking classifier of event windows: cheap by its own count, and expressible in NIR.

Input: T x B x 2 x S x S event counts (T bins of one window, channel 0 = ON), sent on as spikes: a pixel
that saw at least one event in a bin spikes once in that bin. Every stage is a stride-2 Conv3x3 -> BN ->
[attention] -> LIF/PLIF (no pooling, so each layer's input is binary), then the spike maps, flattened,
go through Linear -> BN -> LIF, whose spikes come back one step later through a recurrent Linear, and a
Linear readout whose output, summed over the T steps, is the decision (the mean is the logits). With no
attention every operation is a NIR node (Conv2d, LIF, Flatten, Affine, and the recurrent loop a Linear
edge back into the LIF; BatchNorm folds into the weights): see :mod:`spikelens.hybrid_net.nir_export`.

Why this shape: the hybrid classifier (:mod:`spikelens.hybrid_net.classify`) multiplies on event counts
in its first stage at every step and runs an ANN head at every step; those multiplications cost more
than its spikes save (its own estimate: 1.6x the energy of its ANN twin). Here every weighted layer sees
only 0/1 input, so its work is one accumulate per synapse an input spike reaches, and the spike-rate
regulariser of training (:attr:`SpikingClassifier.spike_rates`) keeps those few. Order matters for the
gestures (clockwise vs counter-clockwise differ only in it): the leaky membranes weigh the latest input
most, and the recurrent weights let a unit fire for "this shape after that one", which a feed-forward
stack of spiking layers learns poorly.

``forward(x, stats=True)`` also returns spikes per layer and the operation counts of
:func:`spikelens.hybrid_net.energy.energy`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from spikelens.hybrid_net.blocks import WindowConfig, check_window, make_attention, make_neuron, per_step, spike_stats
from spikelens.hybrid_net.energy import attention_macs, conv_macs, conv_synops
from spikelens.hybrid_net.neurons import lif_step


@dataclass(frozen=True)
class SpikingConfig(WindowConfig):
    channels: tuple[int, ...] = (16, 32, 64, 64)  # one stride-2 stage each
    hidden: int = 128
    #: the dense layer feeds its own spikes back one step later (W_rec s[t-1]): order-selective units
    recurrent: bool = True

    @property
    def flat(self) -> int:
        """Features entering the dense layer: the last stage's spike maps."""
        side = self.size // 2 ** len(self.channels)
        return self.channels[-1] * side * side


class SpikingConvStage(nn.Module):
    def __init__(self, c_in: int, c_out: int, cfg: SpikingConfig) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.attention = make_attention(cfg, c_out)
        self.neuron = make_neuron(cfg)

    def forward(self, spikes: Tensor) -> Tensor:
        return self.neuron(self.attention(per_step(lambda s: self.bn(self.conv(s)), spikes)))


class RecurrentLIF(nn.Module):
    """A LIF layer whose spikes come back one step later: mem[t] = decay mem[t-1] (1 - s[t-1]) + drive[t]
    + W_rec s[t-1]. Stepped, since each step's input needs the last step's spikes; W_rec starts at zero
    (the feed-forward layer) and training grows it."""

    def __init__(self, neuron: nn.Module, width: int) -> None:
        super().__init__()
        self.neuron = neuron
        self.recurrent = nn.Linear(width, width, bias=False)
        nn.init.zeros_(self.recurrent.weight)

    @property
    def decay(self) -> Tensor | float:
        return self.neuron.decay

    @property
    def threshold(self) -> float:
        return self.neuron.threshold

    def forward(self, drive: Tensor) -> Tensor:
        n = self.neuron
        state, spikes = None, []
        for x in drive:
            if state is not None:
                x = x + self.recurrent(state.spike)
            s, state = lif_step(x, state, n.decay, n.threshold, n.surrogate)
            spikes.append(s)
        return torch.stack(spikes)


class SpikingClassifier(nn.Module):
    config_class = SpikingConfig

    def __init__(self, config: SpikingConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or SpikingConfig()
        widths = (2, *cfg.channels)
        self.stages = nn.ModuleList(SpikingConvStage(a, b, cfg) for a, b in itertools.pairwise(widths))
        self.drop = nn.Dropout(cfg.dropout)
        self.dense = nn.Linear(cfg.flat, cfg.hidden, bias=False)
        self.dense_bn = nn.BatchNorm1d(cfg.hidden)
        self.dense_neuron = RecurrentLIF(make_neuron(cfg), cfg.hidden) if cfg.recurrent else make_neuron(cfg)
        self.readout = nn.Linear(cfg.hidden, len(cfg.classes))
        #: mean spike rate of each spiking layer in the last forward pass (differentiable while training:
        #: the spike-rate regulariser adds their mean to the loss)
        self.spike_rates: list[Tensor] = []

    def forward(self, x_tb: Tensor, stats: bool = False) -> Tensor | tuple[Tensor, dict]:
        """``x_tb``: T x B x 2 x S x S (time first, SpikingJelly's multi-step order; reconstructors take B first)."""
        cfg = self.config
        check_window(x_tb, cfg.steps, cfg.size)
        t, b = x_tb.shape[:2]
        x = (x_tb > 0).float()  # the input spikes
        layers, ops, rates = [], [], []
        for i, stage in enumerate(self.stages):
            spikes = stage(x)
            rates.append(spikes.mean())
            if stats:
                name = f"stage{i + 1}"
                layers.append(spike_stats(name, spikes))
                ops.append(_conv_ops(name, stage.conv, x))
                if cfg.attention != "none":
                    c, h, w = spikes.shape[2:]
                    per = attention_macs(stage.attention, t, c, h, w)
                    ops.append(
                        {
                            "name": f"{name}.attention",
                            "macs_ann": attention_macs(stage.attention, 1, c, h, w),
                            "macs_snn": per,
                            "synops": 0.0,
                        }
                    )
            x = spikes
        flat = self.drop(x.flatten(2))  # T x B x flat
        drive = per_step(lambda f: self.dense_bn(self.dense(f)), flat)
        hidden = self.dense_neuron(drive)
        rates.append(hidden.mean())
        out = per_step(self.readout, hidden)  # T x B x classes: the readout's current at each step
        logits = out.mean(dim=0)
        self.spike_rates = rates
        if not stats:
            return logits
        layers.append(spike_stats("dense", hidden))
        ops.append(_linear_ops("dense", self.dense, flat))
        if cfg.recurrent:
            rec = _linear_ops("recurrent", self.dense_neuron.recurrent, hidden[:-1])  # s[t-1] reaches step t
            ops.append(rec | {"steps": t - 1})
        ops.append(_linear_ops("readout", self.readout, hidden))
        return logits, {"layers": layers, "ops": ops, "batch": b, "steps": t}


def _conv_ops(name: str, conv: nn.Conv2d, spikes: Tensor) -> dict:
    """A convolution on 0/1 input: its MACs once (the ANN twin) and its accumulates as run."""
    t, b = spikes.shape[:2]
    h_out = (spikes.shape[-2] + 2 * conv.padding[0] - conv.kernel_size[0]) // conv.stride[0] + 1
    w_out = (spikes.shape[-1] + 2 * conv.padding[1] - conv.kernel_size[1]) // conv.stride[1] + 1
    return {
        "name": name,
        "macs_ann": h_out * w_out * conv_macs(conv),
        "macs_snn": 0,
        "synops": conv_synops(conv, spikes.detach().reshape(t * b, *spikes.shape[2:])) / b,
        # the synapses that exist (padding has none): what one step costs with every input spiking
        "connections": conv_synops(conv, torch.ones(1, *spikes.shape[2:], device=spikes.device)),
    }


def _linear_ops(name: str, linear: nn.Linear, spikes: Tensor) -> dict:
    b = spikes.shape[1]
    return {
        "name": name,
        "macs_ann": linear.in_features * linear.out_features,
        "macs_snn": 0,
        "synops": float(spikes.detach().sum()) * linear.out_features / b,
        "connections": linear.in_features * linear.out_features,
    }
