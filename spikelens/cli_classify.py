"""`spikelens classify`, `live` and `train-classify`: parse, call the classification pipelines, print."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from spikelens.datasets.sensor_size import SensorSize
from spikelens.datasets.streams.sources import SYNTAX as SOURCE_HELP
from spikelens.exits import EXIT_BAD_INPUT, EXIT_INTERRUPTED, refuse_existing
from spikelens.pipelines.extras import require

if TYPE_CHECKING:  # torch: only once a command runs a model
    from spikelens.pipelines.classification import ClassifyResult


def _cmd_classify(args: argparse.Namespace) -> int:
    require("torch", "classify")
    from spikelens.pipelines.classification import classify_path, confusion_png
    from spikelens.progress import cli_job

    with cli_job("classify", "segment", args.quiet or args.json or args.csv) as job:
        result = classify_path(
            args.path, args.model, args.device, job, force=args.force, hop_us=round(args.hop_ms * 1000)
        )
    report = result.score
    if args.confusion and report is not None:
        confusion_png(report, args.confusion)
    if args.csv:
        _print_csv(result)
    elif args.json:
        print(json.dumps(result.as_json()))
    elif result.timeline is not None:
        runs = result.timeline["runs"]
        for r in runs:
            print(
                f"[{r['t0_us'] / 1e6:9.3f}, {r['t1_us'] / 1e6:9.3f}) s  {r['label']:<28} "
                f"{r['confidence']:.2f}  ({r['windows']} windows)"
            )
        print(f"{len(runs)} runs over {len(result.timeline['windows'])} decisions, one every {args.hop_ms:g} ms")
    elif report is not None:
        names = report["classes"]
        for row in report["segments"]:
            mark = "ok " if row["label"] == row["predicted"] else "BAD"
            print(
                f"{mark} [{row['t0'] / 1e6:9.3f}, {row['t1'] / 1e6:9.3f}) s  {names[row['label']]:<28} -> "
                f"{names[row['predicted']]} ({row['probability']:.2f})"
            )
        print(f"accuracy {report['accuracy']:.3f} on {report['n']} segments")
    else:
        print(f"{result.label} ({result.probabilities[result.label]:.2f}) in {result.net_ms:.0f} ms")
    if not (args.json or args.csv):
        _print_energy(result.spikes)
    return 0


def _print_csv(result: ClassifyResult) -> None:
    """The timeline's runs (a bare recording), or the labelled segments, as CSV on stdout."""
    import csv

    w = csv.writer(sys.stdout)
    if result.timeline is not None:
        w.writerow(["t0_us", "t1_us", "label", "class", "confidence", "windows"])
        for r in result.timeline["runs"]:
            w.writerow([r["t0_us"], r["t1_us"], r["label"], r["class"], f"{r['confidence']:.4f}", r["windows"]])
    elif result.score is not None:
        names = result.classes
        w.writerow(["t0_us", "t1_us", "label", "predicted", "probability"])
        for r in result.score["segments"]:
            w.writerow([r["t0"], r["t1"], names[r["label"]], names[r["predicted"]], f"{r['probability']:.4f}"])
    else:
        w.writerow(["label", "class", "probability"])
        w.writerow([result.label, result.cls, f"{result.probabilities[result.label]:.4f}"])


def _print_energy(spikes: dict | None) -> None:
    if not spikes:
        return
    rates = ", ".join(f"{s['name']} {s['rate']:.3f}" for s in spikes["layers"])
    e = spikes["energy"]
    print(f"spike rates per neuron per step: {rates}")
    print(
        f"energy per window (45 nm estimate): {e['snn_uj']:.2f} uJ as run ({e['synops']:,.0f} synaptic ops, "
        f"{e['macs_snn']:,.0f} MACs), {e['ann_uj']:.2f} uJ as its ANN twin ({e['macs_ann']:,.0f} MACs): "
        f"ANN / SNN = {e['ann_over_snn']:.1f}"
    )


def _cmd_live(args: argparse.Namespace) -> int:
    require("torch", "live")
    from spikelens.datasets.streams import StreamError, open_stream
    from spikelens.hybrid_net.registry import load_model
    from spikelens.pipelines.classification import check_sensor
    from spikelens.pipelines.live_classify import classify_stream, with_window

    window_us = None if args.window_ms is None else round(args.window_ms * 1000)  # ms at the edge, us inside
    model = with_window(load_model(args.model, args.device, "classifier", "live"), window_us)
    if next(model.parameters()).device.type == "cpu":
        import torch

        # one window per decision: on 2 cores, two intra-op threads made the bundled model's decision
        # 8.4 ms median and 126 ms at the 95th percentile (the threads spin against the reader); one, 2.9 / 4.0
        torch.set_num_threads(1)
    names = model.config.classes
    stream = open_stream(args.source)  # a source that cannot open is a plain error (status 2)
    realtime = bool(stream.realtime)

    def show(d) -> None:
        k = d.cls
        if args.json:
            row = {
                "t_us": d.t_us,
                "label": names[k],
                "class": k,
                "probability": round(float(d.smoothed[k]), 4),
                # latency is only meaningful where the source paces itself; a file read as fast as it goes
                # has throughput instead (in the summary)
                "latency_ms": round(d.latency_ms, 2) if realtime else None,
                "window_class": d.window_class,
                "net_ms": round(d.net_ms, 2),
                "skipped": d.skipped,
            }
            print(json.dumps(row), flush=True)
        else:
            skipped = f"  (skipped {d.skipped} windows to keep up)" if d.skipped else ""
            latency = f"  latency {d.latency_ms:5.1f} ms" if realtime else ""
            print(
                f"{d.t_us / 1e6:12.3f} s  {names[k]:<28} {d.smoothed[k]:.2f}  net {d.net_ms:5.1f} ms{latency}{skipped}",
                flush=True,
            )

    previous = signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM ends like Ctrl-C: with the summary
    try:
        check_sensor(model, SensorSize.of(stream.meta), args.source, args.force)
        summary = classify_stream(stream, model, round(args.hop_ms * 1000), args.smooth, show)
    except StreamError as exc:
        print(f"spikelens: stream lost: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    finally:
        signal.signal(signal.SIGTERM, previous)
        stream.close()
    end = {
        "end": summary.end_reason,
        "decisions": summary.decisions,
        "skipped": summary.skipped,
        "events": summary.events,
        "wall_s": round(summary.wall_s, 3),
        "events_per_s": round(summary.events_per_s),
        "decisions_per_s": round(summary.decisions_per_s, 2),
    }
    pace = "" if realtime else f", {summary.events_per_s / 1e6:.2f} M ev/s, {summary.decisions_per_s:.1f} decisions/s"
    print(
        json.dumps(end)
        if args.json
        else f"ended: {summary.end_reason}; {summary.decisions} decisions, "
        f"{summary.skipped} windows skipped, {summary.events} events{pace}",
        file=sys.stderr,
        flush=True,
    )
    return EXIT_INTERRUPTED if summary.interrupted else 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _cmd_train_classify(args: argparse.Namespace) -> int:
    require("torch", "train-classify")
    from spikelens.pipelines import classification as cl
    from spikelens.pipelines.training import world
    from spikelens.progress import cli_job

    def jobs(desc: str, unit: str, total: int | None):
        return cli_job(desc, unit, args.quiet or world()[0] > 0, total)

    fields = {"size": args.size, "steps": args.steps, "window_us": round(args.window_ms * 1000)}
    fields |= {"neuron": args.neuron, "attention": args.attention}
    tcfg = cl.TrainConfig(epochs=args.epochs, batch=args.batch, lr=args.lr, seed=args.seed, spike_rate=args.spike_rate)
    report = cl.train_classifier(
        args.data,
        args.output,
        tcfg,
        dataset=args.dataset,
        arch=args.arch,
        model_config=fields,
        init=args.init,
        device=args.device,
        resume=args.resume,
        jobs=jobs,
    )
    if report is None:  # a torchrun rank other than 0
        return 0
    scores = report.scores
    print(f"test split: accuracy {scores['accuracy']:.3f} on {scores['n']} samples")
    _print_energy(scores["spikes"])
    print(f"wrote {args.output}, {args.output.with_suffix('.json')} and {args.output.with_suffix('.png')}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    require("torch", "export")
    require("nir", "export --to nir")
    from spikelens.hybrid_net.nir_export import export_nir
    from spikelens.hybrid_net.registry import load_model

    refuse_existing(args.output, args.overwrite)
    model = load_model(args.model, "cpu", "classifier", "export")
    export_nir(model, args.output, args.dt)
    print(f"wrote {args.output} (NIR graph of {args.model}, dt = {args.dt:g} s)")
    return 0


def add_parsers(sub: argparse._SubParsersAction, formatter: type) -> None:
    cls = sub.add_parser(
        "classify",
        help="classify a recording (each labelled segment when a _labels.csv is beside it) or a dataset's test split",
        formatter_class=formatter,
    )
    cls.add_argument("path", type=Path, help="a recording, or a DVS128 Gesture folder (spikelens simulate gesture)")
    cls.add_argument("--model", default="gesture", help="bundled model name or checkpoint path")
    cls.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda")
    cls.add_argument("--json", action="store_true", help="print the result as one JSON object")
    cls.add_argument("--csv", action="store_true", help="print the timeline's runs (or the segments) as CSV")
    cls.add_argument("--confusion", type=Path, help="also draw the confusion matrix to this .png")
    cls.add_argument("--hop-ms", type=float, default=100.0, help="a long recording's timeline: time between decisions")
    cls.add_argument("--force", action="store_true", help="classify even a recording from another sensor size")
    cls.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    cls.set_defaults(func=_cmd_classify)

    live = sub.add_parser(
        "live", help="classify a live event stream as it arrives, one decision per hop", formatter_class=formatter
    )
    live.add_argument("source", help=SOURCE_HELP)
    live.add_argument("--model", default="gesture", help="bundled model name or checkpoint path")
    live.add_argument("--window-ms", type=float, help="window length (default: the model's)")
    live.add_argument("--hop-ms", type=float, default=100.0, help="time between decisions")
    live.add_argument("--smooth", type=int, default=3, help="decisions average this many windows' probabilities")
    live.add_argument("--device", default="auto", help="auto, cpu or cuda")
    live.add_argument("--json", action="store_true", help="one JSON object per decision")
    live.add_argument("--force", action="store_true", help="classify even a stream from another sensor size")
    live.set_defaults(func=_cmd_live)

    tr = sub.add_parser(
        "train-classify",
        help="train a hybrid SNN-CNN classifier on a dataset folder, score it on its test split",
        formatter_class=formatter,
    )
    tr.add_argument(
        "data", type=Path, nargs="+", help="dataset roots (original layout, or spikelens simulate gesture): splits join"
    )
    tr.add_argument("-o", "--output", type=Path, required=True, help="checkpoint (.pt); report and confusion beside")
    tr.add_argument(
        "--dataset", default="dvsgesture", choices=("dvsgesture", "cifar10dvs", "ncaltech101"), help="dataset layout"
    )
    tr.add_argument("--epochs", type=int, default=20, help="passes over the training segments")
    tr.add_argument("--batch", type=int, default=32, help="windows per step")
    tr.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (one-cycle cosine)")
    tr.add_argument("--size", type=int, default=64, help="input frames are SIZE x SIZE")
    tr.add_argument("--steps", type=int, default=8, help="time bins T per window")
    tr.add_argument("--window-ms", type=float, default=800.0, help="window length")
    tr.add_argument(
        "--arch",
        default="spiking",
        choices=("spiking", "hybrid"),
        help="spiking: all-spiking, exportable to NIR (the bundled gesture's); hybrid: spiking front end, ANN head",
    )
    tr.add_argument(
        "--spike-rate", type=float, default=0.3, help="weight of the mean spike rate in the loss (0: unregularised)"
    )
    tr.add_argument("--neuron", default="plif", choices=("lif", "plif"), help="spiking neuron (PLIF learns its decay)")
    tr.add_argument("--attention", default="none", choices=("none", "tcja", "ma"), help="attention before each neuron")
    tr.add_argument("--device", default="auto", help="auto, cpu or cuda")
    tr.add_argument("--seed", type=int, default=0, help="seed of the weights, sample order and augmentation")
    tr.add_argument("--resume", action="store_true", help="continue an interrupted run from OUTPUT's .state.pt")
    tr.add_argument("--init", help="fine-tune this checkpoint (path or bundled name) instead of a fresh model")
    tr.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    tr.set_defaults(func=_cmd_train_classify)

    ex = sub.add_parser(
        "export",
        help="export an all-spiking classifier as a NIR graph (for neuromorphic hardware and other frameworks)",
        formatter_class=formatter,
    )
    ex.add_argument("model", help="bundled model name (gesture) or checkpoint path")
    ex.add_argument("--to", choices=("nir",), default="nir", help="the format")
    ex.add_argument("-o", "--output", type=Path, required=True, help="the graph file (.nir, HDF5)")
    ex.add_argument(
        "--dt", type=float, default=1e-4, help="seconds per step that sets NIR's time constants (snnTorch's step)"
    )
    ex.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    ex.set_defaults(func=_cmd_export)
