"""Operation counts and the energy estimate the SNN papers quote, for a network as run beside its ANN twin.

Each model's ``forward(x, stats=True)`` lists its weighted operations in ``stats["ops"]``, one entry per
layer, per sample and window:

- ``macs_ann``: the layer's multiply-accumulates in the ANN twin, the same layers run once on the window's
  summed frame (a convolution: H_out x W_out x C_in x C_out x k x k / groups; a linear layer: in x out);
- ``macs_snn``: the multiplications the network does as run (a layer fed with counts or real values, at
  every step; attention's gates and scalings);
- ``synops``: the accumulates as run: every input spike adds its weight once to each neuron it reaches
  (a convolution: each input spike times the C_out / groups output positions whose window holds it, so
  at borders and with strides it counts only the synapses that exist).

Energy: MACs x :data:`E_MAC_PJ` + synaptic operations x :data:`E_AC_PJ`; membrane updates and memory
traffic are not counted, as in the papers whose figures we compare with (SEW-ResNet, TCJA-SNN, MA-SNN).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Energy per operation at 45 nm, 32-bit float (Horowitz, "Computing's energy problem", ISSCC 2014), the
#: figures SNN papers (SEW-ResNet, TCJA-SNN, MA-SNN) use: a multiply-accumulate 4.6 pJ, an accumulate 0.9 pJ.
E_MAC_PJ = 4.6
E_AC_PJ = 0.9
SOURCE = "Horowitz, ISSCC 2014, 45 nm 32-bit float"


def conv_macs(conv: nn.Conv2d) -> int:
    """Multiply-accumulates per output pixel."""
    return conv.in_channels * conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1] // conv.groups


@torch.no_grad()
def conv_synops(conv: nn.Conv2d, spikes: Tensor) -> float:
    """Synaptic operations of ``conv`` on N x C_in x H x W input spikes, summed over N: for each group,
    (C_out / groups) x the number of (output position, input spike) pairs a kernel window joins."""
    g = conv.groups
    per_group = spikes.float().unflatten(1, (g, conv.in_channels // g)).sum(dim=2)  # N x groups x H x W
    ones = torch.ones(1, 1, *conv.kernel_size, device=spikes.device)
    reach = F.conv2d(per_group.flatten(0, 1)[:, None], ones, None, conv.stride, conv.padding, conv.dilation)
    return float(reach.sum()) * (conv.out_channels // g)


def attention_macs(attention: nn.Module, steps: int, c: int, h: int, w: int) -> int:
    """Multiplications of a TCJA or MA block on a T x C x H x W drive (one sample): its small layers and
    the elementwise scalings; pooling (adds, comparisons) is not counted."""
    from spikelens.hybrid_net.attention import TCJA, MultiDimAttention

    if isinstance(attention, TCJA):
        k_t = attention.along_time.kernel_size[0]
        k_c = attention.along_channels.kernel_size[0]
        return c * c * k_t * steps + steps * steps * k_c * c + steps * c + steps * c * h * w
    if isinstance(attention, MultiDimAttention):
        macs = 0
        if attention.temporal is not None:
            hid = attention.temporal.mlp[0].out_features
            macs += 2 * 2 * steps * hid + steps * c * h * w
        if attention.channel is not None:
            hid = attention.channel.mlp[0].out_features
            macs += 2 * 2 * c * hid + steps * c * h * w
        if attention.spatial is not None:
            macs += 2 * attention.spatial.kernel_size[0] * attention.spatial.kernel_size[1] * h * w
            macs += steps * c * h * w
        return macs
    return 0


def energy(stats: dict) -> dict:
    """Energy per sample and window in microjoules, as run (SNN) and as the ANN twin, from ``stats["ops"]``."""
    ops = stats["ops"]
    macs_snn = sum(o["macs_snn"] for o in ops)
    macs_ann = sum(o["macs_ann"] for o in ops)
    synops = sum(o["synops"] for o in ops)
    snn_uj = (macs_snn * E_MAC_PJ + synops * E_AC_PJ) * 1e-6
    ann_uj = macs_ann * E_MAC_PJ * 1e-6
    return {
        "snn_uj": snn_uj,
        "ann_uj": ann_uj,
        "ann_over_snn": ann_uj / snn_uj if snn_uj else float("inf"),
        "synops": synops,
        "macs_snn": macs_snn,
        "macs_ann": macs_ann,
        "e_mac_pj": E_MAC_PJ,
        "e_ac_pj": E_AC_PJ,
        "source": SOURCE,
        "per_layer": [
            {"name": o["name"], "synops": o["synops"], "macs_snn": o["macs_snn"], "macs_ann": o["macs_ann"]}
            for o in ops
        ],
    }
