"""3x3 convolutions by Winograd's minimal filtering, F(4x4, 3x3) (Lavin and Gray, CVPR 2016).

Why: on a CPU without AMX, fp32 convolutions already run near the cores' FMA
peak and bf16 or fp16 ones run slower (measured: see benchmarks/reconstruct.py),
so the only way to make HybridNet's decoder cheaper is to do less arithmetic.
F(4x4, 3x3) computes each 4 x 4 output tile from a 6 x 6 input tile with 36
multiplications per channel pair instead of 144: the input tiles and the
filters are transformed once (``B^T d B``, ``G g G^T``), the 36 transformed
positions become 36 independent GEMMs over (tiles x C) @ (C x K), and the
output tile is ``A^T m A``. On 2 cores a 256-channel 3x3 convolution at 64 x 64
takes 6 ms instead of oneDNN's 15 ms.

The result equals the direct convolution up to rounding (relative error about
1e-5 in fp32, from the transforms' interpolation points 0, +-1, +-2 and
infinity); :func:`torch.nn.functional.conv2d` is the reference (tested).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_BT = torch.tensor(
    [
        [4, 0, -5, 0, 1, 0],
        [0, -4, -4, 1, 1, 0],
        [0, 4, -4, -1, 1, 0],
        [0, -2, -1, 2, 1, 0],
        [0, 2, -1, -2, 1, 0],
        [0, 4, 0, -5, 0, 1],
    ],
    dtype=torch.float64,
)
_G = torch.tensor(
    [
        [1 / 4, 0, 0],
        [-1 / 6, -1 / 6, -1 / 6],
        [-1 / 6, 1 / 6, -1 / 6],
        [1 / 24, 1 / 12, 1 / 6],
        [1 / 24, -1 / 12, 1 / 6],
        [0, 0, 1],
    ],
    dtype=torch.float64,
)
_AT = torch.tensor(
    [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]], dtype=torch.float64
)
#: Output and input tile sizes.
M, A = 4, 6
#: The input and output transforms on a flattened tile (B^T d B and A^T m A as one matrix each).
_KB = torch.kron(_BT, _BT).float()
_KA = torch.kron(_AT, _AT).float()


def transform_weight(weight: Tensor) -> Tensor:
    """K x C x 3 x 3 filters to the 36 x C x K GEMM operands ``G g G^T`` (computed in float64, once)."""
    if weight.ndim != 4 or weight.shape[-2:] != (3, 3):
        raise ValueError(f"expected K x C x 3 x 3 filters, got {tuple(weight.shape)}")
    u = torch.einsum("ip,kcpq,jq->ijck", _G, weight.detach().double().cpu(), _G)
    return u.reshape(A * A, weight.shape[1], weight.shape[0]).to(weight.device, torch.float32).contiguous()


def conv3x3(x: Tensor, u: Tensor, bias: Tensor | None = None) -> Tensor:
    """The valid (unpadded, stride 1) 3x3 convolution of B x C x H x W ``x`` with transformed filters ``u``.

    Returns B x K x (H - 2) x (W - 2) in channels_last memory. Any size works: the input is zero-padded on
    the bottom and right to whole tiles, and the extra outputs (which only those zeros reach) are cropped.
    """
    b, c, h, w = x.shape
    if u.shape[1] != c:
        raise ValueError(f"filters for {u.shape[1]} channels, input has {c}")
    ho, wo = h - 2, w - 2
    nh, nw = -(-ho // M), -(-wo // M)
    ph, pw = nh * M + 2 - h, nw * M + 2 - w
    x = x.float()
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph))
    xs = x.permute(0, 2, 3, 1).contiguous()  # B x H x W x C (free when x is channels_last)
    hp, wp = xs.shape[1:3]
    tiles = xs.as_strided((A, A, b, nh, nw, c), (wp * c, c, hp * wp * c, M * wp * c, M * c, 1))
    v = torch.mm(_KB.to(x.device), tiles.reshape(A * A, -1)).view(A * A, b * nh * nw, c)
    m = torch.bmm(v, u)  # 36 x tiles x K
    k = u.shape[2]
    m = m.view(A * A, -1)
    # addmm adds the bias (broadcast over every tile's K outputs) in the output transform's own pass
    y = torch.mm(_KA.to(x.device), m) if bias is None else torch.addmm(bias.repeat(b * nh * nw), _KA.to(x.device), m)
    y = y.view(M, M, b, nh, nw, k).permute(2, 3, 0, 4, 1, 5).reshape(b, nh * M, nw * M, k)
    if ph or pw:
        y = y[:, :ho, :wo].contiguous()
    return y.permute(0, 3, 1, 2)


class WinogradConv3x3(nn.Module):
    """An inference-only stand-in for a stride-1, unpadded, ungrouped 3x3 ``nn.Conv2d``."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        if not eligible(conv):
            raise ValueError(f"not a stride-1 unpadded ungrouped 3x3 convolution: {conv}")
        self.register_buffer("u", transform_weight(conv.weight))
        self.register_buffer("bias", None if conv.bias is None else conv.bias.detach().clone())

    def forward(self, x: Tensor) -> Tensor:
        return conv3x3(x, self.u, self.bias)


def eligible(conv: nn.Module) -> bool:
    return (
        type(conv) is nn.Conv2d
        and conv.kernel_size == (3, 3)
        and conv.stride == (1, 1)
        and conv.padding == (0, 0)
        and conv.dilation == (1, 1)
        and conv.groups == 1
    )
