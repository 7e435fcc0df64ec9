"""What the networks of event windows share: the window config, per-step layers, neurons and attention
chosen by name, and spike statistics per layer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from torch import Tensor, nn

from spikelens.datasets.collections.dvs_gesture import CLASSES
from spikelens.datasets.sensor_size import SensorSize
from spikelens.hybrid_net.attention import TCJA, MultiDimAttention
from spikelens.hybrid_net.neurons import LIF, PLIF


@dataclass(frozen=True)
class WindowConfig:
    """A classifier of one window of events: T bins of ``window_us / steps``, frames ``size`` x ``size``,
    one stage per entry of ``channels`` (each halves the map)."""

    classes: tuple[str, ...] = tuple(CLASSES)
    size: int = 64  # input frames are size x size (events scaled from the sensor)
    steps: int = 8  # T: bins per window
    window_us: int = 800_000
    channels: tuple[int, ...] = (16, 32, 64)
    neuron: str = "plif"  # lif | plif
    attention: str = "none"  # none | tcja | ma
    dropout: float = 0.2
    threshold: float = 0.5
    extra: dict = field(default_factory=dict)  # free-form notes (training data), kept in the checkpoint
    #: the sensor of the recordings it was trained on; None when the checkpoint does not say
    sensor: SensorSize | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(self.classes))
        object.__setattr__(self, "channels", tuple(self.channels))
        if self.sensor is not None:
            object.__setattr__(self, "sensor", SensorSize(int(self.sensor[0]), int(self.sensor[1])))  # JSON: [w, h]
        if self.neuron not in ("lif", "plif"):
            raise ValueError(f"neuron must be lif or plif, got {self.neuron!r}")
        if self.attention not in ("none", "tcja", "ma"):
            raise ValueError(f"attention must be none, tcja or ma, got {self.attention!r}")
        if self.size % (2 ** len(self.channels)):
            raise ValueError(f"size {self.size} must be divisible by 2^{len(self.channels)} (each stage halves it)")
        if self.window_us % self.steps:
            raise ValueError(f"window_us {self.window_us} must split into {self.steps} equal bins")

    @property
    def bin_us(self) -> int:
        return self.window_us // self.steps


def check_window(x_tb: Tensor, steps: int, size: int) -> None:
    """A classifier's input must be T x B x 2 x S x S with its own T and S."""
    if x_tb.ndim != 5 or x_tb.shape[0] != steps or x_tb.shape[2:] != (2, size, size):
        raise ValueError(f"expected T x B x 2 x {size} x {size} with T = {steps}; got {tuple(x_tb.shape)}")


def per_step(layer: Callable[[Tensor], Tensor], x_seq: Tensor) -> Tensor:
    """A stateless layer over T x B x ... as one batch of T * B samples."""
    t, b = x_seq.shape[:2]
    y = layer(x_seq.reshape(t * b, *x_seq.shape[2:]))
    return y.reshape(t, b, *y.shape[1:])


def make_neuron(cfg: WindowConfig) -> nn.Module:
    return PLIF(threshold=cfg.threshold) if cfg.neuron == "plif" else LIF(threshold=cfg.threshold)


def make_attention(cfg: WindowConfig, channels: int) -> nn.Module:
    if cfg.attention == "tcja":
        return TCJA(cfg.steps, channels)
    if cfg.attention == "ma":
        return MultiDimAttention(cfg.steps, channels, reduction_t=max(1, cfg.steps // 4), reduction_c=4)
    return nn.Identity()


def spike_stats(name: str, spikes: Tensor) -> dict:
    """A spiking layer's T x B x ... output: neurons, spikes per sample and window, rate per neuron and step."""
    per_sample = spikes.detach().flatten(2).sum(dim=(0, 2))
    return {
        "name": name,
        "neurons": int(spikes[0, 0].numel()),
        "spikes": float(per_sample.mean()),
        "spikes_per_sample": per_sample.tolist(),
        "rate": float(spikes.mean()),
    }
