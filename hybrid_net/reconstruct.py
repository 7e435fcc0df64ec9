"""Hybrid SNN-CNN reconstruction of occluded scenes: E-SAI's HybridNet and a laptop-sized HybridLite.

Both take refocused event frames B x T x 2 x H x W (channel 0 = ON, E-SAI's
``Pos``; 1 = OFF) and return B x 1 x H x W in [-1, 1] (tanh).

The spiking encoder is E-SAI's: conv1 (1x1) -> LIF -> conv2 (3x3) -> LIF ->
conv3 over cat(conv2 spikes, conv1 spikes) -> LIF, conv3's spikes averaged
over T. E-SAI steps the three layers together, one time step at a time; a
convolution has no state, so on a GPU we run each layer over all T at once
(one batched convolution of T x B images) and only the neurons step through
time; on a CPU stepping keeps each step's maps in cache and is faster. The
spikes are the same either way (tested).

HybridNet's decoder is E-SAI's ResNet generator at ``Gen.model`` (module
names and order as its code, so its DataParallel checkpoints load as they
are: see :mod:`spikelens.hybrid_net.registry`). HybridLite keeps the encoder's
form, lighter, and decodes with a small depthwise-separable U-Net.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spikelens.hybrid_net.blocks import per_step
from spikelens.hybrid_net.neurons import lif_multistep, lif_step


@dataclass(frozen=True)
class EncoderConfig:
    c1: int = 8
    c2: int = 16
    c3: int = 32
    k2: int = 3
    k3: int = 7
    decay: float = 0.75
    threshold: float = 0.5
    #: conv1's kernel and stride: 1 is E-SAI's 1x1; 2 reads 2x2 patches, so the spiking layers run at half size
    stride: int = 1


def spiking_encode(
    convs: tuple[nn.Module, nn.Module, nn.Module], frames: Tensor, cfg: EncoderConfig, batched: bool | None = None
) -> Tensor:
    """conv1 -> LIF -> conv2 -> LIF -> conv3(cat(spikes2, spikes1)) -> LIF; conv3's spikes summed / T.

    ``batched`` runs each convolution once over all T steps (the GPU's way: few large kernels); otherwise the
    three layers step together through time (the CPU's way: each step's maps stay in cache; 1.6x faster on
    2 cores at 256 x 256, T = 30). Default: batched on CUDA. The spikes are the same either way.
    """
    conv1, conv2, conv3 = convs
    x = frames.transpose(0, 1).float()  # T x B x 2 x H x W
    if batched if batched is not None else x.is_cuda:
        s1 = lif_multistep(per_step(conv1, x), None, cfg.decay, cfg.threshold)[0]
        s2 = lif_multistep(per_step(conv2, s1), None, cfg.decay, cfg.threshold)[0]
        s3 = lif_multistep(per_step(conv3, torch.cat((s2, s1), 2)), None, cfg.decay, cfg.threshold)[0]
        return s3.sum(0) / s3.shape[0]
    if not torch.is_grad_enabled():
        return _encode_inplace(convs, x, cfg)
    st1 = st2 = st3 = None
    total = None
    for xt in x:
        s1, st1 = lif_step(conv1(xt), st1, cfg.decay, cfg.threshold)
        s2, st2 = lif_step(conv2(s1), st2, cfg.decay, cfg.threshold)
        s3, st3 = lif_step(conv3(torch.cat((s2, s1), 1)), st3, cfg.decay, cfg.threshold)
        total = s3 if total is None else total + s3
    return total / x.shape[0]


class _Membrane:
    """One layer's LIF state for inference, updated in place: mem = mem * decay * (1 - spike) + drive.

    The reset is ``mem -= mem * spike`` on float spikes (exact: spikes are 0 or 1), 20x cheaper on a CPU
    than a boolean masked fill.
    """

    def __init__(self, cfg: EncoderConfig) -> None:
        self.cfg = cfg
        self.mem: Tensor | None = None
        self.spike: Tensor | None = None

    def __call__(self, drive: Tensor) -> Tensor:
        if self.mem is None:
            self.mem = drive
            self.spike = torch.empty_like(drive)
        else:
            self.mem.addcmul_(self.mem, self.spike, value=-1.0).mul_(self.cfg.decay).add_(drive)
        return torch.gt(self.mem, self.cfg.threshold, out=self.spike)


def _encode_inplace(convs: tuple[nn.Module, nn.Module, nn.Module], x: Tensor, cfg: EncoderConfig) -> Tensor:
    """The stepped encoder without autograd: membranes updated in place, spikes written straight into the
    buffer conv3 reads (no cat). The same spikes as :func:`lif_step`'s (tested)."""
    conv1, conv2, conv3 = convs
    n1, n2, n3 = _Membrane(cfg), _Membrane(cfg), _Membrane(cfg)
    both = total = None
    for xt in x:
        s1 = n1(conv1(xt))
        if both is None:  # in the conv's own layout (channels_last on the fast path), so conv3 reads it as is
            cl = s1.is_contiguous(memory_format=torch.channels_last)
            fmt = torch.channels_last if cl else torch.contiguous_format
            shape = (s1.shape[0], cfg.c2 + cfg.c1, *s1.shape[-2:])
            both = torch.empty(shape, dtype=xt.dtype, device=xt.device, memory_format=fmt)
        both[:, cfg.c2 :] = s1
        both[:, : cfg.c2] = n2(conv2(s1))
        s3 = n3(conv3(both))
        total = s3.clone() if total is None else total.add_(s3)
    return total / x.shape[0]


def _encoder_convs(cfg: EncoderConfig) -> tuple[nn.Conv2d, nn.Conv2d, nn.Conv2d]:
    return (
        nn.Conv2d(2, cfg.c1, cfg.stride, stride=cfg.stride),
        nn.Conv2d(cfg.c1, cfg.c2, cfg.k2, padding=cfg.k2 // 2),
        nn.Conv2d(cfg.c2 + cfg.c1, cfg.c3, cfg.k3, padding=cfg.k3 // 2),
    )


class SpikingEncoder(nn.Module):
    """E-SAI's three spiking layers as one module (HybridLite's front end)."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.conv1, self.conv2, self.conv3 = _encoder_convs(cfg)

    def forward(self, frames: Tensor) -> Tensor:
        return spiking_encode((self.conv1, self.conv2, self.conv3), frames, self.cfg)


def _check_frames(frames: Tensor) -> None:
    if frames.ndim != 5 or frames.shape[2] != 2:
        raise ValueError(f"expected B x T x 2 x H x W frames, got {tuple(frames.shape)}")


#: The physics channels (:func:`spikelens.refocus.integrate.physics_channels`): gradient and log map.
PHYSICS_CHANNELS = 2
#: The APS channels (:func:`spikelens.refocus.frame_sai.aps_channels`): two percentiles and the mean of
#: the refocused frames, and a flag.
APS_CHANNELS = 4
#: Added to the [0, 1] APS channels before the log, as :data:`spikelens.refocus.frame_sai.LOG_EPS`.
APS_LOG_EPS = 0.01


def _log_gradient_agreement(gradient: Tensor, image: Tensor) -> Tensor:
    """Per sample, the correlation of ``image``'s centred horizontal log gradient with the events'
    ``gradient`` (B x H x W each) over the pixels that have one (0 where the events saw nothing)."""
    log = torch.log(image + APS_LOG_EPS)
    d = torch.zeros_like(log)
    d[..., 1:-1] = 0.5 * (log[..., 2:] - log[..., :-2])
    d = d * (gradient != 0)
    den = torch.sqrt((gradient * gradient).sum((1, 2)) * (d * d).sum((1, 2)))
    return (gradient * d).sum((1, 2)) / den.clamp_min(1e-12)


def target_first(side: Tensor) -> Tensor:
    """The side channels (B x (physics + APS) x H x W) with the two APS percentiles swapped, per sample,
    where the 90th's log gradient agrees better with the events' than the 10th's.

    Why: which percentile is the target (the occluder darker or brighter) is a property of the scene, and
    in flat regions, where no event falls, nothing local can tell; a network reading them in a fixed
    order guessed there, in blobs. The events' whole-image choice (as
    :func:`spikelens.refocus.frame_sai.events_choice` makes it) put first gives it the scene's answer
    as a default that local evidence can overrule. Without frames (all zeros) nothing moves.
    """
    g = side[:, 0].float()
    lo, hi = side[:, PHYSICS_CHANNELS].float(), side[:, PHYSICS_CHANNELS + 1].float()
    swap = (_log_gradient_agreement(g, hi) > _log_gradient_agreement(g, lo)).view(-1, 1, 1)
    return _percentiles_swapped(side, swap)


def _percentiles_swapped(side: Tensor, swap: Tensor) -> Tensor:
    """``side`` with its two APS percentile channels exchanged where ``swap`` (broadcast to B x H x W)."""
    lo, hi = side[:, PHYSICS_CHANNELS], side[:, PHYSICS_CHANNELS + 1]
    first, second = torch.where(swap, hi, lo), torch.where(swap, lo, hi)
    return torch.cat([side[:, :PHYSICS_CHANNELS], first[:, None], second[:, None], side[:, PHYSICS_CHANNELS + 2 :]], 1)


#: The occluder's shade: its histogram's smoothing (sigma and half-width, grey levels), as
#: :data:`spikelens.refocus.frame_sai.SHADE_SMOOTH` and ``SHADE_RADIUS`` (a sibling room: tested equal).
SHADE_SMOOTH = 2.0
SHADE_RADIUS = 8


def occluder_shades(aps: Tensor) -> Tensor:
    """Per sample, the grey level (0-255, B float) the two percentile channels (B x 2 x H x W, in [0, 1])
    share most: :func:`spikelens.refocus.frame_sai.occluder_shade` in torch, on what the network reads."""
    return _shades_of_levels(_grey_levels(aps))


def _grey_levels(aps: Tensor) -> Tensor:
    """[0, 1] channels as the integer grey levels (float) the NumPy rule rounds them to."""
    return torch.round(aps.float() * 255).clamp(0, 255)


def _shades_of_levels(levels: Tensor) -> Tensor:
    """Per sample, the peak of the B x 2 x H x W ``levels``' histogram smoothed by the NumPy rule's kernel."""
    b = levels.shape[0]
    levels = levels.long().reshape(b, -1)
    hist = torch.zeros(b, 256, dtype=torch.float64, device=levels.device)
    hist.scatter_add_(1, levels, torch.ones_like(levels, dtype=torch.float64))
    x = torch.arange(-SHADE_RADIUS, SHADE_RADIUS + 1, dtype=torch.float64, device=levels.device)
    kernel = torch.exp(-0.5 * (x / SHADE_SMOOTH) ** 2).view(1, 1, -1)
    smooth = F.conv1d(hist[:, None], kernel, padding=kernel.shape[-1] // 2)[:, 0]
    return smooth.argmax(1).to(torch.float32)


def shade_first(side: Tensor) -> Tensor:
    """The side channels (B x (physics + APS) x H x W) with the two APS percentiles reordered per pixel:
    first the one farther from the occluder's shade (:func:`occluder_shades`), the target's, then the other.

    Why: at each pixel one percentile is the occluder and the other the target, and the occluder is the
    shade the two share most (:mod:`spikelens.refocus.frame_sai`); a network reading them as 10th and 90th
    had to tell which from its local features, and in flat regions, where no event falls, guessed the
    occluder's. Ties keep the 90th first, as :func:`spikelens.refocus.frame_sai.shade_choice` does, and
    without frames (all zeros) nothing moves.
    """
    levels = _grey_levels(side[:, PHYSICS_CHANNELS : PHYSICS_CHANNELS + 2])
    shade = _shades_of_levels(levels).view(-1, 1, 1)
    low = (levels[:, 0] - shade).abs() > (levels[:, 1] - shade).abs()  # the 10th is the target: it goes first
    return _percentiles_swapped(side, ~low)


def frame_agreement(side: Tensor) -> Tensor:
    """Per sample (B), the correlation of the first APS percentile's horizontal log gradient with the
    events' (:func:`_log_gradient_agreement`): near 1 where the frames are sharp, clean and the percentile
    is the target's, lower where motion blur, noise or the wrong layer make them disagree, 0 without frames.

    Why: the frame gate's trust is a convolution of the head's features, linear in them, so it cannot
    compute an agreement between two of its inputs; blur and noise are properties of the recording, so one
    number for it says what no 3 x 3 neighbourhood can.
    """
    return _log_gradient_agreement(side[:, 0].float(), side[:, PHYSICS_CHANNELS].float())


def _check_physics(physics: Tensor | None, frames: Tensor, channels: int = PHYSICS_CHANNELS) -> Tensor:
    want = (frames.shape[0], channels, *frames.shape[-2:])
    if physics is None or tuple(physics.shape) != want:
        got = None if physics is None else tuple(physics.shape)
        raise ValueError(f"this model reads the physics channels beside the frames: expected {want}, got {got}")
    return physics.to(frames.device, torch.float32)


def normalise_counts(frames: Tensor) -> Tensor:
    """Event counts divided by each sample's mean non-zero count: a sensor with half the threshold (twice
    the events) gives the encoder about the same input (E2VID normalises its voxel grids likewise)."""
    f = frames.float()
    nz = (f > 0).flatten(1).sum(1).clamp(min=1)
    scale = f.flatten(1).sum(1) / nz
    return f / scale.clamp(min=1e-6).view(-1, *([1] * (f.ndim - 1)))


# -- HybridNet (E-SAI) ------------------------------------------------------------------------------


class ResBlock(nn.Module):
    """``x + conv_block(x)``; conv_block indices as E-SAI's (pad, conv, BN, ReLU, dropout, pad, conv, BN)."""

    def __init__(self, dim: int, dropout: float) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3, bias=False),
            nn.BatchNorm2d(dim),
            nn.ReLU(True),
            nn.Dropout(dropout),
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3, bias=False),
            nn.BatchNorm2d(dim),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """E-SAI's decoder: its layers live in ``self.model`` so the checkpoint keys are ``Gen.model.<i>``."""

    def __init__(self, in_ch: int, ngf: int = 64, n_blocks: int = 15, dropout: float = 0.5) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_ch, ngf, 7, bias=False),
            nn.BatchNorm2d(ngf),
            nn.ReLU(True),
        ]
        for mult in (1, 2):
            layers += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(ngf * mult * 2),
                nn.ReLU(True),
            ]
        layers += [ResBlock(ngf * 4, dropout) for _ in range(n_blocks)]
        for mult in (4, 2):
            layers += [
                nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1, bias=False),
                nn.BatchNorm2d(ngf * mult // 2),
                nn.ReLU(True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 1, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


@dataclass(frozen=True)
class HybridNetConfig:
    ngf: int = 64
    n_blocks: int = 15
    dropout: float = 0.5
    #: read the physics channels beside the spikes (a new model; E-SAI's checkpoints have False)
    physics: bool = False
    #: which log map the physics channels carry (:data:`spikelens.refocus.integrate.LOG_MAPS`)
    log_map: str = "plain"


class HybridNet(nn.Module):
    """E-SAI's network; parameter names conv1/conv2/conv3/Gen.model.* as in its checkpoints."""

    config_class = HybridNetConfig
    #: Height and width must be multiples of this (two stride-2 stages).
    multiple = 4

    def __init__(self, config: HybridNetConfig = HybridNetConfig()) -> None:
        super().__init__()
        self.config = config
        self.encoder_config = EncoderConfig()
        self.conv1, self.conv2, self.conv3 = _encoder_convs(self.encoder_config)
        extra = PHYSICS_CHANNELS if config.physics else 0
        self.Gen = ResnetGenerator(self.encoder_config.c3 + extra, config.ngf, config.n_blocks, config.dropout)

    @property
    def uses_physics(self) -> bool:
        return self.config.physics

    def encode(self, frames: Tensor, batched: bool | None = None) -> Tensor:
        if self.config.physics:
            frames = normalise_counts(frames)
        return spiking_encode((self.conv1, self.conv2, self.conv3), frames, self.encoder_config, batched)

    def forward(self, frames_bt: Tensor, physics: Tensor | None = None) -> Tensor:
        """``frames_bt``: B x T x 2 x H x W (batch first, E-SAI's order; the classifiers take T first)."""
        _check_frames(frames_bt)
        features = self.encode(frames_bt)
        if self.config.physics:
            features = torch.cat((features, _check_physics(physics, frames_bt)), 1)
        return self.Gen(features)


# -- HybridLite -------------------------------------------------------------------------------------


def _dwsep(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    """Depthwise 3x3 then pointwise 1x1, each with BN and ReLU (MobileNet's block)."""
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False),
        nn.BatchNorm2d(cin),
        nn.ReLU(True),
        nn.Conv2d(cin, cout, 1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(True),
    )


class _DWRes(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.block = _dwsep(c, c)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x)


@dataclass(frozen=True)
class HybridLiteConfig:
    c1: int = 8
    c2: int = 12
    c3: int = 16
    k3: int = 3
    width: int = 32
    n_blocks: int = 4
    #: 2: the encoder reads 2x2 patches and everything but the last layer runs at half size (4x less work);
    #: the head then sees the decoder's features upsampled beside the window's full-size event counts
    stride: int = 1
    #: read the physics channels (gradient and integrated log map) at the stem and the head, and
    #: normalise the counts per image: the input then does not depend on threshold, event count or speed
    physics: bool = False
    #: which log map the physics channels carry (:data:`spikelens.refocus.integrate.LOG_MAPS`): ``plain``
    #: for the models trained before the unfolded map existed
    log_map: str = "plain"
    #: also read the APS channels after the physics ones (needs ``physics``): the refocused frames' two
    #: percentiles and mean, for the absolute brightness events do not carry, and a flag plane that is 0
    #: where a recording has no frames
    aps: bool = False
    #: mix the APS frames into the output by two learnt per-pixel maps (needs ``aps``; see
    #: :func:`gate_frames`): which percentile is the target there, and how far to trust it over the
    #: network's own estimate
    frame_gate: bool = False
    #: read the two percentiles in the order the events choose (:func:`target_first`), not as 10th, 90th
    target_first: bool = False
    #: read them per pixel, the one farther from the occluder's shade first (:func:`shade_first`)
    shade_first: bool = False
    #: the frame gate also reads how well the frames agree with the events (:func:`frame_agreement`)
    frame_agreement: bool = False
    #: before the gate mixes them, the estimate takes the frames' brightness and contrast: its gain and
    #: offset fitted to the frames' estimate of the target over the image (:func:`calibrated`)
    calibrate: bool = False


class HybridLite(nn.Module):
    """E-SAI's spiking encoder, lighter (conv3 3x3, 16 channels), and a depthwise-separable U-Net decoder."""

    config_class = HybridLiteConfig

    def __init__(self, config: HybridLiteConfig = HybridLiteConfig()) -> None:
        super().__init__()
        self.config = config
        if config.stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {config.stride}")
        #: Height and width are padded to a multiple of this (the stride-2 stages).
        self.multiple = 4 * config.stride
        if config.aps and not config.physics:
            raise ValueError("the APS channels come after the physics channels: aps needs physics")
        if (config.frame_gate or config.target_first or config.shade_first) and not config.aps:
            raise ValueError("the frame gate and the percentiles' orders read the APS frames: they need aps")
        if config.frame_agreement and not config.frame_gate:
            raise ValueError("the frames' agreement is read by the frame gate: frame_agreement needs frame_gate")
        if config.calibrate and not config.frame_gate:
            raise ValueError("the estimate is calibrated to the frame gate's estimate: calibrate needs frame_gate")
        if config.target_first and config.shade_first:
            raise ValueError("the percentiles come in one order: target_first or shade_first, not both")
        c = config.width
        enc = EncoderConfig(config.c1, config.c2, config.c3, 3, config.k3, stride=config.stride)
        extra = self.side_channels
        self.encoder = SpikingEncoder(enc)
        self.stem = _dwsep(config.c3 + extra, c)
        self.down1 = _dwsep(c, 2 * c, 2)
        self.down2 = _dwsep(2 * c, 3 * c, 2)
        self.blocks = nn.Sequential(*(_DWRes(3 * c) for _ in range(config.n_blocks)))
        self.up2 = _dwsep(3 * c + 2 * c, 2 * c)
        self.up1 = _dwsep(2 * c + c, c)
        head_in = c + (2 if config.stride > 1 else 0) + extra
        self.head = nn.Conv2d(head_in, 1, 3, padding=1)
        #: the frame gate's two logits (select, trust) from what the head reads
        gate_in = head_in + (1 if config.frame_agreement else 0)
        self.gate = nn.Conv2d(gate_in, 2, 3, padding=1) if config.frame_gate else None

    @property
    def uses_physics(self) -> bool:
        return self.config.physics

    @property
    def uses_aps(self) -> bool:
        return self.config.aps

    @property
    def side_channels(self) -> int:
        """The channels read beside the frames: physics, then APS."""
        return (PHYSICS_CHANNELS if self.config.physics else 0) + (APS_CHANNELS if self.config.aps else 0)

    def forward(self, frames_bt: Tensor, physics: Tensor | None = None) -> Tensor:
        """``frames_bt``: B x T x 2 x H x W (batch first, E-SAI's order; the classifiers take T first);
        ``physics``: B x C x H x W, the physics channels and (``aps``) the APS channels after them."""
        _check_frames(frames_bt)
        if self.config.physics:
            physics = _check_physics(physics, frames_bt, self.side_channels)
            if self.config.target_first:
                physics = target_first(physics)
            elif self.config.shade_first:
                physics = shade_first(physics)
            frames_bt = normalise_counts(frames_bt)
        # In fp32 under autocast too: the membranes summed over T steps and the frames' brightness (bf16
        # keeps 8 bits) are what bf16 rounding moved most (up to 0.9 dB on a small scene, 0.1 with these).
        with torch.autocast(frames_bt.device.type, enabled=False):
            features = self.encoder(frames_bt)
            if physics is not None:
                features = torch.cat((features, F.adaptive_avg_pool2d(physics, features.shape[-2:])), 1)
            x0 = self.stem(features)
        x1 = self.down1(x0)
        x = self.blocks(self.down2(x1))
        x = self.up2(torch.cat((F.interpolate(x, size=x1.shape[-2:], mode="nearest"), x1), 1))
        x = self.up1(torch.cat((F.interpolate(x, size=x0.shape[-2:], mode="nearest"), x0), 1))
        if self.config.stride > 1:
            counts = torch.log1p(frames_bt.float().mean(1))  # B x 2 x H x W: where the window's events fell
            x = torch.cat(
                (F.interpolate(x, size=frames_bt.shape[-2:], mode="bilinear", align_corners=False), counts), 1
            )
        if physics is not None:
            x = torch.cat((x, physics), 1)
        y = torch.tanh(self.head(x))
        if self.gate is not None:  # in fp32 under autocast too: a bf16 logit near 0 flips which frame is copied
            with torch.autocast(x.device.type, enabled=False):
                g = x.float()
                if self.config.frame_agreement:
                    g = torch.cat((g, frame_agreement(physics.float()).view(-1, 1, 1, 1).expand_as(g[:, :1])), 1)
                y = gate_frames(y.float(), self.gate(g), physics[:, -APS_CHANNELS:].float(), self.config.calibrate)
        return y


def gate_frames(estimate: Tensor, logits: Tensor, aps: Tensor, calibrate: bool = False) -> Tensor:
    """The network's ``estimate`` (B x 1 x H x W, in [-1, 1]) mixed with the APS frames by two maps.

    Why: a convolution can only add its inputs in fixed proportions, so a head that reads the 10th and
    90th percentiles of the refocused frames cannot pass through the one that is the target (the
    occluder may be darker or brighter, and differ across the image); it has to re-synthesise the
    frames' brightness from its features, and it did so badly in flat regions the events say nothing
    of. Here ``select`` = sigmoid(logit 0) picks between the two percentile channels a, b (the 10th and
    90th, or the events' choice and the other, :func:`target_first`, or the one farther from the
    occluder's shade and the other, :func:`shade_first`) for the frames' estimate of the
    target, 2 (a + select (b - a)) - 1, and ``trust`` = sigmoid(logit 1), times the flag plane
    (0 without frames: the estimate passes unchanged), mixes that with the estimate. Both are convex
    combinations, so the output stays in [-1, 1]. ``aps``: the B x 4 x H x W APS channels. ``calibrate``
    first gives the estimate the frames' brightness and contrast (:func:`calibrated`).
    """
    select = torch.sigmoid(logits[:, :1])
    trust = torch.sigmoid(logits[:, 1:2]) * aps[:, -1:]
    frames = 2 * (aps[:, :1] + select * (aps[:, 1:2] - aps[:, :1])) - 1
    if calibrate:
        estimate = calibrated(estimate, frames, aps[:, -1:])
    return estimate + trust * (frames - estimate)


def calibrated(estimate: Tensor, reference: Tensor, weight: Tensor) -> Tensor:
    """``estimate`` (B x 1 x H x W, in [-1, 1]) with the gain and offset that best fit it to ``reference``
    by least squares over the pixels ``weight`` marks, per sample, clipped to [-1, 1].

    Why: events carry no absolute brightness, so where the gate does not trust the frames the estimate's
    brightness and contrast are a guess (4-15 dB below its own best affine fit on scenes it distrusted);
    the frames measure both, and two numbers fitted over the whole image stay right where the frames
    are wrong locally (the occluder's remnants). A sample without frames (weight 0) keeps its estimate;
    the gain is not let below 0 (an estimate anti-correlated with the frames is not turned over).
    """
    dims = (1, 2, 3)
    w = weight.expand_as(estimate)
    n = w.sum(dims, keepdim=True)
    has = n > 0
    n = n.clamp(min=1e-6)
    me, mr = (w * estimate).sum(dims, keepdim=True) / n, (w * reference).sum(dims, keepdim=True) / n
    de = estimate - me
    var = (w * de * de).sum(dims, keepdim=True) / n
    cov = (w * de * (reference - mr)).sum(dims, keepdim=True) / n
    gain = (cov / var.clamp(min=1e-8)).clamp(min=0)
    fitted = (gain * de + mr).clamp(-1, 1)
    return torch.where(has, fitted, estimate)


#: The trust logit a new frame gate starts from: sigmoid(-4) = 1.8 %, so the output moves at most 0.036
#: of its [-1, 1] range (4.6 grey levels) from the model's until trained, while its gradient is not flat.
GATE_TRUST_START = -4.0


def with_frame_gate(model: HybridLite) -> HybridLite:
    """A copy of an APS ``model`` with a frame gate (:func:`gate_frames`) that starts nearly shut.

    Its weights start at zero and its biases at select 0 (the two percentiles' mean) and trust
    :data:`GATE_TRUST_START`, so until trained the copy's output is within 0.036 (4.6 grey levels) of the
    model's.
    """
    if not isinstance(model, HybridLite) or not model.config.aps:
        raise ValueError("only a HybridLite that reads the APS frames can take the frame gate")
    if model.config.frame_gate:
        return copy.deepcopy(model)
    new = HybridLite(dataclasses.replace(model.config, frame_gate=True)).to(next(model.parameters()).device)
    missing, unexpected = new.load_state_dict(model.state_dict(), strict=False)
    if unexpected or set(missing) != {"gate.weight", "gate.bias"}:
        raise ValueError(f"unexpected state: missing {missing}, unexpected {unexpected}")
    assert new.gate is not None
    with torch.no_grad():
        new.gate.weight.zero_()
        new.gate.bias.copy_(torch.tensor([0.0, GATE_TRUST_START]))
    return new.train(model.training)


#: The select logit a gate starts from when its model learns :func:`shade_first`: sigmoid(-4) = 1.8 %, the
#: first channel (the target's percentile) taken.
GATE_SELECT_FIRST = -4.0


def with_shade_first(model: HybridLite) -> HybridLite:
    """A copy of an APS ``model`` that reads its percentiles in the shade's order (:func:`shade_first`).

    Its frame gate, if it has one, keeps what it learnt of trust and forgets what it learnt of select (the
    10th against the 90th): select starts at the first channel, :data:`GATE_SELECT_FIRST`, the frames'
    estimate then being the shade rule's (:func:`spikelens.refocus.frame_sai.robust_frame_sai`).
    """
    if not isinstance(model, HybridLite) or not model.config.aps:
        raise ValueError("only a HybridLite that reads the APS frames can take the shade's order")
    new = copy.deepcopy(model)
    if model.config.shade_first:
        return new
    new.config = dataclasses.replace(model.config, target_first=False, shade_first=True)
    if new.gate is not None:
        with torch.no_grad():
            new.gate.weight[0].zero_()
            new.gate.bias[0] = GATE_SELECT_FIRST
    return new


def with_frame_agreement(model: HybridLite) -> HybridLite:
    """A copy of a gated ``model`` whose gate also reads :func:`frame_agreement`, with zero weight from it
    (the copy's output is the model's until trained)."""
    if not isinstance(model, HybridLite) or not model.config.frame_gate:
        raise ValueError("only a HybridLite with a frame gate can read the frames' agreement")
    if model.config.frame_agreement:
        return copy.deepcopy(model)
    new = HybridLite(dataclasses.replace(model.config, frame_agreement=True)).to(next(model.parameters()).device)
    state = model.state_dict()
    weight = state["gate.weight"]
    state["gate.weight"] = torch.cat((weight, torch.zeros_like(weight[:, :1])), 1)
    new.load_state_dict(state)
    return new.train(model.training)


def with_aps_inputs(model: HybridLite) -> HybridLite:
    """A copy of a physics ``model`` that also reads the APS channels and, until trained, ignores them.

    The new channels come last at the stem and the head; their weights into the stem's pointwise
    convolution and into the head start at zero, so the copy's output equals the model's for any APS
    input, and fine-tuning starts from what the model already knows.
    """
    if not isinstance(model, HybridLite) or not model.config.physics:
        raise ValueError("only a HybridLite that reads the physics channels can take the APS channels")
    if model.config.aps:
        return copy.deepcopy(model)
    new = HybridLite(dataclasses.replace(model.config, aps=True)).to(next(model.parameters()).device)
    old_state, state = model.state_dict(), new.state_dict()
    for name, value in old_state.items():
        target = state[name]
        if target.shape == value.shape:
            target.copy_(value)
            continue
        if value.ndim == 4 and value.shape[1] != target.shape[1]:  # more input channels: the new ones silent
            target.zero_()
            target[:, : value.shape[1]] = value
        else:  # per channel (the stem's depthwise filters, batch norm): the old as they were, defaults after
            target[: value.shape[0]] = value
    new.load_state_dict(state)
    return new.train(model.training)
