"""Targets and occluders for synthetic-aperture scenes.

Targets are real photographs bundled with scikit-image (offline, installed
with the ``sim`` extra) and procedural textures; each has a stable source name
so a dataset split can keep sources apart. Occluders are soft-edged alpha
masks (fence bars, a diagonal lattice, branches) with a textured shade, drawn
4x oversampled and area-averaged so their edges move smoothly at sub-pixel
speeds.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import cv2
import numpy as np

#: scikit-image sample images that are photographs (or photo-like) and ship with the package.
PHOTOS = (
    "astronaut",
    "brick",
    "camera",
    "chelsea",
    "clock",
    "coffee",
    "coins",
    "grass",
    "gravel",
    "hubble_deep_field",
    "immunohistochemistry",
    "page",
    "retina",
    "rocket",
    "text",
    "motorcycle",
)
PROCEDURAL = ("blobs", "checker", "stripes", "shapes")
OCCLUDERS = ("fence", "lattice", "branches")
OVERSAMPLE = 4


def photos_available() -> bool:
    return importlib.util.find_spec("skimage") is not None


def load_photo(name: str) -> np.ndarray:
    """A grey float32 image in [0, 1] from scikit-image's bundled samples."""
    if name not in PHOTOS:
        raise ValueError(f"unknown photo {name!r}; choose from {PHOTOS}")
    if not photos_available():
        raise ImportError("photographic targets need scikit-image: pip install 'spikelens[sim]'")
    from skimage import data

    img = data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(data, name)()
    img = np.asarray(img, np.float32)
    if img.ndim == 3:
        img = img[..., :3].mean(axis=2)
    return (img - img.min()) / max(float(np.ptp(img)), 1e-6)


def procedural(kind: str, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A float32 texture in [0, 1] with edges at many scales, so refocusing has something to sharpen."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    if kind == "blobs":
        img = np.zeros((height, width), np.float32)
        for sigma in (2.0, 6.0, 16.0):
            img += cv2.GaussianBlur(rng.standard_normal((height, width)).astype(np.float32), (0, 0), sigma) * sigma
    elif kind == "checker":
        period = rng.uniform(12, 40)
        angle = rng.uniform(0, np.pi)
        u = xx * np.cos(angle) + yy * np.sin(angle)
        w = -xx * np.sin(angle) + yy * np.cos(angle)
        img = ((np.floor(u / period) + np.floor(w / period)) % 2).astype(np.float32)
    elif kind == "stripes":
        img = np.zeros((height, width), np.float32)
        for _ in range(3):
            angle, period = rng.uniform(0, np.pi), rng.uniform(8, 60)
            img += np.sin(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period + rng.uniform(0, 6.3))
    elif kind == "shapes":
        img = np.full((height, width), rng.uniform(0.2, 0.8), np.float32)
        for _ in range(int(width * height / 900)):
            centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            axes = (int(rng.integers(4, 30)), int(rng.integers(4, 30)))
            cv2.ellipse(img, centre, axes, rng.uniform(0, 180), 0, 360, float(rng.uniform(0, 1)), -1, cv2.LINE_AA)
    else:
        raise ValueError(f"unknown procedural texture {kind!r}; choose from {PROCEDURAL}")
    return (img - img.min()) / max(float(np.ptp(img)), 1e-6)


def target_image(source: str, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A ``height`` x ``width`` target from ``photo:<name>`` or ``procedural:<kind>:<seed>`` with random
    crop, contrast and brightness (intensity stays inside [0.04, 0.96] so no pixel saturates)."""
    family, _, rest = source.partition(":")
    if family == "photo":
        img = load_photo(rest)
        scale = max(height / img.shape[0], width / img.shape[1]) * rng.uniform(1.0, 1.3)
        img = cv2.resize(img, (max(width, round(img.shape[1] * scale)), max(height, round(img.shape[0] * scale))))
        y0 = int(rng.integers(0, img.shape[0] - height + 1))
        x0 = int(rng.integers(0, img.shape[1] - width + 1))
        img = img[y0 : y0 + height, x0 : x0 + width]
    elif family == "procedural":
        kind, _, seed = rest.partition(":")
        img = procedural(kind, height, width, np.random.default_rng(int(seed or 0)))
    else:
        raise ValueError(f"target source must be photo:<name> or procedural:<kind>:<seed>, got {source!r}")
    lo = rng.uniform(0.04, 0.3)
    hi = rng.uniform(max(lo + 0.3, 0.6), 0.96)
    return (lo + (hi - lo) * img).astype(np.float32)


@dataclass(frozen=True)
class Occluder:
    """A layer in front of the target: ``alpha`` (coverage 0-1) and its own intensity ``shade``."""

    kind: str
    alpha: np.ndarray
    shade: np.ndarray

    @property
    def coverage(self) -> float:
        return float(self.alpha.mean())


def occluder(kind: str, height: int, width: int, coverage: float, rng: np.random.Generator) -> Occluder:
    """A procedural occluder whose mean alpha is close to ``coverage``."""
    if not 0 < coverage < 1:
        raise ValueError(f"coverage must be in (0, 1), got {coverage}")
    s = OVERSAMPLE
    big = np.zeros((height * s, width * s), np.float32)
    if kind == "fence":
        x = rng.uniform(0, 10) * s
        while x < width * s:
            period = rng.uniform(14, 36) * s
            x1 = x + coverage * period
            big[:, int(x) : int(x1)] = 1
            x += period
    elif kind == "lattice":
        bar = 1 - np.sqrt(1 - coverage)  # two crossing sets of bars cover 1 - (1 - bar)^2
        period = rng.uniform(16, 34) * s
        yy, xx = np.mgrid[0 : height * s, 0 : width * s].astype(np.float32)
        for sign in (1, -1):
            u = ((xx + sign * yy) / np.sqrt(2) + rng.uniform(0, period)) % period
            big = np.maximum(big, (u < bar * period).astype(np.float32))
    elif kind == "branches":
        while big.mean() < coverage:
            n = int(rng.integers(4, 9))
            x = np.cumsum(rng.normal(0, 12 * s, n)) + rng.uniform(0, width * s)
            y = np.linspace(-10 * s, (height + 10) * s, n) + rng.normal(0, 8 * s, n)
            pts = np.stack([x, y], 1).astype(np.int32)
            cv2.polylines(big, [pts], False, 1.0, int(rng.integers(3, 10) * s), cv2.LINE_8)
    else:
        raise ValueError(f"unknown occluder {kind!r}; choose from {OCCLUDERS}")
    alpha = cv2.resize(big, (width, height), interpolation=cv2.INTER_AREA)
    grain = cv2.GaussianBlur(rng.standard_normal((height, width)).astype(np.float32), (0, 0), 1.5)
    shade = np.clip(rng.uniform(0.15, 0.75) + 0.08 * grain, 0.02, 0.98).astype(np.float32)
    return Occluder(kind, alpha, shade)
