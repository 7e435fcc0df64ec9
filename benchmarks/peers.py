"""Peer methods the benchmarks compare against, kept out of the package on purpose."""

from __future__ import annotations

import numpy as np

from spikelens.refocus import SAIScene, focal_stack_images, sharpness


def contrast_maximum(ev: np.ndarray, scene: SAIScene) -> float:
    """Classic autofocus (ours before see-through): the global variance maximum over 32 + 32 depths, 0.1-5 m."""
    k, t_ref, sensor = scene.fx * scene.v, scene.t_ref_us, scene.sensor
    inv = np.linspace(1 / 5.0, 1 / 0.1, 32)
    best = inv[np.argmax(sharpness(focal_stack_images(ev, k * inv, t_ref, sensor)))]
    fine = np.linspace(best - (inv[1] - inv[0]), best + (inv[1] - inv[0]), 32)
    return float(1 / fine[np.argmax(sharpness(focal_stack_images(ev, k * fine, t_ref, sensor)))])
