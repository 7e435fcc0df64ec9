"""The energy count: synaptic operations against a plain loop, a tiny spiking net counted by hand, and the
spike-rate regulariser doing what it is for."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
import torch
from test_classify import bar_segment

from spikelens.datasets import SensorSize
from spikelens.hybrid_net.energy import E_AC_PJ, E_MAC_PJ, conv_synops, energy
from spikelens.hybrid_net.spiking_classify import SpikingClassifier, SpikingConfig
from spikelens.pipelines import classification as cl


def synops_by_loop(spikes: np.ndarray, c_out: int, k: int, stride: int, pad: int, groups: int) -> int:
    """For every input spike, the output positions whose k x k window (stride, padding) holds it, times the
    output channels of its group."""
    h, w = spikes.shape[-2:]
    h_out, w_out = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    total = 0
    for _, _, y, x in zip(*np.nonzero(spikes), strict=True):
        reach = 0
        for oy, ox in itertools.product(range(h_out), range(w_out)):
            if oy * stride - pad <= y < oy * stride - pad + k and ox * stride - pad <= x < ox * stride - pad + k:
                reach += 1
        total += reach * (c_out // groups)
    return total


@pytest.mark.parametrize(("k", "stride", "pad", "groups"), [(3, 1, 1, 1), (3, 2, 1, 1), (3, 2, 0, 2), (2, 2, 0, 1)])
def test_conv_synops_matches_a_plain_loop(k, stride, pad, groups):
    rng = np.random.default_rng(k * 10 + stride + pad + groups)
    spikes = (rng.random((2, 4, 7, 9)) < 0.3).astype(np.float32)
    conv = torch.nn.Conv2d(4, 6, k, stride=stride, padding=pad, groups=groups, bias=False)
    assert conv_synops(conv, torch.from_numpy(spikes)) == synops_by_loop(spikes, 6, k, stride, pad, groups)


def test_a_tiny_spiking_net_counted_by_hand():
    """Size 8, one stage of 2 channels (8 -> 4), a dense layer of 3, 2 classes, 2 steps."""
    cfg = SpikingConfig(
        classes=("a", "b"), size=8, steps=2, window_us=200_000, channels=(2,), hidden=3, recurrent=False
    )
    torch.manual_seed(0)
    m = SpikingClassifier(cfg).eval()
    x = torch.zeros(2, 1, 2, 8, 8)
    x[0, 0, 0, 0, 0] = 3  # a corner pixel, three events: one input spike
    x[1, 0, 1, 5, 5] = 1  # an inner pixel at odd coordinates
    with torch.no_grad():
        m.stages[0].bn.running_var.fill_(1e-4)  # so that every reached neuron fires
        _, stats = m(x, stats=True)
    ops = {o["name"]: o for o in stats["ops"]}
    # output o's window covers inputs 2o - 1 .. 2o + 1: the corner (0, 0) is in output (0, 0) alone; (5, 5) is in
    # outputs 2 (3..5) and 3 (5..7) along each axis, 4 positions; times 2 output channels
    assert ops["stage1"]["synops"] == (1 + 4) * 2
    assert ops["stage1"]["macs_ann"] == 4 * 4 * 2 * 2 * 9 and ops["stage1"]["macs_snn"] == 0
    stage_spikes = stats["layers"][0]["spikes"]
    assert ops["dense"]["synops"] == stage_spikes * 3 and ops["dense"]["macs_ann"] == 2 * 4 * 4 * 3
    assert ops["readout"]["synops"] == stats["layers"][1]["spikes"] * 2 and ops["readout"]["macs_ann"] == 3 * 2
    e = energy(stats)
    synops = ops["stage1"]["synops"] + ops["dense"]["synops"] + ops["readout"]["synops"]
    assert e["synops"] == synops and e["macs_snn"] == 0
    assert e["snn_uj"] == pytest.approx(synops * E_AC_PJ * 1e-6)
    assert e["ann_uj"] == pytest.approx((4 * 4 * 2 * 2 * 9 + 32 * 3 + 6) * E_MAC_PJ * 1e-6)


def test_the_recurrent_loop_counts_the_spikes_it_carries():
    """Each dense spike of steps 0 .. T-2 reaches every unit once, at the next step; the last step's do not."""
    cfg = SpikingConfig(classes=("a", "b"), size=8, steps=3, window_us=300_000, channels=(2,), hidden=4)
    torch.manual_seed(2)
    m = SpikingClassifier(cfg).eval()
    with torch.no_grad():
        m.dense_bn.running_var.fill_(1e-3)
        m.dense_neuron.recurrent.weight.normal_(0, 1)
        x = torch.poisson(torch.full((3, 1, 2, 8, 8), 0.5))
        stage = m.stages[0]((x > 0).float())
        drive = torch.stack([m.dense_bn(m.dense(f)) for f in stage.flatten(2)])
        hidden = m.dense_neuron(drive)
        _, stats = m(x, stats=True)
    rec = next(o for o in stats["ops"] if o["name"] == "recurrent")
    assert rec["synops"] == float(hidden[:-1].sum()) * 4 and rec["macs_ann"] == 16 and hidden[:-1].sum() > 0


@pytest.mark.slow
def test_the_spike_rate_regulariser_lowers_the_spike_rate(tmp_path):
    cfg = SpikingConfig(classes=("left", "right"), size=16, steps=4, window_us=400_000, channels=(4, 8), hidden=16)
    rng = np.random.default_rng(0)
    train = [bar_segment(i % 2, rng) for i in range(32)]
    windows = [cl.augment_window(s, cfg, SensorSize(32, 32), rng, augment=False) for s in train]
    probe = torch.from_numpy(np.stack(windows))
    rates = {}
    for weight in (0.0, 5.0):
        model = cl.build_model("spiking", 0, **dataclasses.asdict(cfg))
        tcfg = cl.TrainConfig(epochs=8, batch=16, lr=1e-2, spike_rate=weight)  # long enough for the BN statistics
        before = torch.random.get_rng_state()
        cl.train(model, cl.SegmentSet(tuple(train), SensorSize(32, 32)), tcfg, tmp_path / f"r{weight}.pt", "cpu")
        assert torch.equal(torch.random.get_rng_state(), before)  # seeded inside, the caller's generator untouched
        with torch.no_grad():
            model.eval()(probe.transpose(0, 1))
        rates[weight] = float(torch.stack(model.spike_rates).mean())
    assert rates[0.0] > 0.02  # the unregularised network does spike
    assert rates[5.0] < 0.6 * rates[0.0]
