"""Our NeuroBench metrics against the neurobench package's own (installed --no-deps: a test dependency).

NeuroBench hooks every Conv/Linear layer (synaptic operations from a binarised copy of the layer on
binarised inputs) and every activation module we name (our LIF, PLIF and recurrent LIF), and wraps the network in
its ``TorchModel``; its data is batch-first, so a thin module turns B x T x ... into our T x B x ...
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

pytest.importorskip("neurobench")
from neurobench.benchmarks import Benchmark
from neurobench.metrics.static import ConnectionSparsity, Footprint
from neurobench.metrics.workload import ActivationSparsity, SynapticOperations
from neurobench.models import TorchModel
from test_nir import SMALL, busy_model, windows

from spikelens.hybrid_net.efficiency import neurobench_metrics
from spikelens.hybrid_net.neurons import LIF, PLIF
from spikelens.hybrid_net.spiking_classify import RecurrentLIF


class BatchFirst(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.transpose(0, 1))


def neurobench_says(model: nn.Module, x_seq: torch.Tensor) -> dict:
    wrapped = TorchModel(BatchFirst(model))
    for module in (LIF, PLIF, RecurrentLIF):
        wrapped.add_activation_module(module)
    x = x_seq.transpose(0, 1)
    data = DataLoader(TensorDataset(x, torch.zeros(x.shape[0], dtype=torch.long)), batch_size=x.shape[0])
    bench = Benchmark(
        wrapped,
        data,
        [],
        [lambda logits: logits.argmax(1)],
        [[Footprint, ConnectionSparsity], [ActivationSparsity, SynapticOperations]],
    )
    return bench.run(quiet=True)


def check(model: nn.Module, x_seq: torch.Tensor) -> None:
    ours = neurobench_metrics(model, x_seq)
    theirs = neurobench_says(model, x_seq)
    assert ours["footprint_bytes"] == theirs["Footprint"]
    assert ours["connection_sparsity"] == pytest.approx(theirs["ConnectionSparsity"], abs=1e-12)
    assert ours["activation_sparsity"] == pytest.approx(theirs["ActivationSparsity"], rel=1e-6)  # float32 sums
    ops = theirs["SynapticOperations"]
    assert ours["effective_acs"] == pytest.approx(ops["Effective_ACs"], rel=1e-9)
    assert ours["effective_macs"] == ops["Effective_MACs"] == 0
    assert ours["dense"] == pytest.approx(ops["Dense"], rel=1e-9)
    assert 0.05 < ours["activation_sparsity"] < 0.999


def test_neurobench_agrees_on_a_spiking_classifier():
    check(busy_model(), windows(SMALL, 3))
