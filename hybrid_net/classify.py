"""Hybrid SNN-CNN classifier of event windows: a spiking convolutional front end, a temporal ANN head.

Input: T x B x 2 x S x S event counts (T time bins of one window, channel 0 =
ON, S = ``config.size``). The front end is SpikingJelly's DVS recipe
(Conv3x3 -> BN -> [attention] -> LIF/PLIF -> MaxPool2, per stage), each
convolution run over all T steps as one batch and only the neurons stepping
through time. Its spikes feed an ANN head: each step's spike maps averaged to
4 x 4, a 1-D convolution along time (clockwise and counter-clockwise differ
only in the order of the same shapes), a mean over T and a linear layer.
Counts enter as log1p(count): a bright scene and a dim one give similar
drives.

The window (``window_us`` split into ``steps`` bins) is part of the config:
the model is trained on and must be fed windows of that length.

``forward(x, stats=True)`` also returns spike statistics per layer and the
operation counts the energy estimate needs (:func:`spikelens.hybrid_net.energy.energy`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spikelens.hybrid_net.blocks import WindowConfig, check_window, make_attention, make_neuron, per_step, spike_stats
from spikelens.hybrid_net.energy import conv_macs, conv_synops


@dataclass(frozen=True)
class ClassifierConfig(WindowConfig):
    head: int = 128


#: the head sees each step's spike maps pooled to POOLED x POOLED
POOLED = 4


class SpikingStage(nn.Module):
    def __init__(self, c_in: int, c_out: int, cfg: ClassifierConfig) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.attention = make_attention(cfg, c_out)
        self.neuron = make_neuron(cfg)

    def forward(self, x_tb: Tensor) -> Tensor:
        drive = self.attention(per_step(lambda x: self.bn(self.conv(x)), x_tb))
        return per_step(lambda s: F.max_pool2d(s, 2), self.neuron(drive))


class HybridClassifier(nn.Module):
    config_class = ClassifierConfig

    def __init__(self, config: ClassifierConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or ClassifierConfig()
        widths = (2, *cfg.channels)
        self.stages = nn.ModuleList(SpikingStage(a, b, cfg) for a, b in itertools.pairwise(widths))
        self.temporal = nn.Sequential(
            nn.Conv1d(widths[-1] * POOLED**2, cfg.head, 3, padding=1, bias=False), nn.BatchNorm1d(cfg.head), nn.ReLU()
        )
        self.drop = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(cfg.head, len(cfg.classes))
        #: mean spike rate of each stage in the last forward pass (the spike-rate regulariser reads it)
        self.spike_rates: list[Tensor] = []

    def forward(self, x_tb: Tensor, stats: bool = False) -> Tensor | tuple[Tensor, dict]:
        """``x_tb``: T x B x 2 x S x S (time first, SpikingJelly's multi-step order; reconstructors take B first)."""
        cfg = self.config
        check_window(x_tb, cfg.steps, cfg.size)
        x = torch.log1p(x_tb.float())
        layers, ops, self.spike_rates = [], [], []
        for i, stage in enumerate(self.stages):
            spikes = stage(x)
            self.spike_rates.append(spikes.mean())
            if stats:
                layers.append(spike_stats(f"stage{i + 1}", spikes))
                ops.append(_stage_ops(f"stage{i + 1}", stage.conv, x, first=i == 0))
            x = spikes
        feat = per_step(lambda s: F.adaptive_avg_pool2d(s, POOLED).flatten(1), x)  # T x B x C * POOLED^2
        feat = self.temporal(feat.permute(1, 2, 0)).mean(dim=2)  # B x head
        logits = self.fc(self.drop(feat))
        if not stats:
            return logits
        t, b = x_tb.shape[:2]
        head_step = self.temporal[0].in_channels * cfg.head * 3
        fc = len(cfg.classes) * cfg.head
        ops.append({"name": "head", "macs_ann": head_step + fc, "macs_snn": head_step * t + fc, "synops": 0.0})
        return logits, {"layers": layers, "ops": ops, "batch": b, "steps": t}


def _stage_ops(name: str, conv: nn.Conv2d, inputs: Tensor, first: bool) -> dict:
    """A stage's convolution: MACs once as an ANN layer; as run, the first stage multiplies on the event
    counts at every step and the others accumulate once per synapse an input spike reaches."""
    t, b = inputs.shape[:2]
    h, w = inputs.shape[-2:]  # stride 1, padding 1: the output is the input's size
    macs = h * w * conv_macs(conv)
    synops = 0.0 if first else conv_synops(conv, inputs.detach().reshape(t * b, *inputs.shape[2:])) / b
    return {"name": name, "macs_ann": macs, "macs_snn": macs * t if first else 0, "synops": synops}
