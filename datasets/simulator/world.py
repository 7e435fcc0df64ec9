"""An open-ended world of occluded scenes for training reconstruction networks, and a world held out from it.

Sixteen photographs teach a network those photographs. Here the targets are
mostly dead-leaves images (occluding discs with power-law radii: the
scale-invariant statistics of natural images, and infinitely many of them),
procedural textures and a pool of photographs; the occluders are fences
(slanted), lattices, branches, foliage and blobs at any coverage, texture and
brightness; the sensor and the geometry are drawn wide (:class:`WorldSplit`).
:data:`CROSS_DOMAIN` holds out what :data:`TRAIN` never draws: its own
photographs, the foliage family and sensor settings outside the training
ranges, so a score on it measures generalisation, not memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import cv2
import numpy as np

from spikelens.datasets.simulator.sai import SAIConfig, SAILayers, panorama_width
from spikelens.datasets.simulator.sensor import SensorParams
from spikelens.datasets.simulator.textures import (
    PHOTOS,
    PROCEDURAL,
    Occluder,
    occluder,
    photos_available,
    target_image,
)

#: How much noisier the APS frames of a low-light scene are than the drawn noise.
LOW_LIGHT_APS_NOISE = 3.0
#: Photographs only the cross-domain split shows (the rest are training sources).
HELD_OUT_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


@dataclass(frozen=True)
class WorldSplit:
    """The ranges one split draws from (uniform unless said otherwise)."""

    photos: tuple[str, ...]
    occluders: tuple[str, ...]
    threshold: tuple[float, float]  # ON and OFF drawn separately
    noise_hz: tuple[float, float]
    hot_fraction: tuple[float, float]
    #: share of scenes with a low-light sensor: bandwidth-limited, with shot noise
    low_light: float
    #: shares of dead-leaves, procedural and photographic targets
    sources: tuple[float, float, float] = (0.55, 0.15, 0.3)
    coverage: tuple[float, float] = (0.2, 0.8)
    depth: tuple[float, float] = (0.5, 2.5)
    occluder_ratio: tuple[float, float] = (0.2, 0.7)
    fx: tuple[float, float] = (260.0, 380.0)
    v: tuple[float, float] = (0.12, 0.25)
    duration_us: tuple[int, int] = (700_000, 1_200_000)
    #: relative error of the depth the network input is refocused at (autofocus is this good)
    depth_error: float = 0.02
    #: a low-light scene's shot-noise rate at black, per pixel (v2e's default for good light is 0.001 Hz)
    shot_noise_hz: tuple[float, float] = (0.5, 5.0)
    #: the APS frames' exposure (motion blur) and noise (std, in [0, 1] intensity; three times more in low
    #: light); drawn only where a range is open, so the held-out splits keep their nominal frames and the
    #: random stream they were written with
    aps_exposure_us: tuple[int, int] = (10_000, 10_000)
    aps_noise: tuple[float, float] = (0.01, 0.01)


TRAIN = WorldSplit(
    photos=tuple(p for p in PHOTOS if p not in HELD_OUT_PHOTOS),
    occluders=("fence", "slanted_fence", "lattice", "branches", "blobs"),
    threshold=(0.1, 0.6),
    noise_hz=(0.0, 2.0),
    hot_fraction=(0.0, 1e-3),
    low_light=0.2,
    aps_exposure_us=(2_000, 40_000),
    aps_noise=(0.005, 0.04),
)
CROSS_DOMAIN = WorldSplit(
    photos=HELD_OUT_PHOTOS,
    occluders=("leaves",),
    threshold=(0.07, 0.1),
    noise_hz=(2.0, 4.0),
    hot_fraction=(1e-3, 2e-3),
    low_light=0.0,
    sources=(0.0, 0.0, 1.0),
    coverage=(0.3, 0.7),
)
#: Held-out photographs behind slanted fences at fixed, nominal settings: the robustness table's centre,
#: and (with FENCES_HARD) our stand-in for the issue's hidden check, which a simulator nobody here wrote
#: renders the same way (photographs behind fences; a second set with a lower threshold, 10x the noise
#: and denser occluders). Nothing in training draws these photographs.
FENCES = WorldSplit(
    photos=HELD_OUT_PHOTOS,
    occluders=("slanted_fence",),
    threshold=(0.2, 0.2),
    noise_hz=(0.1, 0.1),
    hot_fraction=(0.0, 0.0),
    low_light=0.0,
    sources=(0.0, 0.0, 1.0),
    coverage=(0.5, 0.5),
    depth_error=0.0,
)
FENCES_HARD = replace(FENCES, threshold=(0.1, 0.1), noise_hz=(1.0, 1.0), coverage=(0.7, 0.7))
SPLITS = {"train": TRAIN, "cross": CROSS_DOMAIN, "fences": FENCES, "fences-hard": FENCES_HARD}


def dead_leaves(
    height: int, width: int, rng: np.random.Generator, r_min: float = 1.5, r_max: float = 90.0
) -> np.ndarray:
    """Opaque discs with radii from p(r) ~ r^-3 (Lee, Mumford and Huang 2001) and uniform grey levels,
    painted back to front until the first ones are buried (the same picture as dropping them front to
    back until the canvas is covered), under a soft illumination field. float32 in [0, 1]."""
    s = 2  # drawn at 2x and area-averaged, so edges are anti-aliased
    img = np.full((height * s, width * s), rng.random(), np.float32)
    mean_area = np.pi * 2 * r_min**2 * np.log(r_max / r_min)  # E[pi r^2] under r^-3
    n = int(8 * (height + 2 * r_max) * (width + 2 * r_max) / mean_area)  # leaves about e^-8 uncovered
    u = rng.random(n)
    radii = 1 / np.sqrt(1 / r_min**2 - u * (1 / r_min**2 - 1 / r_max**2))  # inverse CDF of r^-3
    cx = rng.uniform(-r_max, width + r_max, n) * s
    cy = rng.uniform(-r_max, height + r_max, n) * s
    greys = rng.random(n)
    for r, x, y, g in zip(radii * s, cx, cy, greys, strict=True):
        cv2.circle(img, (int(x), int(y)), max(1, int(r)), float(g), -1)
    img = cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)
    light = cv2.GaussianBlur(rng.standard_normal((height, width)).astype(np.float32), (0, 0), 40)
    img = img * (1 + 0.3 * light / max(float(np.abs(light).max()), 1e-6))
    return (img - img.min()) / max(float(np.ptp(img)), 1e-6)


def world_target(source: str, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """``deadleaves:<seed>`` or any :func:`.textures.target_image` source, with random brightness and contrast."""
    if source.startswith("deadleaves:"):
        img = dead_leaves(height, width, np.random.default_rng(int(source.split(":")[1])))
        lo = rng.uniform(0.03, 0.35)
        hi = rng.uniform(max(lo + 0.25, 0.55), 0.97)
        return (lo + (hi - lo) * img).astype(np.float32)
    return target_image(source, height, width, rng)


def world_occluder(kind: str, height: int, width: int, coverage: float, rng: np.random.Generator) -> Occluder:
    """The training families beyond :func:`.textures.occluder`'s, with a shade of any brightness and grain."""
    s = 4
    if kind == "slanted_fence":
        base = occluder("fence", height * 2, width * 2, coverage, rng).alpha
        m = cv2.getRotationMatrix2D((width, height), float(rng.uniform(-35, 35)), 1.0)
        alpha = cv2.warpAffine(base, m, (width * 2, height * 2), flags=cv2.INTER_LINEAR)[
            height // 2 : height // 2 + height, width // 2 : width // 2 + width
        ]
    elif kind == "leaves":
        big = np.zeros((height * s, width * s), np.float32)
        while big.mean() < coverage:
            for _ in range(50):
                c = (int(rng.uniform(0, width * s)), int(rng.uniform(0, height * s)))
                a = int(rng.uniform(3, 14) * s)
                axes = (a, max(1, int(a * rng.uniform(0.3, 0.6))))
                cv2.ellipse(big, c, axes, rng.uniform(0, 180), 0, 360, 1.0, -1)
        alpha = cv2.resize(big, (width, height), interpolation=cv2.INTER_AREA)
    elif kind == "blobs":
        field = cv2.GaussianBlur(rng.standard_normal((height, width)).astype(np.float32), (0, 0), rng.uniform(3, 10))
        cut = np.quantile(field, 1 - coverage)
        alpha = np.clip((field - cut) / (0.15 * field.std()) + 0.5, 0, 1).astype(np.float32)
    else:
        alpha = occluder(kind, height, width, coverage, rng).alpha
    grain = cv2.GaussianBlur(rng.standard_normal((height, width)).astype(np.float32), (0, 0), rng.uniform(1, 4))
    shade = np.clip(rng.uniform(0.03, 0.95) + rng.uniform(0.0, 0.2) * grain, 0.02, 0.98).astype(np.float32)
    return Occluder(kind, alpha.astype(np.float32), shade)


def bandwidth_limited(render: Callable[[int], np.ndarray], tau_us: float) -> Callable[[int], np.ndarray]:
    """A low-light photoreceptor: each pixel follows the scene through a first-order low-pass whose time
    constant grows as the light falls (tau = tau_us * 0.1 / (I + 0.02)), as a real DVS front end does.

    Stateful: call in increasing time order (the simulator does).
    """
    state: dict[str, object] = {}

    def filtered(t_us: int) -> np.ndarray:
        img = render(t_us)
        prev, t0 = state.get("img"), state.get("t")
        if prev is None:
            out = img.astype(np.float32)
        else:
            tau = tau_us * 0.1 / (prev + 0.02)
            a = np.exp(-(t_us - int(t0)) / tau).astype(np.float32)  # type: ignore[arg-type]
            out = img + a * (prev - img)  # type: ignore[operator]
        state["img"], state["t"] = out, t_us
        return out

    return filtered


@dataclass(frozen=True)
class WorldScene:
    scene: SAILayers
    source: str
    #: the depth the network input is refocused at: the truth with autofocus-sized error
    focus_depth: float
    #: the low-light time constant, 0 for a bright scene
    tau_us: float


def draw_scene(split: WorldSplit, rng: np.random.Generator, width: int = 346, height: int = 260) -> WorldScene:
    """One scene of ``split``: target source, occluder, sensor, geometry and focus error all drawn."""
    family = rng.choice(3, p=np.asarray(split.sources) / sum(split.sources))
    if family == 2 and split.photos and photos_available():
        source = f"photo:{split.photos[int(rng.integers(len(split.photos)))]}"
    elif family == 1 or not split.sources[0]:
        source = f"procedural:{PROCEDURAL[int(rng.integers(len(PROCEDURAL)))]}:{int(rng.integers(2**31))}"
    else:
        source = f"deadleaves:{int(rng.integers(2**31))}"
    sensor = SensorParams(
        threshold_on=float(rng.uniform(*split.threshold)),
        threshold_off=float(rng.uniform(*split.threshold)),
        threshold_sigma=float(rng.uniform(0.0, 0.05)),
        refractory_us=float(rng.uniform(0, 1000)),
        noise_rate_hz=float(rng.uniform(*split.noise_hz)),
        hot_pixel_fraction=float(rng.uniform(*split.hot_fraction)),
    )
    cfg = SAIConfig(
        width=width,
        height=height,
        fx=float(rng.uniform(*split.fx)),
        v=float(rng.uniform(*split.v)),
        duration_us=int(rng.integers(*split.duration_us)),
        sensor=sensor,
    )
    depth = float(1 / rng.uniform(1 / split.depth[1], 1 / split.depth[0]))
    occ_depth = depth * float(rng.uniform(*split.occluder_ratio))
    target = world_target(source, height, panorama_width(cfg, depth), rng)
    kind = split.occluders[int(rng.integers(len(split.occluders)))]
    occ = world_occluder(kind, height, panorama_width(cfg, occ_depth), float(rng.uniform(*split.coverage)), rng)
    focus = depth * float(1 + rng.uniform(-split.depth_error, split.depth_error))
    tau = float(rng.uniform(200, 2000)) if rng.random() < split.low_light else 0.0
    if tau:  # drawn last, and only here, so the bright scenes of a seed are what they were before shot noise
        shot = float(rng.uniform(*split.shot_noise_hz))
        cfg = replace(cfg, sensor=replace(sensor, shot_noise_hz=shot))
    if np.ptp(split.aps_exposure_us) or np.ptp(split.aps_noise):  # last again: the rest of a seed stays
        exposure = int(rng.integers(split.aps_exposure_us[0], split.aps_exposure_us[1] + 1))
        noise = float(rng.uniform(*split.aps_noise)) * (LOW_LIGHT_APS_NOISE if tau else 1.0)
        cfg = replace(cfg, aps_exposure_us=exposure, aps_noise=noise)
    scene = SAILayers(target, occ, depth, occ_depth, replace(cfg, depth_range=(depth, depth)))
    return WorldScene(scene, source, focus, tau)
