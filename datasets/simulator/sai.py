"""Synthetic-aperture scenes: a camera sliding along +x past an occluder in front of a target.

A point at depth d moves across the sensor at -fx*v/d px/s, so the frame at
time t shows each plane's panorama shifted by fx*v*(t - t_ref)/d pixels
(bilinear in x). Refocusing with x' = x + (t - t_ref)*fx*v/d therefore lines
the target up at its t_ref position, which is exactly the ground truth frame
``occ_free_aps`` rendered without the occluder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from spikelens.datasets.recording import RecordingMeta
from spikelens.datasets.sai_scene import ESAI_FX, ESAI_V, shift_rate
from spikelens.datasets.sensor_size import DAVIS346
from spikelens.datasets.simulator.sensor import SensorParams, frame_times, simulate
from spikelens.datasets.simulator.textures import OCCLUDERS, Occluder, occluder, target_image

Render = Callable[[int], np.ndarray]


@dataclass(frozen=True)
class SAIConfig:
    """Camera and scene ranges; each sample draws depth, occluder and coverage inside them."""

    width: int = DAVIS346.width
    height: int = DAVIS346.height
    fx: float = ESAI_FX
    v: float = ESAI_V
    duration_us: int = 1_000_000
    depth_range: tuple[float, float] = (0.5, 2.0)
    #: occluder depth as a fraction of the target's
    occluder_ratio: tuple[float, float] = (0.3, 0.6)
    coverage_range: tuple[float, float] = (0.3, 0.7)
    #: the fastest plane (the occluder) moves at most this many pixels between rendered frames
    max_step_px: float = 0.25
    aps_fps: float = 20.0
    #: each APS frame integrates the scene this long while the camera slides (motion blur, as a DAVIS's)
    aps_exposure_us: int = 10_000
    #: APS read and shot noise: standard deviation in [0, 1] intensity (a DAVIS346 frame: about 1 %)
    aps_noise: float = 0.01
    sensor: SensorParams = field(default_factory=SensorParams)

    def __post_init__(self) -> None:
        if self.width < 8 or self.height < 8:
            raise ValueError(f"sensor must be at least 8x8 pixels, got {self.width}x{self.height}")
        if self.duration_us < 1000 or self.fx <= 0 or self.v <= 0 or self.aps_fps <= 0 or self.max_step_px <= 0:
            raise ValueError("duration must be >= 1 ms and fx, v, aps_fps, max_step_px positive")
        if self.aps_exposure_us < 0 or self.aps_noise < 0:
            raise ValueError("the APS exposure and noise must be >= 0")
        lo, hi = self.depth_range
        r_lo, r_hi = self.occluder_ratio
        c_lo, c_hi = self.coverage_range
        if not (0 < lo <= hi and 0 < r_lo <= r_hi < 1 and 0 < c_lo <= c_hi < 1):
            raise ValueError("need 0 < near <= far depths, occluder ratios in (0, 1), coverage in (0, 1)")


def _shifted(panorama: np.ndarray, width: int, shift: float) -> np.ndarray:
    """Columns ``shift .. shift + width`` of the panorama, linearly interpolated."""
    i = int(np.floor(shift))
    f = np.float32(shift - i)
    a = panorama[:, i : i + width]
    b = panorama[:, i + 1 : i + 1 + width]
    return a + f * (b - a)


@dataclass(frozen=True)
class SAILayers:
    """What the simulator renders: the target and occluder panoramas at their depths (the recording's
    :class:`~spikelens.datasets.sai_scene.SAIScene` is read back from the metadata it writes)."""

    target: np.ndarray  # H x (W + travel) panorama
    occluder: Occluder  # H x (W + travel) layer
    depth: float
    occluder_depth: float
    config: SAIConfig

    @property
    def t_ref_us(self) -> int:
        return self.config.duration_us // 2

    def rate(self, depth: float) -> float:
        """Image speed (px/s) of a plane at ``depth``."""
        return shift_rate(self.config.fx, self.config.v, depth)

    def _offset(self, panorama: np.ndarray, depth: float, t_us: int) -> float:
        centre = (panorama.shape[1] - 1 - self.config.width) / 2
        return centre + self.rate(depth) * (t_us - self.t_ref_us) * 1e-6

    def render(self, t_us: int, occluded: bool = True) -> np.ndarray:
        w = self.config.width
        img = _shifted(self.target, w, self._offset(self.target, self.depth, t_us))
        if not occluded:
            return img
        off = self._offset(self.occluder.alpha, self.occluder_depth, t_us)
        alpha = _shifted(self.occluder.alpha, w, off)
        return img + alpha * (_shifted(self.occluder.shade, w, off) - img)

    def times_us(self) -> np.ndarray:
        step = max(1, int(self.config.max_step_px / self.rate(self.occluder_depth) * 1e6))
        return frame_times(self.config.duration_us, step)


def panorama_width(cfg: SAIConfig, depth: float) -> int:
    """Columns a plane at ``depth`` needs so the sensor never runs off it during the recording."""
    return cfg.width + int(np.ceil(cfg.fx * cfg.v / depth * cfg.duration_us * 1e-6)) + 4


def make_scene(source: str, rng: np.random.Generator, config: SAIConfig | None = None) -> SAILayers:
    """Draw depths, coverage and occluder kind for ``source`` (see :func:`.textures.target_image`)."""
    cfg = config or SAIConfig()
    lo, hi = cfg.depth_range
    depth = float(1 / rng.uniform(1 / hi, 1 / lo))  # uniform in disparity, like a depth sweep
    occ_depth = depth * float(rng.uniform(*cfg.occluder_ratio))
    target = target_image(source, cfg.height, panorama_width(cfg, depth), rng)
    kind = OCCLUDERS[int(rng.integers(len(OCCLUDERS)))]
    occ = occluder(kind, cfg.height, panorama_width(cfg, occ_depth), float(rng.uniform(*cfg.coverage_range)), rng)
    return SAILayers(target, occ, depth, occ_depth, cfg)


def to_uint8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)


def aps_frames(scene: SAILayers, times_us: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """N x H x W uint8 frames centred on ``times_us``: each the mean of the scene over the exposure (the
    occluder, the nearest plane, sliding at most half a pixel between samples), plus Gaussian noise, in 8
    bits. Ideal frames would make frame-based SAI look better than any real camera allows.

    ``rng`` is the frames' own (simulate_scene seeds it from the recording), so adding frames does not
    shift the caller's random stream.
    """
    cfg = scene.config
    blur_px = cfg.fx * cfg.v / scene.occluder_depth * cfg.aps_exposure_us / 1e6
    n = max(1, int(np.ceil(blur_px / 0.5)) + 1)
    frames = []
    for t in np.asarray(times_us, np.int64):
        subs = np.clip(t + np.linspace(-0.5, 0.5, n) * cfg.aps_exposure_us, 0, cfg.duration_us - 1)
        img = np.mean([scene.render(int(u)) for u in subs], axis=0)
        frames.append(to_uint8(img + rng.normal(0.0, cfg.aps_noise, img.shape)))
    return np.stack(frames)


#: A pixel model: events of ``render`` sampled at the times given, for a sensor's constants, from ``rng``.
PixelModel = Callable[[Render, np.ndarray, SensorParams, np.random.Generator], np.ndarray]


def simulate_scene(
    scene: SAILayers,
    rng: np.random.Generator,
    front_end: Callable[[Render], Render] | None = None,
    pixels: PixelModel = simulate,
) -> tuple[np.ndarray, RecordingMeta]:
    """Events plus E-SAI metadata: fx, v, depth, t_ref, the occlusion-free target and occluded APS frames.

    ``front_end`` wraps the renderer the pixels see (a low-light bandwidth limit, say); the ground truth
    stays ideal, and the APS frames are exposed as a camera's are (:func:`aps_frames`). ``pixels`` is the
    event model (ours; another simulator's, to judge a model on events nobody here generated).
    """
    cfg = scene.config
    render = scene.render if front_end is None else front_end(scene.render)
    events = pixels(render, scene.times_us(), cfg.sensor, rng)
    aps_t = np.arange(0, cfg.duration_us, int(1e6 / cfg.aps_fps), dtype=np.int64)
    extra = {
        "fx": cfg.fx,
        "v": cfg.v,
        "depth": scene.depth,
        "t_ref_us": scene.t_ref_us,
        "occ_free_aps": to_uint8(scene.render(scene.t_ref_us, occluded=False)),
        "occ_aps": aps_frames(scene, aps_t, np.random.default_rng([events.size, scene.t_ref_us])),
        "occ_aps_ts_us": aps_t,
        "occluder_depth": scene.occluder_depth,
        "occluder_kind": scene.occluder.kind,
        "occluder_coverage": round(scene.occluder.coverage, 4),
    }
    return events, RecordingMeta(None, "simulated-sai", cfg.width, cfg.height, "DAVIS346 (simulated)", extra)
