"""The all-spiking classifier as a NIR graph (Neuromorphic Intermediate Representation, ``nir`` package).

What maps exactly:

- the dense layer's recurrence is a loop LIF -> ``nir.Linear`` (W_rec) -> ``nir.Flatten`` (an identity on
  a vector) -> LIF: the spikes of step t-1 enter step t, as NIRTorch executes a cycle. The identity is
  there because snnTorch's importer rewrites every two-node LIF <-> Linear loop into a subgraph whose
  external input also passes through W_rec (its ``_create_rnn_subgraph`` adds the edge
  ``(f"{sg_key}.input", w_nk)``), which is not what the graph says; a three-node loop is left as drawn;
- a stage's Conv2d -> BatchNorm2d becomes one ``nir.Conv2d`` (stride 2, padding 1) with the batch norm's
  running statistics folded into its weight and bias; the dense Linear -> BatchNorm1d one ``nir.Affine``;
  the readout an ``nir.Affine``; the flattening ``nir.Flatten`` (NIR's dimensions exclude the batch);
- our neuron, ``mem[t] = decay * mem[t-1] * (1 - spike[t-1]) + input[t]``, ``spike = mem > threshold``, is
  NIR's ``LIF`` ``tau dv/dt = (v_leak - v) + r I`` stepped by forward Euler at ``dt``, with
  ``tau = dt / (1 - decay)``, ``r = tau / dt`` (so the input enters with weight r dt / tau = 1),
  ``v_leak = 0``, ``v_threshold = threshold`` and ``v_reset = 0``: exactly the update above once a
  consumer discretises at the same ``dt``. PLIF's learned decay is exported as its current value.

What is a convention, not the model: NIR describes continuous time and every consumer picks its own step.
We export at ``dt = 1e-4`` s by default, the step snnTorch's importer uses, so its ``beta = 1 - dt / tau``
is our decay; the physical length of a step (``bin_us``) is in the graph's metadata, with the classes,
the window and the decision rule (argmax of the output summed over the window's steps). The input is the
window as spikes: 1 where a pixel saw an event in a bin (channel 0 ON).

What cannot be exported: attention (TCJA and MA gate with data-dependent products, which NIR has no node
for) and the hybrid classifier (max-pooling and a temporal convolution head): both are refused.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from spikelens.datasets import atomic_output
from spikelens.hybrid_net.spiking_classify import SpikingClassifier

#: The step NIR consumers such as snnTorch's ``import_from_nir`` assume (seconds).
DEFAULT_DT = 1e-4


def _fold(weight: torch.Tensor, bn: nn.BatchNorm1d | nn.BatchNorm2d) -> tuple[np.ndarray, np.ndarray]:
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    w = weight * scale.reshape(-1, *([1] * (weight.ndim - 1)))
    b = bn.bias - bn.running_mean * scale
    return w.detach().cpu().numpy().astype(np.float32), b.detach().cpu().numpy().astype(np.float32)


def _lif(neuron: nn.Module, shape: tuple[int, ...], dt: float):
    import nir

    decay = float(torch.as_tensor(neuron.decay).detach())
    if not 0 <= decay < 1:
        raise ValueError(f"a decay of {decay} has no finite NIR time constant")
    tau = dt / (1 - decay)
    full = lambda v: np.full(shape, v, np.float32)  # noqa: E731
    return nir.LIF(
        tau=full(tau), r=full(tau / dt), v_leak=full(0.0), v_threshold=full(neuron.threshold), v_reset=full(0.0)
    )


@torch.no_grad()
def to_nir(model: nn.Module, dt: float = DEFAULT_DT):
    """The model as a ``nir.NIRGraph`` (eval-mode statistics folded in)."""
    import nir

    if not isinstance(model, SpikingClassifier):
        raise ValueError(
            f"a {type(model).__name__} cannot be expressed in NIR (max-pooling and a temporal-convolution head "
            "have no NIR node); train an all-spiking one: spikelens train-classify --arch spiking"
        )
    cfg = model.config
    if cfg.attention != "none":
        raise ValueError(f"{cfg.attention} attention has no NIR node; export a model trained with --attention none")
    if not dt > 0:
        raise ValueError(f"dt must be positive, got {dt}")
    nodes: dict = {"input": nir.Input(input_type=np.array([2, cfg.size, cfg.size]))}
    edges, prev, side, c_in = [], "input", cfg.size, 2
    for i, stage in enumerate(model.stages, 1):
        w, b = _fold(stage.conv.weight, stage.bn)
        nodes[f"conv{i}"] = nir.Conv2d(
            input_shape=(side, side), weight=w, stride=(2, 2), padding=(1, 1), dilation=(1, 1), groups=1, bias=b
        )
        side, c_in = (side + 1) // 2, stage.conv.out_channels
        nodes[f"lif{i}"] = _lif(stage.neuron, (c_in, side, side), dt)
        edges += [(prev, f"conv{i}"), (f"conv{i}", f"lif{i}")]
        prev = f"lif{i}"
    nodes["flatten"] = nir.Flatten(input_type={"input": np.array([c_in, side, side])}, start_dim=0, end_dim=-1)
    w, b = _fold(model.dense.weight, model.dense_bn)
    nodes["dense"] = nir.Affine(weight=w, bias=b)
    nodes["lif_dense"] = _lif(model.dense_neuron, (cfg.hidden,), dt)
    nodes["readout"] = nir.Affine(
        weight=model.readout.weight.detach().cpu().numpy().astype(np.float32),
        bias=model.readout.bias.detach().cpu().numpy().astype(np.float32),
    )
    nodes["output"] = nir.Output(output_type=np.array([len(cfg.classes)]))
    edges += [(prev, "flatten"), ("flatten", "dense"), ("dense", "lif_dense"), ("lif_dense", "readout")]
    edges.append(("readout", "output"))
    if cfg.recurrent:  # a loop: the LIF's spikes, through W_rec, into its own input next step
        w_rec = model.dense_neuron.recurrent.weight
        nodes["rec"] = nir.Linear(weight=w_rec.detach().cpu().numpy().astype(np.float32))
        nodes["rec_out"] = nir.Flatten(input_type={"input": np.array([cfg.hidden])}, start_dim=0, end_dim=-1)
        edges += [("lif_dense", "rec"), ("rec", "rec_out"), ("rec_out", "lif_dense")]
    # NIR files keep nodes in alphabetical order, and NIRTorch (snnTorch's importer) builds a recurrent
    # subgraph only from nodes in graph order: each name carries its position, l00_input ... l10_output
    order = [n for n in nodes if n not in ("rec", "rec_out", "output")]
    if "rec" in nodes:
        order[order.index("lif_dense") + 1 : order.index("lif_dense") + 1] = ["rec", "rec_out"]
    order.append("output")
    name = {n: f"l{i:02d}_{n}" for i, n in enumerate(order)}
    nodes = {name[n]: nodes[n] for n in order}
    edges = [(name[a], name[b]) for a, b in edges]
    metadata = {
        "producer": "spikelens",
        "dt": dt,
        "bin_us": cfg.bin_us,
        "config": json.dumps(dataclasses.asdict(cfg)),
        "input": "the window as spikes: 1 where a pixel saw an event in a bin; channel 0 ON; T x 2 x S x S",
        "decision": "argmax of the output summed over the window's steps",
    }
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def export_nir(model: nn.Module, path: str | Path, dt: float = DEFAULT_DT) -> Path:
    """Write the model's NIR graph to ``path`` (HDF5, NIR's own format), atomically."""
    import nir

    graph = to_nir(model, dt)
    path = Path(path)
    with atomic_output(path, ".nir") as tmp:
        nir.write(tmp, graph)
    return path
