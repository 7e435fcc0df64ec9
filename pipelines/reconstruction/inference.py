"""Run a reconstruction network on a recording: padding, the CPU fast path, and `reconstruct`."""

from __future__ import annotations

import contextlib
import copy
import functools
import time
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from spikelens.hybrid_net.fast_inference import fast_copy
from spikelens.hybrid_net.registry import load_model, resolve_device
from spikelens.pipelines.extras import DEFAULT_RECONSTRUCTOR
from spikelens.pipelines.reconstruction.inputs import load_sample
from spikelens.pipelines.reconstruction.metrics import psnr, ssim
from spikelens.pipelines.sai_world import APS
from spikelens.refocus.frame_sai import aps_channels
from spikelens.refocus.frames import Roi
from spikelens.refocus.integrate import check_log_map

#: The bundled default model's name.
DEFAULT_MODEL = DEFAULT_RECONSTRUCTOR


def uses_physics(model: nn.Module) -> bool:
    return bool(getattr(model, "uses_physics", False))


def uses_aps(model: nn.Module) -> bool:
    """The model reads the APS channels too (after the physics ones)."""
    return bool(getattr(model, "uses_aps", False))


def without_frames(physics: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``Sample.physics`` as a recording without APS frames gives it (:func:`side_inputs` fills zeros)."""
    return {k: v for k, v in physics.items() if k != APS}


def side_inputs(model: nn.Module, physics: Mapping[str, np.ndarray]) -> np.ndarray:
    """The C x H x W channels ``model`` reads beside the frames, from ``Sample.physics``: its log map's
    physics channels, then (models that read the frames too) the APS channels, zeros where there are none."""
    own = np.asarray(physics[log_map_of(model)], np.float32)
    if not uses_aps(model):
        return own
    aps = physics.get(APS)
    if aps is None:
        aps = aps_channels(None, own.shape[1:])
    return np.concatenate([own, np.asarray(aps, np.float32)])


def log_map_of(model: nn.Module) -> str:
    """The log map the model's physics channels carry (its config's ``log_map``; ``plain`` before it had one).

    Checked here, not in the config: the networks' package sits beside the physics, not above it."""
    return check_log_map(str(getattr(getattr(model, "config", None), "log_map", "plain")))


#: ``run_model``'s arithmetic: fp32 (exact, the default), the CPU fast path (fp32, reordered: folded batch
#: norm, Winograd 3x3 convolutions, channels_last), bf16 autocast (on CPUs with native bf16), and ``auto``:
#: whichever of the last two is quicker on this CPU for this model, timed on its first input
PRECISIONS = ("fp32", "fast", "bf16", "auto")


@functools.cache
def cpu_has_bf16() -> bool:
    """The CPU multiplies bf16 natively (avx512_bf16 or AMX), so oneDNN's bf16 convolutions pay off."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _channels_last_copy(model: nn.Module) -> nn.Module:
    """bf16 autocast's copy: channels_last weights, oneDNN's preferred layout for bf16."""
    return copy.deepcopy(model).eval().to(memory_format=torch.channels_last)


#: How each precision rewrites a model for inference (fp32 runs the model itself).
_REWRITES = {"fast": fast_copy, "bf16": _channels_last_copy}
_COPIES: weakref.WeakKeyDictionary[nn.Module, dict[str, nn.Module]] = weakref.WeakKeyDictionary()
#: ``auto``'s choice per model ("fast" or "bf16"), made once
_AUTO: weakref.WeakKeyDictionary[nn.Module, str] = weakref.WeakKeyDictionary()


def _inference_copy(model: nn.Module, precision: str) -> nn.Module:
    """The model rewritten for ``precision``, built on first use and kept beside it (its weights are read
    then: rebuild after training). The caller's model is never changed."""
    copies = _COPIES.setdefault(model, {})
    if precision not in copies:
        copies[precision] = _REWRITES[precision](model)
    return copies[precision]


def auto_choice(model: nn.Module) -> str | None:
    """What ``precision="auto"`` runs ``model`` with on its device ("fast" or "bf16"); None before its first
    call has timed them."""
    return _AUTO.get(model)


def native_bf16(device: torch.device) -> bool:
    """bf16 pays on ``device``: a CPU with avx512_bf16 or AMX (:func:`cpu_has_bf16`), or a CUDA GPU that
    computes in bf16 (Ampere and later)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_has_bf16()


def _forward(model: nn.Module, x: torch.Tensor, extra: tuple, precision: str) -> torch.Tensor:
    if precision == "bf16":
        if not native_bf16(x.device):
            raise ValueError(
                "bf16 autocast needs a CPU with avx512_bf16 or AMX, or a CUDA GPU with bf16 (this device has neither)"
            )
        with torch.inference_mode(), torch.autocast(x.device.type, dtype=torch.bfloat16):
            return _inference_copy(model, "bf16")(x, *extra)
    if x.device.type == "cuda":  # fp32 is IEEE fp32; the fast path lets cuDNN use TF32 (its default)
        with torch.inference_mode(), _cudnn_fp32("tf32" if precision == "fast" else "ieee"):
            return model(x, *extra)
    net = _inference_copy(model, "fast") if precision == "fast" else model
    with torch.inference_mode():
        return net(x, *extra)


@contextlib.contextmanager
def _cudnn_fp32(mode: str) -> Iterator[None]:
    """cuDNN's fp32 convolutions as ``mode`` ("ieee" or "tf32") inside, as they were after."""
    conv = torch.backends.cudnn.conv
    was = conv.fp32_precision
    conv.fp32_precision = mode
    try:
        yield
    finally:
        conv.fp32_precision = was


def _auto(model: nn.Module, x: torch.Tensor, extra: tuple) -> torch.Tensor:
    """The quicker of the fast path (TF32 on CUDA) and bf16 autocast. Which one wins depends on the
    device, not on its flags: with avx512_bf16 and no AMX, oneDNN's bf16 convolutions ran 1.3-1.8x slower
    than fp32 on one machine and 2x faster on another (benchmarks/reconstruct.py), so the first call times
    both (each run twice, the second timed: the first builds the copy and the kernels) and the choice is
    kept."""
    if not native_bf16(x.device):
        return _forward(model, x, extra, "fast")
    if model in _AUTO:
        return _forward(model, x, extra, _AUTO[model])
    sync = torch.cuda.synchronize if x.device.type == "cuda" else (lambda: None)
    timed = {}
    for precision in ("fast", "bf16"):
        _forward(model, x, extra, precision)
        sync()
        t0 = time.perf_counter()
        y = _forward(model, x, extra, precision)
        sync()
        timed[precision] = (time.perf_counter() - t0, y)
    _AUTO[model] = min(timed, key=lambda k: timed[k][0])
    return timed[_AUTO[model]][1]


def run_model(
    model: nn.Module,
    frames: np.ndarray,
    physics: np.ndarray | Mapping[str, np.ndarray] | None = None,
    precision: str = "fp32",
) -> np.ndarray:
    """The network's raw H x W float32 output (channel 0 of its tanh) on T x 2 x H x W frames (and the
    2 x H x W physics channels, for the models that read them: given per log map, as ``Sample.physics``
    holds them, the model's own is taken, and the APS channels after them for the models that read the
    frames too: :func:`side_inputs`).

    Inputs are reflect-padded up to the model's size multiple and cropped back, so any sensor size works.
    ``precision="fast"`` runs :func:`~spikelens.hybrid_net.fast_inference.fast_copy` of the model: the same
    fp32 arithmetic reordered (about 1e-5 apart; a spike whose drive sits that close to threshold may flip);
    on CUDA it is cuDNN's TF32 convolutions (its default), where fp32 is IEEE fp32. ``precision="bf16"`` is
    bf16 autocast with channels_last weights, on CPUs with native bf16 (:func:`cpu_has_bf16`) and CUDA GPUs with bf16
    (:func:`native_bf16`). ``precision="auto"`` is the quicker of the two for this model on this device
    (:func:`auto_choice`); both are within 0.1 dB of fp32.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose from {PRECISIONS}")
    dev = next(model.parameters()).device
    x = torch.from_numpy(np.asarray(frames, np.float32))[None].to(dev)
    h, w = x.shape[-2:]
    m = getattr(model, "multiple", 1)
    ph, pw = (-h) % m, (-w) % m
    if ph or pw:
        x = F.pad(x.flatten(1, 2), (0, pw, 0, ph), mode="reflect").unflatten(1, x.shape[1:3])
    extra = ()
    if uses_physics(model):
        if physics is None:
            raise ValueError("this model reads the physics channels: pass them (Sample.physics)")
        if isinstance(physics, Mapping):
            physics = side_inputs(model, physics)
        p = torch.from_numpy(np.asarray(physics, np.float32))[None].to(dev)
        extra = (F.pad(p, (0, pw, 0, ph), mode="reflect") if ph or pw else p,)
    y = _auto(model, x, extra) if precision == "auto" else _forward(model, x, extra, precision)
    return y[0, 0, :h, :w].float().cpu().numpy()


def output_to_uint8(raw: np.ndarray) -> np.ndarray:
    """tanh output in [-1, 1] to an 8-bit image."""
    return np.clip(np.rint((np.asarray(raw) + 1) * 127.5), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Reconstruction:
    image: np.ndarray  # H x W uint8
    raw: np.ndarray  # H x W float32, the network's output before scaling
    depth: float
    model: str
    device: str
    net_ms: float
    total_ms: float
    psnr: float | None
    ssim: float | None
    baseline_psnr: float | None
    #: the network read the recording's APS frames (a model that reads them, a recording that has them)
    frames_used: bool = False


#: ``reconstruct``'s methods: a network, the training-free integration of the signed events, or the
#: occlusion-robust frame SAI (the APS frames, each pixel's percentile away from the occluder's shade)
METHODS = ("network", "integrate", "frames")


def reconstruct(
    path: str | Path,
    depth: float | None = None,
    auto: bool = False,
    model: str | Path = DEFAULT_MODEL,
    device: str = "auto",
    roi: Roi | None = None,
    bins: int = 30,
    method: str = "network",
    precision: str = "fp32",
    frames: bool = True,
) -> Reconstruction:
    """Refocus ``path`` (at ``depth``, by autofocus with ``auto``, else at the file's depth) and reconstruct,
    with a network, by integrating the signed events (``method="integrate"``) or from the APS frames
    (``method="frames"``; both without training or a torch model). ``net_ms`` is that method's own time.
    ``frames=False`` hides the recording's APS frames from a network that reads them (frames not to be
    trusted: a flash, a saturated sensor)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {METHODS}")
    t0 = time.perf_counter()
    dev = resolve_device(device)
    sample = load_sample(path, depth, bins, roi, auto)  # a bad file fails here, before a model is loaded
    used = False
    if method == "integrate":
        image, raw, name, work_ms = sample.integrated, sample.log, "integrate", sample.integrate_ms
    elif method == "frames":
        if sample.frame_sai_robust is None:
            raise ValueError(f"{path}: no APS frames to refocus: --method frames needs a recording that has them")
        image, name, work_ms = sample.frame_sai_robust, "frames", sample.frames_ms
        raw = image.astype(np.float32)
    else:
        net = load_model(model, dev, "reconstruction", "reconstruct")
        physics = sample.physics
        if not frames and physics is not None:
            physics = without_frames(physics)
        used = uses_aps(net) and physics is not None and APS in physics and bool(physics[APS][-1].any())
        t1 = time.perf_counter()
        raw = run_model(net, sample.frames, physics, precision)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        work_ms = (time.perf_counter() - t1) * 1e3
        image, name = output_to_uint8(raw), str(model)
    scores = (None, None, None)
    if sample.truth is not None:
        scores = (psnr(image, sample.truth), ssim(image, sample.truth), psnr(sample.baseline, sample.truth))
    total_ms = (time.perf_counter() - t0) * 1e3
    return Reconstruction(image, raw, sample.depth, name, str(dev), work_ms, total_ms, *scores, used)
