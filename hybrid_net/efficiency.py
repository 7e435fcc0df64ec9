"""NeuroBench's efficiency metrics (Yik et al., "NeuroBench", Nature Communications 2025), computed from
a classifier's own operation counts, so they can be quoted without the benchmark harness.

- footprint: bytes of every parameter and buffer of the module (weights, batch-norm statistics, decays);
- connection sparsity: the share of zero weights in the Conv and Linear layers;
- activation sparsity: the share of zero outputs of the spiking neurons, over all steps and samples;
- synaptic operations per sample and window: ``effective_acs`` (accumulates: weighted layers fed 0/1
  input, each input spike times the synapses it reaches), ``effective_macs`` (weighted layers fed other
  values), ``dense`` (every weighted layer's synapses at every step, as if every input were nonzero; a
  convolution's padding has no synapses, so this is below the ANN twin's MAC count). NeuroBench
  leaves the bias out, as we do, and skips synapses whose weight is exactly zero, which we count: the
  two agree while the connection sparsity is 0, as it is for a network trained without pruning.

``benchmarks/energy.py`` and ``tests/test_neurobench.py`` check these against the ``neurobench`` package.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def footprint_bytes(model: nn.Module) -> int:
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


def connection_sparsity(model: nn.Module) -> float:
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear))]
    total = sum(m.weight.numel() for m in layers)
    zeros = sum(int((m.weight == 0).sum()) for m in layers)
    return zeros / total if total else 0.0


@torch.no_grad()
def neurobench_metrics(model: nn.Module, x_seq: Tensor) -> dict:
    """The metrics above for ``model`` (one whose ``forward(x, stats=True)`` lists its layers and ops, as
    :class:`~spikelens.hybrid_net.spiking_classify.SpikingClassifier` does) on T x B x ... windows."""
    _, stats = model(x_seq, stats=True)
    t, b = stats["steps"], stats["batch"]
    spikes = sum(layer["spikes"] for layer in stats["layers"]) * b
    outputs = sum(layer["neurons"] for layer in stats["layers"]) * t * b
    ops = stats["ops"]
    return {
        "footprint_bytes": footprint_bytes(model),
        "connection_sparsity": connection_sparsity(model),
        "activation_sparsity": 1 - spikes / outputs,
        "effective_acs": sum(o["synops"] for o in ops),
        "effective_macs": sum(o["macs_snn"] for o in ops),
        "dense": sum(o.get("connections", 0) * o.get("steps", t) for o in ops),
    }
