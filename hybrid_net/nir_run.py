"""Run a NIR graph from any framework as a classifier of event windows (``--model GRAPH.nir``).

The graph is read with ``nir.read`` (HDF5 arrays and attributes: opening it runs no code) and stepped
once per time bin, its nodes in topological order, each taking the sum of its inputs (NIR's rule for a
node with several incoming edges). Neurons are NIR's ODEs by forward Euler at ``dt`` (the graph's
``metadata["dt"]`` when it has one, else 1e-4 s, snnTorch's step), spikes when ``v > v_threshold``
and reset to ``v_reset`` (0 when absent):

- ``LIF``: ``v += dt / tau * (v_leak - v + r * I)``
- ``CubaLIF``: ``i += dt / tau_syn * (w_in * I - i)``, then ``v += dt / tau_mem * (v_leak - v + r * i)``
- ``IF``: ``v += r * I``;  ``LI``: as LIF with no spikes (its output is ``v``)

Also: ``Affine``, ``Linear``, ``Conv2d``, ``Flatten`` (dimensions without the batch), ``AvgPool2d``,
``SumPool2d``, ``Scale``, ``Threshold``; any other node is refused. An edge that closes a cycle (found
depth-first from the input) is recurrent: it carries its source's output of the previous step (nothing
at the first), as snnTorch's ``RLeaky`` and NIRTorch read NIR's loops.

Input: the window as spikes, 1 where a pixel saw an event in a bin (T x B x C x S x S; channel 0 ON,
as :mod:`spikelens.hybrid_net.nir_export` writes). Decision: argmax of the output summed over the steps;
the logits are its mean. A graph spikelens exported carries its classes, window and steps; for another
framework's graph they default to DVS Gesture's 11 classes (when the output has 11), 8 steps of 100 ms,
and the input's size. Operation counts follow :mod:`spikelens.hybrid_net.energy`: a weighted node fed
only 0/1 values accumulates (synaptic operations), one fed other values multiplies at every step.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spikelens.datasets.collections.dvs_gesture import CLASSES
from spikelens.datasets.sensor_size import SensorSize
from spikelens.hybrid_net.blocks import check_window
from spikelens.hybrid_net.energy import conv_macs, conv_synops

DEFAULT_DT = 1e-4
_NEURONS = ("LIF", "CubaLIF", "IF")


class NIRGraphError(ValueError):
    """A NIR graph this runner cannot run as a classifier, with the reason."""


@dataclass(frozen=True)
class NIRConfig:
    """What the classifying pipelines read from a model's config."""

    classes: tuple[str, ...]
    size: int
    steps: int = 8
    window_us: int = 800_000
    sensor: SensorSize | None = None
    dt: float = DEFAULT_DT
    extra: dict = field(default_factory=dict)

    @property
    def bin_us(self) -> int:
        return self.window_us // self.steps


def _arr(v, dev) -> Tensor:
    return torch.as_tensor(np.asarray(v, np.float32), device=dev)


def _pair(v) -> tuple[int, int] | str:
    if isinstance(v, str):
        return v
    a = np.atleast_1d(np.asarray(v)).astype(int).tolist()
    return (a[0], a[0]) if len(a) == 1 else (a[0], a[1])


def _back_edges(nodes: dict, edges: list[tuple[str, str]], start: str) -> set[tuple[str, str]]:
    """The edges that close a cycle (to a node still on the depth-first path from the input): they carry
    the source's output of the previous step, as recurrent connections do."""
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        succ[a].append(b)
    back, done, path = set(), set(), set()

    def visit(n: str) -> None:
        path.add(n)
        for m in succ[n]:
            if m in path:
                back.add((n, m))
            elif m not in done:
                visit(m)
        path.discard(n)
        done.add(n)

    visit(start)
    for n in nodes:  # nodes the input does not reach (constant sources) still get an order
        if n not in done:
            visit(n)
    return back


def _order(nodes: dict, edges: list[tuple[str, str]]) -> list[str]:
    """Kahn's topological order of the graph without its back edges."""
    indeg = {n: 0 for n in nodes}
    for _, b in edges:
        indeg[b] += 1
    ready = sorted(n for n, d in indeg.items() if d == 0)
    order = []
    while ready:
        n = ready.pop(0)
        order.append(n)
        for a, b in edges:
            if a == n:
                indeg[b] -= 1
                if indeg[b] == 0:
                    ready.append(b)
    return order


class NIRClassifier(nn.Module):
    """A NIR graph stepped through a window (loops as one-step delays); ``forward`` as the other
    classifiers'. The graph's arrays become tensors once per device."""

    def __init__(self, graph, config: NIRConfig) -> None:
        super().__init__()
        self.graph, self.config = graph, config
        nodes = graph.nodes
        for name, node in nodes.items():
            kind = type(node).__name__
            if kind not in _SUPPORTED:
                raise NIRGraphError(f"node {name!r} is a NIR {kind}, which this runner does not run")
        edges = list(graph.edges)
        for a, b in edges:
            if a not in nodes or b not in nodes:
                raise NIRGraphError(f"edge {a} -> {b} names a node the graph does not have")
        ins = [n for n in nodes if type(nodes[n]).__name__ == "Input"]
        outs = [n for n in nodes if type(nodes[n]).__name__ == "Output"]
        if len(ins) != 1 or len(outs) != 1:
            raise NIRGraphError(f"needs one Input and one Output node; has {len(ins)} and {len(outs)}")
        self.input_name, self.output_name = ins[0], outs[0]
        self.delayed = _back_edges(nodes, edges, self.input_name)
        self.order = _order(nodes, [e for e in edges if e not in self.delayed])
        self.inputs = {n: [a for a, b in edges if b == n and (a, b) not in self.delayed] for n in nodes}
        self.loops = {n: [a for a, b in self.delayed if b == n] for n in nodes}
        # nodes whose output reaches only the next step (through a loop): at a window's last step they are idle
        idle: set[str] = set()
        while True:
            more = {
                a
                for a in nodes
                if a not in idle
                and any(x == a for x, _ in edges)
                and all((x, b) in self.delayed or b in idle for x, b in edges if x == a)
            }
            if not more:
                break
            idle |= more
        self.fed_back_only = idle
        self.weighted = {n for n, node in nodes.items() if type(node).__name__ in ("Affine", "Linear", "Conv2d")}
        self._anchor = nn.Parameter(torch.zeros(0), requires_grad=False)  # gives the module a device
        self._tensors: dict[str, dict] = {}
        self.spike_rates: list[Tensor] = []

    @torch.no_grad()
    def forward(self, x_tb: Tensor, stats: bool = False) -> Tensor | tuple[Tensor, dict]:
        cfg = self.config
        check_window(x_tb, cfg.steps, cfg.size)
        dev = x_tb.device
        if str(dev) not in self._tensors:
            self._tensors = {str(dev): {n: self._params(n, dev) for n in self.order}}
        params = self._tensors[str(dev)]
        state: dict[str, dict] = {}
        spikes = {n: [] for n in self.order if type(self.graph.nodes[n]).__name__ in _NEURONS}
        ops = {n: {"name": n, "macs_ann": 0, "macs_snn": 0, "synops": 0.0} for n in self.order if n in self.weighted}
        total = None
        x_bin = (x_tb > 0).float()
        last: dict[str, Tensor] = {}  # the previous step's outputs, read through the delayed (recurrent) edges
        for t in range(cfg.steps):
            values: dict[str, Tensor] = {}
            for n in self.order:
                if n == self.input_name:
                    values[n] = x_bin[t]
                    continue
                if t == cfg.steps - 1 and n in self.fed_back_only:
                    continue  # its output would only reach the step after the window
                parts = [values[a] for a in self.inputs[n] if a in values]
                parts += [last[a] for a in self.loops[n] if a in last]
                if not parts:  # only fed back, and nothing came round yet: this step it has no input
                    continue
                inp = parts[0]
                for part in parts[1:]:
                    inp = inp + part
                values[n] = self._step(n, inp, params[n], state)
                if stats and n in ops:
                    self._count(ops[n], n, inp, values[n], params[n])
                if n in spikes:
                    spikes[n].append(values[n])
            out = values[self.output_name]
            total = out if total is None else total + out
            last = values
        logits = total / cfg.steps
        seqs = {n: torch.stack(s) for n, s in spikes.items()}
        self.spike_rates = [s.mean() for s in seqs.values()]
        if not stats:
            return logits
        b = x_tb.shape[1]
        layers = []
        for n, s in seqs.items():
            per = s.flatten(2).sum(dim=(0, 2))
            layers.append(
                {
                    "name": n,
                    "neurons": int(s[0, 0].numel()),
                    "spikes": float(per.mean()),
                    "spikes_per_sample": per.tolist(),
                    "rate": float(s.mean()),
                }
            )
        for o in ops.values():
            o["synops"] /= b
            o["macs_snn"] //= b
        return logits, {"layers": layers, "ops": list(ops.values()), "batch": b, "steps": cfg.steps}

    # -- nodes ---------------------------------------------------------------------------------
    def _params(self, n: str, dev) -> dict:
        node, kind = self.graph.nodes[n], type(self.graph.nodes[n]).__name__
        get = lambda k, default=None: getattr(node, k, default)  # noqa: E731
        if kind in ("Affine", "Linear"):
            return {"w": _arr(node.weight, dev), "b": _arr(node.bias, dev) if kind == "Affine" else None}
        if kind == "Conv2d":
            w = _arr(node.weight, dev)
            groups = int(node.groups)
            conv = nn.Conv2d(
                w.shape[1] * groups,
                w.shape[0],
                tuple(w.shape[-2:]),
                _pair(node.stride),
                _pair(node.padding),
                _pair(node.dilation),
                groups,
                bias=node.bias is not None,
                device=dev,
            ).requires_grad_(False)
            conv.weight.copy_(w)
            if node.bias is not None:
                conv.bias.copy_(_arr(node.bias, dev))
            return {"conv": conv}
        if kind in ("AvgPool2d", "SumPool2d"):
            return {"k": _pair(node.kernel_size), "stride": _pair(node.stride), "padding": _pair(node.padding)}
        if kind == "Flatten":
            return {"start": int(node.start_dim), "end": int(node.end_dim)}
        if kind == "Scale":
            return {"scale": _arr(node.scale, dev)}
        if kind == "Threshold":
            return {"thr": _arr(node.threshold, dev)}
        dt = self.config.dt
        if kind == "LIF":
            return {
                "a": dt / _arr(node.tau, dev),
                "r": _arr(node.r, dev),
                "leak": _arr(node.v_leak, dev),
                "thr": _arr(node.v_threshold, dev),
                "reset": _reset(get("v_reset"), dev),
            }
        if kind == "CubaLIF":
            return {
                "a": dt / _arr(node.tau_mem, dev),
                "a_syn": dt / _arr(node.tau_syn, dev),
                "r": _arr(node.r, dev),
                "w_in": _arr(get("w_in", 1.0), dev),
                "leak": _arr(node.v_leak, dev),
                "thr": _arr(node.v_threshold, dev),
                "reset": _reset(get("v_reset"), dev),
            }
        if kind == "IF":
            return {"r": _arr(node.r, dev), "thr": _arr(node.v_threshold, dev), "reset": _reset(get("v_reset"), dev)}
        if kind == "LI":
            return {"a": dt / _arr(node.tau, dev), "r": _arr(node.r, dev), "leak": _arr(node.v_leak, dev)}
        return {}

    def _step(self, n: str, x: Tensor, p: dict, state: dict) -> Tensor:
        kind = type(self.graph.nodes[n]).__name__
        if kind in ("Output", "Input"):
            return x
        if kind in ("Affine", "Linear"):
            return F.linear(x, p["w"], p["b"])
        if kind == "Conv2d":
            return p["conv"](x)
        if kind == "AvgPool2d":
            return F.avg_pool2d(x, p["k"], p["stride"], p["padding"])
        if kind == "SumPool2d":
            return F.avg_pool2d(x, p["k"], p["stride"], p["padding"], divisor_override=1)
        if kind == "Flatten":
            start = p["start"] + 1 if p["start"] >= 0 else p["start"]
            end = p["end"] + 1 if p["end"] >= 0 else p["end"]
            return torch.flatten(x, start, end)
        if kind == "Scale":
            return x * p["scale"]
        if kind == "Threshold":
            return (x > p["thr"]).to(x.dtype)
        s = state.setdefault(n, {})
        v = s.get("v", torch.zeros_like(x))
        if kind == "LIF":
            v = v + p["a"] * (p["leak"] - v + p["r"] * x)
        elif kind == "CubaLIF":
            i = s.get("i", torch.zeros_like(x))
            i = i + p["a_syn"] * (p["w_in"] * x - i)
            s["i"] = i
            v = v + p["a"] * (p["leak"] - v + p["r"] * i)
        elif kind == "IF":
            v = v + p["r"] * x
        elif kind == "LI":
            v = v + p["a"] * (p["leak"] - v + p["r"] * x)
            s["v"] = v
            return v
        spike = (v > p["thr"]).to(x.dtype)
        s["v"] = torch.where(spike.bool(), p["reset"].expand_as(v), v)
        return spike

    def _count(self, o: dict, n: str, inp: Tensor, out: Tensor, p: dict) -> None:
        """One step's work of a weighted node (summed over the batch; divided by it at the end)."""
        binary = bool(((inp == 0) | (inp == 1)).all())
        b = inp.shape[0]
        if "conv" in p:
            macs = out.shape[-2] * out.shape[-1] * conv_macs(p["conv"])
            work = conv_synops(p["conv"], inp) if binary else None
        else:
            macs = p["w"].shape[0] * p["w"].shape[1]
            work = float(inp.sum()) * p["w"].shape[0] if binary else None
        o["macs_ann"] = macs
        if work is None:
            o["macs_snn"] += macs * b
        else:
            o["synops"] += work


def _reset(v, dev) -> Tensor:
    return _arr(0.0 if v is None else v, dev)


_SUPPORTED = {
    "Input",
    "Output",
    "Affine",
    "Linear",
    "Conv2d",
    "Flatten",
    "AvgPool2d",
    "SumPool2d",
    "Scale",
    "Threshold",
    "LIF",
    "CubaLIF",
    "IF",
    "LI",
}


def load_nir(path: str | Path) -> NIRClassifier:
    """A NIR file as a classifier, its config from the graph's metadata or the defaults above."""
    import nir

    path = Path(path)
    try:
        graph = nir.read(path)
    except Exception as exc:  # h5py, missing keys, unknown node types: one line
        raise NIRGraphError(f"{path}: not a NIR graph nir.read can load ({type(exc).__name__}: {exc})") from None
    meta = dict(getattr(graph, "metadata", None) or {})
    try:
        ins = [n for n in graph.nodes.values() if type(n).__name__ == "Input"]
        shape = [int(v) for v in next(iter(ins[0].input_type.values()))]
        outs = [n for n in graph.nodes.values() if type(n).__name__ == "Output"]
        n_out = int(np.prod(next(iter(outs[0].output_type.values()))))
    except (IndexError, StopIteration, TypeError, ValueError):
        raise NIRGraphError(f"{path}: the graph needs an Input and an Output node with known shapes") from None
    if len(shape) != 3 or shape[0] != 2 or shape[1] != shape[2]:
        raise NIRGraphError(f"{path}: input shape {shape}; a classifier of event windows takes 2 x S x S")
    cfg = json.loads(meta["config"]) if isinstance(meta.get("config"), str) else {}
    classes = tuple(cfg.get("classes") or (CLASSES if n_out == len(CLASSES) else [f"class {k}" for k in range(n_out)]))
    if len(classes) != n_out:
        raise NIRGraphError(f"{path}: {len(classes)} class names for an output of {n_out}")
    sensor = cfg.get("sensor")
    config = NIRConfig(
        classes=classes,
        size=shape[1],
        steps=int(cfg.get("steps", 8)),
        window_us=int(cfg.get("window_us", 800_000)),
        sensor=SensorSize(*sensor) if sensor else None,
        dt=float(meta.get("dt", DEFAULT_DT)),
        extra={"nir": str(path), "producer": str(meta.get("producer", "unknown"))},
    )
    return NIRClassifier(graph, config)
