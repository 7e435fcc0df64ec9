"""The reconstruction networks' inputs, and a compact cache of them drawn from the open-ended world.

NumPy only: preparing data needs no torch. A network sees, for one recording
refocused at one depth, E-SAI's T x 2 x H x W frames (channel 0 = ON) for
its spiking encoder, the two physics channels of
:func:`spikelens.refocus.integrate.physics_channels` (each image normalised
by its own RMS) and, for the networks that read the APS frames too, the
refocused frames' percentiles and mean (:func:`spikelens.refocus.frame_sai.aps_channels`:
absolute brightness, which events do not carry). The cache keeps random
crops of those, with the ground truth, in one HDF5 file: the world is
simulated once, trained on many times.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from spikelens.datasets import atomic_output
from spikelens.datasets.formats.hdf5 import write_h5
from spikelens.datasets.recording import RecordingMeta
from spikelens.datasets.sai_scene import SAIScene
from spikelens.datasets.sensor_size import DAVIS346, SensorSize
from spikelens.datasets.simulator.sai import PixelModel, simulate_scene
from spikelens.datasets.simulator.sensor import simulate
from spikelens.datasets.simulator.world import SPLITS, WorldScene, WorldSplit, bandwidth_limited, draw_scene
from spikelens.pipelines.jobs import Job, ensure
from spikelens.refocus import check_events, pack_frames_esai
from spikelens.refocus.frame_sai import (
    RobustFrameSAI,
    aps_channels,
    aps_images,
    frame_percentiles,
    frame_sai,
    refocus_frames,
    robust_frame_sai,
)
from spikelens.refocus.frames import Roi
from spikelens.refocus.integrate import LOG_MAPS, Integrated, check_log_map, integrate, physics_channels

#: The key of ``NetworkInputs.physics`` that holds :func:`aps_channels` (beside the log maps' names).
APS = "aps"


@dataclass(frozen=True)
class NetworkInputs:
    frames: np.ndarray  # T x 2 x H x W int16, channel 0 = ON (E-SAI's Pos)
    #: log map name -> 2 x H x W float32: visibility-weighted gradient and that log map, unit RMS; and
    #: ``APS`` -> 4 x H x W float32: :func:`aps_channels` (zeros without frames)
    physics: dict[str, np.ndarray]
    integrated: Integrated
    integrate_ms: float  # the training-free reconstruction's own time
    frame_sai: np.ndarray | None = None  # H x W uint8: their classic SAI, the mean (when there are, and asked)
    robust: RobustFrameSAI | None = None  # the occlusion-robust frame SAI of them
    frames_ms: float = 0.0  # their time: refocusing the frames, both frame SAIs and the APS images


def network_inputs(
    events: np.ndarray,
    scene: SAIScene,
    depth: float,
    bins: int,
    roi: Roi | None = None,
    log_maps: Sequence[str] = LOG_MAPS,
    with_aps: bool = True,
) -> NetworkInputs:
    """What every reconstruction network reads, refocused at ``depth``: the physics channels with each of
    ``log_maps`` (one, where the reader is known: the unfolded map costs its fit), and the APS channels
    from ``scene``'s frames (zeros where it has none, or ``with_aps`` is off: then the frames, which cost a
    refocusing of their own, are not touched)."""
    events = check_events(events)
    packed = pack_frames_esai(events, scene, depth, bins, roi, dtype=np.int16)
    t0 = time.perf_counter()
    physics = integrate(events, scene, depth, roi)
    ms = (time.perf_counter() - t0) * 1e3
    channels = {m: physics_channels(physics, m) for m in log_maps}
    refocused = robust = images = classic = None
    t0 = time.perf_counter()
    if with_aps and scene.aps is not None and scene.aps_t_us is not None and len(scene.aps):
        refocused = refocus_frames(scene.aps, scene.aps_t_us, scene.rate(depth), scene.t_ref_us).crop(roi)
        classic = frame_sai(refocused)
        both = frame_percentiles(refocused)
        try:
            robust = robust_frame_sai(refocused, both)
            images = aps_images(refocused, both, classic)
        except ValueError:  # no frame reaches the output grid: for the networks, no frames at all
            pass
    frames_ms = (time.perf_counter() - t0) * 1e3
    channels[APS] = aps_channels(images, physics.log.shape)
    return NetworkInputs(packed, channels, physics, ms, classic, robust, frames_ms)


def aps_to_uint8(channels: np.ndarray) -> np.ndarray:
    """The APS images (:func:`aps_images`, 3 x H x W uint8) back from their channels, as caches keep them."""
    return np.clip(np.rint(channels[:-1] * 255), 0, 255).astype(np.uint8)


def simulate_world(
    split: str, rng: np.random.Generator, sensor: SensorSize = DAVIS346, pixels: PixelModel = simulate
) -> tuple[WorldScene, np.ndarray, RecordingMeta]:
    """One scene of the named split (:data:`~spikelens.datasets.simulator.world.SPLITS`)."""
    if split not in SPLITS:
        raise ValueError(f"unknown world split {split!r}; choose from {sorted(SPLITS)}")
    return simulate_world_split(SPLITS[split], rng, sensor, pixels)


def simulate_world_split(
    split: WorldSplit, rng: np.random.Generator, sensor: SensorSize = DAVIS346, pixels: PixelModel = simulate
) -> tuple[WorldScene, np.ndarray, RecordingMeta]:
    """One scene drawn from ``split``'s ranges, simulated by ``pixels`` (see
    :func:`~spikelens.datasets.simulator.sai.simulate_scene`); its sensor settings go into the metadata."""
    ws = draw_scene(split, rng, *sensor)
    front = (lambda render: bandwidth_limited(render, ws.tau_us)) if ws.tau_us else None
    events, meta = simulate_scene(ws.scene, rng, front, pixels)
    params = ws.scene.config.sensor
    meta.extra.update(
        source=ws.source,
        threshold_on=params.threshold_on,
        threshold_off=params.threshold_off,
        noise_rate_hz=params.noise_rate_hz,
        shot_noise_hz=params.shot_noise_hz,
        tau_us=ws.tau_us,
        focus_depth=ws.focus_depth,
    )
    return ws, events, meta


def prepare_world(
    out: str | Path,
    count: int,
    seed: int = 0,
    split: str = "train",
    crop: int = 128,
    crops_per_scene: int = 2,
    bins: int = 30,
    sensor: SensorSize = DAVIS346,
    job: Job | None = None,
    log_map: str = "unfolded",
) -> int:
    """Simulate ``count`` scenes of ``split`` and cache ``crops_per_scene`` random crops of each (frames as
    uint8 counts, physics as float16, truth and the APS images, ``aps``, as uint8), refocused at the
    scene's autofocus-sized depth error.

    Physics channels (with ``log_map``, kept in the file's attributes) are normalised over the whole image
    before cropping, as at inference. Returns the cache's size in bytes.
    """
    job = ensure(job)
    if count < 1 or crop < 8 or crops_per_scene < 1:
        raise ValueError("need count >= 1, crop >= 8 and crops_per_scene >= 1")
    check_log_map(log_map)
    seeds = np.random.SeedSequence(seed).spawn(count)
    with atomic_output(out, ".h5") as tmp, h5py.File(tmp, "w") as h5:
        h5.attrs["log_map"] = log_map
        for i, s in enumerate(seeds):
            rng = np.random.default_rng(s)
            ws, events, meta = simulate_world(split, rng, sensor)
            scene = SAIScene.from_events(meta, events)
            inputs = network_inputs(events, scene, ws.focus_depth, bins, log_maps=(log_map,))
            truth = scene.ground_truth
            h, w = truth.shape
            c = min(crop, h, w) // 8 * 8
            for j in range(crops_per_scene):
                y0, x0 = int(rng.integers(0, h - c + 1)), int(rng.integers(0, w - c + 1))
                g = h5.create_group(f"{i:05d}_{j}")
                frames = np.minimum(inputs.frames[..., y0 : y0 + c, x0 : x0 + c], 255).astype(np.uint8)
                g.create_dataset("frames", data=frames, compression="gzip", compression_opts=4, chunks=True)
                physics = inputs.physics[log_map][:, y0 : y0 + c, x0 : x0 + c]
                g.create_dataset("physics", data=physics.astype(np.float16))
                g.create_dataset("truth", data=truth[y0 : y0 + c, x0 : x0 + c])
                aps = inputs.physics[APS]
                if aps[-1].any():
                    g.create_dataset("aps", data=aps_to_uint8(aps[:, y0 : y0 + c, x0 : x0 + c]))
                g.attrs["source"] = ws.source
            job.report(i + 1, count, f"scene {i + 1}")
    return Path(out).stat().st_size


def write_world_recordings(
    out_dir: str | Path,
    count: int,
    seed: int = 0,
    split: str = "cross",
    sensor: SensorSize = DAVIS346,
    job: Job | None = None,
    pixels: PixelModel = simulate,
) -> list[Path]:
    """``count`` whole recordings of ``split`` as SpikeLens HDF5 (with the E-SAI metadata): an evaluation
    set for :func:`spikelens.pipelines.reconstruction.evaluate`. ``pixels`` is the event model (see
    :func:`~spikelens.datasets.simulator.sai.simulate_scene`): a seed gives the same scenes whichever it is."""
    job = ensure(job)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, s in enumerate(np.random.SeedSequence(seed).spawn(count)):
        _, events, meta = simulate_world(split, np.random.default_rng(s), sensor, pixels)
        path = out / f"{split}_{i:04d}.h5"
        with atomic_output(path, ".h5") as tmp:
            write_h5(tmp, events, meta)
        paths.append(path)
        job.report(i + 1, count, path.name)
    return paths
