"""Reconstruct the occluded scene from refocused events: inputs, metrics, inference, evaluation, training.

Inputs are E-SAI recordings (.npy, or simulated .h5 with SAI metadata). Each
is refocused and packed exactly as E-SAI does (:func:`pack_frames_esai`) into
T x 2 x H x W frames with channel 0 = ON (E-SAI's ``Pos``), and paired with
its occlusion-free APS frame scaled to [-1, 1] (the networks end in tanh).
"""

from spikelens.pipelines.reconstruction.evaluation import evaluate, score_model, score_sample, write_report
from spikelens.pipelines.reconstruction.inference import (
    DEFAULT_MODEL,
    METHODS,
    PRECISIONS,
    Reconstruction,
    auto_choice,
    cpu_has_bf16,
    native_bf16,
    output_to_uint8,
    reconstruct,
    run_model,
    uses_physics,
)
from spikelens.pipelines.reconstruction.inputs import Sample, load_sample
from spikelens.pipelines.reconstruction.metrics import esai_ssim, oracle_fit, psnr, ssim, ssim_torch
from spikelens.pipelines.reconstruction.train import (
    DEFAULT_ARCH,
    DEFAULT_CONFIG,
    FrameOptions,
    PreparedPairs,
    TrainConfig,
    build_model,
    prepare,
    recordings,
    train,
    train_reconstruction,
)
from spikelens.refocus.frame_sai import frame_sai_image

__all__ = [
    "DEFAULT_ARCH",
    "DEFAULT_CONFIG",
    "DEFAULT_MODEL",
    "METHODS",
    "PRECISIONS",
    "FrameOptions",
    "PreparedPairs",
    "Reconstruction",
    "Sample",
    "TrainConfig",
    "auto_choice",
    "build_model",
    "cpu_has_bf16",
    "esai_ssim",
    "evaluate",
    "frame_sai_image",
    "load_sample",
    "native_bf16",
    "oracle_fit",
    "output_to_uint8",
    "prepare",
    "psnr",
    "reconstruct",
    "recordings",
    "run_model",
    "score_model",
    "score_sample",
    "ssim",
    "ssim_torch",
    "train",
    "train_reconstruction",
    "uses_physics",
    "write_report",
]
