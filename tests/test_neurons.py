"""LIF neurons: hand-computed values, each surrogate against its formula, SpikingJelly parity."""

import math

import pytest
import torch
from spikingjelly.activation_based import neuron, surrogate

from spikelens.hybrid_net.neurons import LIF, PLIF, lif_multistep, lif_step, spike_fn


def test_lif_by_hand():
    """mem = mem * 0.75 * (1 - spike) + x; spike = mem > 0.5 (E-SAI), from rest."""
    x = torch.tensor([0.3, 0.3, 0.3, 1.0, 0.0, 0.5])
    spikes, state = lif_multistep(x)
    # mem: 0.3 | 0.525 (fires) | 0 * ... + 0.3 | 0.225 + 1.0 = 1.225 (fires) | 0 | 0.5 (not > 0.5)
    assert spikes.tolist() == [0, 1, 0, 1, 0, 0]
    assert state.mem.item() == pytest.approx(0.5)
    s, st = lif_step(torch.tensor(0.2), state)
    assert st.mem.item() == pytest.approx(0.5 * 0.75 + 0.2) and s.item() == 1.0


@pytest.mark.parametrize(
    ("kind", "alpha", "formula"),
    [
        ("rect", 0.5, lambda x, a: (x.abs() < a).double()),
        ("atan", 2.0, lambda x, a: a / 2 / (1 + (math.pi / 2 * a * x) ** 2)),
        ("sigmoid", 4.0, lambda x, a: a * torch.sigmoid(a * x) * (1 - torch.sigmoid(a * x))),
    ],
)
def test_surrogate_gradients_follow_their_formulas(kind, alpha, formula):
    x = torch.linspace(-2, 2, 401, dtype=torch.float64, requires_grad=True)
    y = spike_fn(x, kind, alpha)
    assert torch.equal(y, (x > 0).double())
    y.sum().backward()
    torch.testing.assert_close(x.grad, formula(x.detach(), alpha))


def test_unknown_surrogate_is_refused():
    with pytest.raises(ValueError, match="unknown surrogate"):
        spike_fn(torch.zeros(1), "relu")


def _inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(12, 3, 4, 5, 5, generator=g, dtype=torch.float64) * 0.6 + 0.2
    return x, torch.randn(x.shape, generator=g, dtype=torch.float64)


def _run(layer, x, up):
    x = x.clone().requires_grad_(True)
    out = layer(x)
    (out * up).sum().backward()
    return out.detach(), x.grad


@pytest.mark.parametrize(("ours", "theirs"), [("rect", surrogate.Rect(alpha=1.0)), ("atan", surrogate.ATan())])
def test_lif_matches_spikingjelly(ours, theirs):
    """E-SAI's neuron is SpikingJelly's LIFNode(tau=4, decay_input=False, v_threshold=0.5, v_reset=0)."""
    x, up = _inputs()
    sj = neuron.LIFNode(
        tau=4.0, decay_input=False, v_threshold=0.5, v_reset=0.0, surrogate_function=theirs, step_mode="m"
    )
    out_sj, grad_sj = _run(sj, x, up)
    out, grad = _run(LIF(0.75, 0.5, ours), x, up)
    assert out.sum() > 10 and (out == 0).sum() > 10  # the test exercises firing and silence
    torch.testing.assert_close(out, out_sj)
    torch.testing.assert_close(grad, grad_sj)


def test_plif_matches_spikingjelly_forward_and_gradients():
    x, up = _inputs(1)
    sj = neuron.ParametricLIFNode(
        init_tau=4.0,
        decay_input=False,
        v_threshold=0.5,
        v_reset=0.0,
        surrogate_function=surrogate.ATan(),
        step_mode="m",
    ).double()
    ours = PLIF(init_decay=0.75, threshold=0.5, surrogate="atan").double()
    assert ours.decay.item() == pytest.approx(0.75)
    out_sj, grad_sj = _run(sj, x, up)
    out, grad = _run(ours, x, up)
    torch.testing.assert_close(out, out_sj)
    torch.testing.assert_close(grad, grad_sj)
    torch.testing.assert_close(ours.w.grad, sj.w.grad)


def test_modules_start_from_rest_each_call():
    lif = LIF()
    x = torch.full((3, 2), 0.4)
    assert torch.equal(lif(x), lif(x))


@pytest.mark.parametrize("decay", [0.75, torch.tensor(0.6)])
def test_inference_path_equals_the_autograd_path(decay):
    """Under no_grad the multi-step LIF updates one buffer in place; spikes and final state must not change."""
    torch.manual_seed(4)
    x = torch.randn(12, 3, 5, 7)
    want, want_state = lif_multistep(x, None, decay, 0.5)
    with torch.no_grad():
        got, got_state = lif_multistep(x, None, decay, 0.5)
        again, _ = lif_multistep(x[6:], lif_multistep(x[:6], None, decay, 0.5)[1], decay, 0.5)
    assert torch.equal(got, want.detach()) and torch.equal(again, want[6:].detach())
    assert torch.equal(got_state.mem, want_state.mem.detach()) and torch.equal(got_state.spike, want_state.spike)
