"""Image files the CLI and GUI write (refocused images, exported frames)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spikelens.datasets.atomic import atomic_output


def check_suffix(path: str | Path, suffix: str, what: str) -> Path:
    """Refuse an output whose name promises another format (``x.h5`` for an npz, ``y.jpg`` for a PNG)."""
    path = Path(path)
    if path.suffix.lower() != suffix:
        raise ValueError(f"{path}: {what} is written as {suffix}; name the file {path.stem}{suffix}")
    return path


def write_png(image: np.ndarray, path: str | Path) -> None:
    """Write a uint8 H x W (grey) or H x W x 3 (RGB) image atomically, to a file named .png."""
    import cv2

    path = check_suffix(path, ".png", "the image")

    img = np.asarray(image)
    if img.dtype != np.uint8 or img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] != 3):
        raise ValueError(f"PNG needs uint8 H x W or H x W x 3, got {img.dtype} {img.shape}")
    ok, data = cv2.imencode(".png", img[..., ::-1] if img.ndim == 3 else img)  # OpenCV wants BGR
    if not ok:
        raise OSError(f"{path}: PNG encoding failed")
    with atomic_output(path, ".png") as tmp:
        Path(tmp).write_bytes(data.tobytes())
