"""Attention x neuron for the all-spiking gesture classifier: the same data, the same epochs, one table.

    python benchmarks/snn_table.py TRAIN [TRAIN ...] --unseen FOLDER [--epochs 6] [--device cpu]

Each of none / TCJA / MA x LIF / PLIF is trained with ``train_classifier`` on the train splits of the
TRAIN folders (``spikelens simulate gesture``), seed 0, the same spike-rate weight, and scored on their
test splits (held-out subjects) and on every gesture of ``--unseen`` (subjects from a seed the training
never saw). Columns: accuracy on both, spikes per window (all spiking layers), the energy estimate per
window as run and as the ANN twin (:mod:`spikelens.hybrid_net.energy`), and milliseconds per decision (one
window, batch 1, median of 30 after 5 warm-ups) on this machine's CPU threads.

The seed papers' claims, for comparison (their networks, data and budgets, not ours): MA-SNN (Yao et
al., TPAMI 2023) reports 84.9 % fewer spikes and 3.4x better energy efficiency on DVS128 Gesture from
its attention; TCJA-SNN (Zhu et al., 2022) reports state-of-the-art accuracy on DVS128 Gesture among
the SNNs it compares.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from spikelens.datasets import SensorSize
from spikelens.datasets.collections import DVSGesture
from spikelens.hybrid_net.registry import load_model
from spikelens.pipelines import classification as cl


def ms_per_decision(model: torch.nn.Module, frames: np.ndarray) -> float:
    x = torch.from_numpy(frames[:1]).transpose(0, 1)
    times = []
    with torch.no_grad():
        for i in range(35):
            t0 = time.perf_counter()
            model(x)
            if i >= 5:
                times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("train", nargs="+", type=Path)
    ap.add_argument("--unseen", type=Path, required=True, help="a gesture folder from a seed never trained on")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--spike-rate", type=float, default=0.3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--only", nargs="*", help="variants as ATTENTION-NEURON, e.g. none-plif ma-lif")
    ap.add_argument(
        "--models", type=Path, help="keep the trained variants here; ones already there are scored, not retrained"
    )
    args = ap.parse_args()
    unseen = DVSGesture(args.unseen, train=True)
    sensor = SensorSize(*unseen.sensor_size[:2])
    segs = cl.dataset_segments(unseen) + cl.dataset_segments(DVSGesture(args.unseen, train=False))
    unseen_segs = cl.SegmentSet(tuple(segs), sensor)
    variants = [(a, n) for a in ("none", "tcja", "ma") for n in ("lif", "plif")]
    if args.only:
        variants = [v for v in variants if f"{v[0]}-{v[1]}" in args.only]
    print(
        f"{len(args.train)} training folder(s), {args.epochs} epochs, spike-rate weight {args.spike_rate:g}, "
        f"unseen: {args.unseen.name} ({len(unseen_segs)} gestures); {torch.get_num_threads()} CPU threads\n"
    )
    head = (
        f"{'attention':<10}{'neuron':<8}{'held-out':>9}{'unseen':>8}{'spikes/win':>12}"
        f"{'SNN uJ':>9}{'ANN uJ':>9}{'ANN/SNN':>9}{'ms/dec':>8}{'train s':>9}"
    )
    print(head)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.models or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for attention, neuron in variants:
            out = folder / f"{attention}-{neuron}.pt"
            t0 = time.perf_counter()
            if out.is_file() and out.with_suffix(".json").is_file():
                report = json.loads(out.with_suffix(".json").read_text())
                train_s = float("nan")
            else:
                tcfg = cl.TrainConfig(epochs=args.epochs, seed=0, spike_rate=args.spike_rate)
                report = cl.train_classifier(
                    args.train,
                    out,
                    tcfg,
                    arch="spiking",
                    model_config={"neuron": neuron, "attention": attention},
                    device=args.device,
                ).scores
                train_s = time.perf_counter() - t0
            net = load_model(out, "cpu")
            far = cl.evaluate(net, unseen_segs)
            e = report["spikes"]["energy"]
            spikes = sum(layer["spikes_per_window"] for layer in report["spikes"]["layers"])
            rng = np.random.default_rng(0)
            frames = np.stack([cl.augment_window(unseen_segs.segments[0], net.config, sensor, rng, augment=False)])
            print(
                f"{attention:<10}{neuron:<8}{report['accuracy']:>9.3f}{far['accuracy']:>8.3f}{spikes:>12,.0f}"
                f"{e['snn_uj']:>9.2f}{e['ann_uj']:>9.2f}{e['ann_over_snn']:>9.1f}"
                f"{ms_per_decision(net, frames):>8.1f}{train_s:>9.0f}",
                flush=True,
            )
    print("\nenergy: 45 nm constants (MAC 4.6 pJ, AC 0.9 pJ; Horowitz, ISSCC 2014); ANN twin = the same layers")
    print("run once on the window's summed frame. accuracy: majority of each gesture's windows.", file=sys.stdout)


if __name__ == "__main__":
    main()
