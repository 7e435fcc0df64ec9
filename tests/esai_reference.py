"""HybridNet written straight from the issue's text, for the parity tests and the benchmark.

It steps the three spiking layers together one time step at a time, as the
issue describes E-SAI's forward, with the neuron of the issue's text:
"mem = mem * decay * (1 - spike) + input, decay 0.75, threshold 0.5,
spike = mem > threshold"; "conv3's spikes summed over T and divided by T";
the decoder "one nn.Sequential at Gen.model, in this order". Nothing here is
shared with spikelens.hybrid_net, so a misreading there cannot hide here.
"""

import torch
from torch import nn

DECAY, THRESHOLD = 0.75, 0.5


class RefResBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(256, 256, 3, bias=False),
            nn.BatchNorm2d(256),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.ReflectionPad2d(1),
            nn.Conv2d(256, 256, 3, bias=False),
            nn.BatchNorm2d(256),
        )

    def forward(self, x):
        return x + self.conv_block(x)


class RefGen(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = nn.Sequential(
            nn.ReflectionPad2d(3),
            nn.Conv2d(32, 64, 7, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.Conv2d(64, 128, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(),
            nn.Conv2d(128, 256, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(256),
            nn.ReLU(),
            *[RefResBlock() for _ in range(15)],
            nn.ConvTranspose2d(256, 128, 3, stride=2, padding=1, output_padding=1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(),
            nn.ConvTranspose2d(128, 64, 3, stride=2, padding=1, output_padding=1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.ReflectionPad2d(3),
            nn.Conv2d(64, 1, 7),
            nn.Tanh(),
        )


class RefHybridNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 8, 1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.conv3 = nn.Conv2d(24, 32, 7, padding=3)
        self.Gen = RefGen()

    def forward(self, x):  # B x T x 2 x H x W, channel 0 = ON
        b, t, _, h, w = x.shape
        m1 = s1 = torch.zeros(b, 8, h, w)
        m2 = s2 = torch.zeros(b, 16, h, w)
        m3 = s3 = torch.zeros(b, 32, h, w)
        total = torch.zeros(b, 32, h, w)
        for step in range(t):
            m1 = m1 * DECAY * (1 - s1) + self.conv1(x[:, step].float())
            s1 = (m1 > THRESHOLD).float()
            m2 = m2 * DECAY * (1 - s2) + self.conv2(s1)
            s2 = (m2 > THRESHOLD).float()
            m3 = m3 * DECAY * (1 - s3) + self.conv3(torch.cat((s2, s1), 1))
            s3 = (m3 > THRESHOLD).float()
            total = total + s3
        return self.Gen.model(total / t)


def randomise(net: nn.Module, seed: int = 0) -> nn.Module:
    """Seeded weights, with BN statistics and affine terms drawn too (so eval-mode BN is not the identity and
    every key matters) and encoder weights large enough to fire."""
    torch.manual_seed(seed)
    for m in net.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(1 + 0.2 * torch.randn(m.num_features, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.num_features, generator=g))
        for conv in (net.conv1, net.conv2, net.conv3):
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * 0.6)
            conv.bias.copy_(torch.randn(conv.bias.shape, generator=g) * 0.2)
    return net
