"""The `spikelens` command line. Each subcommand parses, calls one pipeline, and prints; no logic lives here."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

from spikelens import __version__, cli_classify
from spikelens.datasets.streams.sources import SYNTAX as SOURCE_HELP
from spikelens.exits import EXIT_BAD_INPUT, refuse_existing
from spikelens.pipelines.extras import require


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows every option's default (where it has one, once) and keeps descriptions as written."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default is None or action.default is False or "default" in text:
            return text  # no default to show, or the help already says it
        return super()._get_help_string(action)


def _print_fields(fields: dict[str, object]) -> None:
    width = max(len(k) for k in fields) + 2
    for key, value in fields.items():
        print(f"{key + ':':<{width}}{value}")


def _cmd_info(args: argparse.Namespace) -> int:
    from spikelens.datasets.bundled import bundled_sample
    from spikelens.pipelines.inspect import JSON_KEYS, describe_source

    source = args.source or str(bundled_sample())
    info = describe_source(source, probe_s=args.probe_s)
    if args.json:
        keys = [*JSON_KEYS, *(k for k in ("rate_hz", "probe_s") if k in info)]
        if args.meta:
            keys += ["camera", "extra"]
        print(json.dumps({k: info[k] for k in keys}, indent=2))
        return 0
    fields: dict[str, object] = {"source": source}
    fields.update({k: v for k, v in info.items() if k != "extra"})
    fields.update(info["extra"])
    _print_fields(fields)
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from spikelens.pipelines.convert import convert
    from spikelens.progress import cli_job

    refuse_existing(args.output, args.overwrite)
    with cli_job("convert", "ev", args.quiet) as job:
        n = convert(args.input, args.output, job)
    if not args.quiet:
        print(f"wrote {n} events to {args.output}")
    return 0


def _cmd_record(args: argparse.Namespace) -> int:
    from spikelens.datasets.streams import open_stream
    from spikelens.pipelines.record import record
    from spikelens.progress import cli_job

    refuse_existing(args.output, args.overwrite)
    with open_stream(args.source) as stream, cli_job("record", "ev", args.quiet, args.events) as job:
        stats = record(stream, args.output, seconds=args.seconds, events=args.events, job=job)
    span = 0 if stats.t_first_us is None else (stats.t_last_us - stats.t_first_us) / 1e6
    print(f"wrote {stats.events} events ({span:.3f} s of stream) to {stats.path}: {stats.reason}")
    if stats.error:
        print(f"spikelens: error: {stats.error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


def _cmd_refocus(args: argparse.Namespace) -> int:
    from spikelens.pipelines.images import check_suffix
    from spikelens.pipelines.sai import refocus_recording, save_npz, save_png

    check_suffix(args.output, ".npz", "the refocused frames")
    if args.png:
        check_suffix(args.png, ".png", "the refocused image")
    result = refocus_recording(
        args.input,
        args.depth,
        bins=args.bins,
        roi=args.roi,
        esai_compat=args.esai_compat,
        fx=args.fx,
        v=args.v,
        t_ref_us=args.t_ref_us,
        **({"depth_range": tuple(args.depth_range)} if args.depth_range else {}),
        with_image=args.png is not None,
    )
    save_npz(result, args.output)
    if args.png:
        save_png(result.image, args.png)
    found = result.autofocus
    how = "given"
    if found is not None:
        how = "autofocus"
        if found.occluder_depth is not None:
            how += f", behind an occluder at {found.occluder_depth:.4f} m"
    print(f"depth {result.depth:.4f} m ({how}), {result.frames.shape[0]} bins, wrote {args.output}")
    return 0


def _cmd_reconstruct(args: argparse.Namespace) -> int:
    require("torch", "reconstruct")
    import numpy as np

    from spikelens.pipelines.images import check_suffix, write_png
    from spikelens.pipelines.reconstruction import reconstruct

    check_suffix(args.output, ".png", "the reconstructed image")
    if args.raw:
        check_suffix(args.raw, ".npy", "the raw network output")
    r = reconstruct(
        args.input,
        args.depth,
        args.auto,
        args.model,
        args.device,
        args.roi,
        args.bins,
        args.method,
        args.precision,
        frames=not args.no_frames,
    )
    write_png(r.image, args.output)
    if args.raw:
        from spikelens.datasets import atomic_output

        with atomic_output(args.raw, ".npy") as tmp, open(tmp, "wb") as f:
            np.save(f, r.raw.astype(np.float32))
    if args.json:
        out = {"depth": r.depth, "model": r.model, "device": r.device, "net_ms": r.net_ms, "total_ms": r.total_ms}
        out["frames_used"] = r.frames_used
        if r.psnr is not None:
            out.update(psnr=r.psnr, ssim=r.ssim, baseline_psnr=r.baseline_psnr)
        print(json.dumps(out))
    else:
        score = "" if r.psnr is None else f", PSNR {r.psnr:.2f} dB (accumulation {r.baseline_psnr:.2f} dB)"
        where = "" if r.model in ("integrate", "frames") else f" on {r.device}"
        where += " with the APS frames" if r.frames_used else ""
        print(f"depth {r.depth:.4f} m, {r.model}{where} in {r.net_ms:.0f} ms{score}, wrote {args.output}")
    return 0


def _cmd_train_reconstruct(args: argparse.Namespace) -> int:
    require("torch", "train-reconstruct")
    from spikelens.pipelines import reconstruction as rc
    from spikelens.progress import cli_job

    config = dict(rc.DEFAULT_CONFIG) if args.model == rc.DEFAULT_ARCH else {}
    if args.stride:
        config["stride"] = args.stride
    if args.log_map:
        config["log_map"] = args.log_map
    if args.no_physics:
        config["physics"] = False
    elif args.model == "hybridnet":
        config["physics"] = True
        config.setdefault("log_map", "unfolded")
    cfg = rc.TrainConfig(
        epochs=args.epochs, batch=args.batch, crop=args.crop, fit_weight=args.fit_weight, seed=args.seed
    )

    def jobs(desc: str, unit: str, total: int | None):
        return cli_job(desc, unit, args.quiet or _rank() > 0, total)

    report = rc.train_reconstruction(
        args.data,
        args.output,
        cfg,
        test=args.test or (),
        arch=args.model,
        model_config=config,
        init=args.init,
        log_map=args.log_map if args.init else None,
        frames=rc.FrameOptions(**{f.name: getattr(args, f.name) for f in dataclasses.fields(rc.FrameOptions)}),
        device=args.device,
        bins=args.bins,
        resume=args.resume,
        jobs=jobs,
    )
    if report is None:  # a torchrun rank other than 0
        return 0
    print(_score_line(f"test set ({report.scores['n']} files)", report.scores["mean"]))
    print(f"wrote {args.output} and {args.output.with_suffix('.json')}")
    return 0


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def _score_line(what: str, m: dict) -> str:
    """The model's mean scores beside every baseline's, in one line."""
    parts = [f"{what}:"]
    if "psnr" in m:
        parts.append(
            f"model {m['psnr']:.2f} dB / SSIM {m['ssim']:.3f} "
            f"({m.get('gain_db', 0):+.2f} dB over oracle-fit accumulation; oracle fit {m['oracle_model_psnr']:.2f}"
            + (f"; without the frames {m['events_only_psnr']:.2f} dB" if "events_only_psnr" in m else "")
            + ");"
        )
    parts.append(f"accumulation {m['baseline_psnr']:.2f} dB (oracle fit {m['oracle_accumulation_psnr']:.2f}),")
    parts.append(f"integrate {m['integrate_psnr']:.2f} dB (oracle fit {m['oracle_integrate_psnr']:.2f})")
    if "frame_sai_psnr" in m:
        parts[-1] += f", frame SAI {m['frame_sai_psnr']:.2f} dB (occlusion-robust {m['frame_sai_robust_psnr']:.2f})"
    esai = "; E-SAI's scoring (centre 256 x 256, SSIM window 16):"
    if "esai_psnr" in m:  # the model's, or (baselines only) the accumulation's
        parts[-1] += f"{esai} model {m['esai_psnr']:.2f} dB / {m['esai_ssim']:.3f}"
    elif "baseline_esai_psnr" in m:
        parts[-1] += f"{esai} accumulation {m['baseline_esai_psnr']:.2f} dB / {m['baseline_esai_ssim']:.3f}"
    return " ".join(parts)


def _cmd_evaluate_reconstruct(args: argparse.Namespace) -> int:
    require("torch", "evaluate-reconstruct")
    from spikelens.pipelines import reconstruction as rc
    from spikelens.progress import cli_job

    model = None if args.model == "none" else args.model
    if args.robustness:
        from spikelens.pipelines.robustness import format_table, robustness

        with cli_job("robustness", "scene", args.quiet) as job:
            rows = robustness(model, args.robustness, job=job)
        print(format_table(rows))
        return 0
    files = rc.recordings(args.inputs, "test")
    if not files:
        raise ValueError(f"no recordings (.npy, .h5) in {', '.join(map(str, args.inputs))}")
    with cli_job("evaluate", "file", args.quiet, len(files)) as job:
        report = rc.evaluate(model, files, job, device=args.device, bins=args.bins)
    if args.output:
        rc.write_report(report, args.output)
    if args.json:
        print(json.dumps(report["mean"]))
    else:
        print(_score_line(f"{report['n']} files", report["mean"]))
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    from spikelens.pipelines import simulate as sim
    from spikelens.progress import cli_job

    refuse_existing(args.output, args.overwrite)
    unit = {"video": "frame", "sai": "sample", "gesture": "recording", "world": "scene"}[args.kind]
    total = None if args.kind == "video" else args.count
    with cli_job(f"simulate {args.kind}", unit, args.quiet, total) as job:
        if args.kind == "video":
            params = sim.SensorParams(
                threshold_on=args.threshold,
                threshold_off=args.threshold,
                noise_rate_hz=args.noise_hz,
                shot_noise_hz=args.shot_noise_hz,
            )
            size = tuple(args.size) if args.size else None
            n = sim.simulate_video(args.input, args.output, params, args.seed, args.fps, size, job=job)
            what = f"{n} events to {args.output}"
        elif args.kind == "sai":
            if not sim.photos_available() and not args.quiet:
                print("note: scikit-image is not installed, so every target is procedural", file=sys.stderr)
            w, h = args.size
            cfg = sim.SAIConfig(width=w, height=h, duration_us=round(args.duration_s * 1e6))
            formats = ("npy", "h5") if args.format == "both" else (args.format,)
            if not args.quiet:
                each = sim.estimate_sai_bytes(cfg, formats)
                print(
                    f"simulate sai: {args.count} scenes as {' and '.join(formats)}, about {each / 1e6:.0f} MB each "
                    f"({each * args.count / 1e9:.2f} GB in all)",
                    file=sys.stderr,
                )
            m = sim.write_sai_dataset(args.output, args.count, args.seed, cfg, formats, job=job)
            splits = [sum(s["split"] == k for s in m["samples"]) for k in sim.SPLITS]
            what = f"{len(m['samples'])} SAI samples to {args.output} (" + ", ".join(
                f"{k} {n}" for k, n in zip(sim.SPLITS, splits, strict=True)
            )
            what += f"; split rule: {sim.SPLIT_RULE})"
        elif args.kind == "world":
            from spikelens.pipelines import sai_world

            if args.recordings:
                paths = sai_world.write_world_recordings(args.output, args.count, args.seed, args.split, job=job)
                what = f"{len(paths)} {args.split} recordings to {args.output}"
            else:
                size = sai_world.prepare_world(
                    args.output, args.count, args.seed, args.split, args.crop, job=job, log_map=args.log_map
                )
                what = f"{args.count} {args.split} scenes ({size / 1e6:.0f} MB of crops) to {args.output}"
        else:
            seg = tuple(args.segment_s)
            m = sim.write_gesture_dataset(args.output, args.count, args.seed, seg, job=job)
            what = f"{len(m['recordings'])} gesture recordings to {Path(args.output) / 'DvsGesture'}"
    if not args.quiet:
        print(f"wrote {what}")
    return 0


def _has_display() -> bool:
    if sys.platform != "linux" or os.environ.get("QT_QPA_PLATFORM"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _cmd_gui(args: argparse.Namespace) -> int:
    if not _has_display():
        raise ValueError(
            "no display found (DISPLAY and WAYLAND_DISPLAY are unset): run it on a desktop, "
            "or under a virtual one with `xvfb-run -a spikelens gui`"
        )
    try:
        from spikelens.app import run
    except ImportError as exc:
        raise ValueError(f"the GUI needs PyQt6 and pyqtgraph: pip install 'spikelens[gui]' ({exc})") from exc
    return run(args.file)


def _add_simulate(sub: argparse._SubParsersAction) -> None:
    simp = sub.add_parser(
        "simulate", help="simulate an event camera: a video, E-SAI scenes or DVS gestures", formatter_class=_Formatter
    )
    kinds = simp.add_subparsers(dest="kind", required=True, metavar="{video,sai,gesture,world}")
    vid = kinds.add_parser("video", help="events of a video file (OpenCV) written to HDF5", formatter_class=_Formatter)
    vid.add_argument("input", type=Path, help="a video OpenCV can read (.mp4, .avi, ...)")
    vid.add_argument("output", type=Path, help="output .h5")
    vid.add_argument("--fps", type=float, help="frame rate, when the container does not state it")
    vid.add_argument("--size", type=int, nargs=2, metavar=("W", "H"), help="resize frames to W x H first")
    vid.add_argument("--threshold", type=float, default=0.2, help="contrast threshold, log units")
    vid.add_argument("--noise-hz", type=float, default=0.1, help="background activity per pixel")
    vid.add_argument(
        "--shot-noise-hz", type=float, default=0.0, help="low-light shot noise of a black pixel (a quarter at white)"
    )
    sai = kinds.add_parser(
        "sai", help="an E-SAI dataset folder: train/val/test, source images disjoint", formatter_class=_Formatter
    )
    sai.add_argument("output", type=Path, help="dataset folder (train/, val/, test/, manifest.json)")
    sai.add_argument("--count", type=int, default=10, help="samples (70/15/15 %%, each split >= 1 from 3 up)")
    sai.add_argument(
        "--format",
        choices=("h5", "npy", "both"),
        default="h5",
        help="h5: SpikeLens HDF5 (compressed, about 4 bytes an event); npy: E-SAI's own layout (13 bytes)",
    )
    sai.add_argument("--size", type=int, nargs=2, default=(346, 260), metavar=("W", "H"), help="sensor size")
    sai.add_argument("--duration-s", type=float, default=1.0, help="camera sweep length in seconds")
    ges = kinds.add_parser(
        "gesture", help="a DVS128 Gesture folder (AEDAT 3.1, labels, trials)", formatter_class=_Formatter
    )
    ges.add_argument("output", type=Path, help="dataset folder (DvsGesture/ is created inside)")
    ges.add_argument("--count", type=int, default=10, help="recordings, one subject each (20 %% go to test)")
    ges.add_argument(
        "--segment-s", type=float, nargs=2, default=(1.5, 3.0), metavar=("MIN", "MAX"), help="gesture length, s"
    )
    world = kinds.add_parser(
        "world",
        help="the open-ended training world: a cache of network-input crops, or whole recordings",
        formatter_class=_Formatter,
    )
    world.add_argument("output", type=Path, help="the cache (.h5), or a folder with --recordings")
    world.add_argument("--count", type=int, default=100, help="scenes")
    world.add_argument(
        "--split",
        choices=("train", "cross", "fences", "fences-hard"),
        default="train",
        help="train; the held-out cross-domain world; held-out photographs behind slanted fences (nominal "
        "sensor, or a lower threshold, 10x the noise and denser fences)",
    )
    world.add_argument("--crop", type=int, default=128, help="crop size of the cache, px")
    world.add_argument("--recordings", action="store_true", help="write whole recordings (HDF5) to evaluate on")
    world.add_argument(
        "--log-map", choices=("plain", "unfolded"), default="unfolded", help="the cache's physics log map"
    )
    for k in kinds.choices.values():
        k.add_argument("--seed", type=int, default=0, help="seed of every random draw")
        k.add_argument("--overwrite", action="store_true", help="replace an existing output")
        k.add_argument("-q", "--quiet", action="store_true", help="no progress, no summary")
    simp.set_defaults(func=_cmd_simulate)


def _add_refocus(sub: argparse._SubParsersAction) -> None:
    ref = sub.add_parser(
        "refocus",
        help="synthetic-aperture refocus a recording into T x H x W ON/OFF frames",
        formatter_class=_Formatter,
    )
    ref.add_argument("input", type=Path, help="a recording with SAI metadata (E-SAI .npy, simulated .h5), or any file")
    focus = ref.add_mutually_exclusive_group(required=True)
    focus.add_argument("--depth", type=float, help="focus depth in metres")
    focus.add_argument(
        "--auto", action="store_true", help="find the depth by autofocus: the target, seen through any occluder"
    )
    ref.add_argument("--bins", type=int, default=30, help="time bins T")
    ref.add_argument("--roi", type=int, nargs=4, metavar=("Y", "X", "H", "W"), help="crop (top, left, height, width)")
    ref.add_argument("--esai-compat", action="store_true", help="reproduce E-SAI's preprocessing exactly")
    ref.add_argument("--fx", type=float, help="focal length in px (default: from the file)")
    ref.add_argument("--v", type=float, help="camera speed in m/s (default: from the file)")
    ref.add_argument("--t-ref-us", type=int, help="reference time in us (default: from the file, else mid-recording)")
    ref.add_argument(
        "--depth-range", type=float, nargs=2, metavar=("NEAR", "FAR"), help="autofocus sweep, m (default 0.1 5.0)"
    )
    ref.add_argument("-o", "--output", type=Path, required=True, help="output .npz (pos, neg, depth, fx, v, t_ref_us)")
    ref.add_argument("--png", type=Path, help="also write the refocused accumulated image (.png)")
    ref.set_defaults(func=_cmd_refocus)


def _add_reconstruct(sub: argparse._SubParsersAction) -> None:
    rec = sub.add_parser(
        "reconstruct",
        help="see behind the occluder: refocus and reconstruct with a hybrid SNN-CNN",
        formatter_class=_Formatter,
    )
    rec.add_argument("input", type=Path, help="a recording with SAI metadata (E-SAI .npy, simulated .h5)")
    focus = rec.add_mutually_exclusive_group()
    focus.add_argument("--depth", type=float, help="focus depth in metres (default: the file's, else autofocus)")
    focus.add_argument("--auto", action="store_true", help="find the depth by see-through autofocus")
    rec.add_argument(
        "--method",
        choices=("network", "integrate", "frames"),
        default="network",
        help="network: the hybrid SNN-CNN; integrate: the training-free integration of the signed events; "
        "frames: the occlusion-robust frame SAI (needs APS frames; at each pixel, the percentile away from the "
        "occluder's shade)",
    )
    rec.add_argument("--model", default="hybridlite", help="bundled model name or checkpoint path")
    rec.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda")
    rec.add_argument(
        "--precision",
        choices=("fp32", "fast", "bf16", "auto"),
        default="fp32",
        help="fast: the CPU fast path (fp32 reordered: folded batch norm, Winograd 3x3 convolutions, "
        "channels_last; about 1e-5 from fp32; on CUDA, TF32 convolutions); bf16: bf16 autocast on CPUs with "
        "avx512_bf16 or AMX (faster than fp32 on some such CPUs, slower on others) and on CUDA GPUs with bf16; "
        "auto: the quicker of fast and bf16 here, timed on the first image",
    )
    rec.add_argument("--roi", type=int, nargs=4, metavar=("Y", "X", "H", "W"), help="crop (top, left, height, width)")
    rec.add_argument("--bins", type=int, default=30, help="time bins T (E-SAI's preprocessing)")
    rec.add_argument(
        "--esai-compat",
        action="store_true",
        help="E-SAI's exact refocusing and packing: always on here (the networks are trained on it); "
        "accepted so E-SAI command lines run unchanged",
    )
    rec.add_argument(
        "--no-frames",
        action="store_true",
        help="hide the recording's APS frames from a model that reads them (it reconstructs from events alone)",
    )
    rec.add_argument("-o", "--output", type=Path, required=True, help="the reconstructed image (.png)")
    rec.add_argument("--raw", type=Path, help="also save the network's output, float32 H x W (.npy)")
    rec.add_argument("--json", action="store_true", help="print depth, model, device, timings (and scores) as JSON")
    rec.set_defaults(func=_cmd_reconstruct)
    tr = sub.add_parser(
        "train-reconstruct",
        help="train a reconstruction model (on world caches or E-SAI folders) and score it beside the baselines",
        formatter_class=_Formatter,
    )
    tr.add_argument(
        "data",
        type=Path,
        nargs="+",
        help="caches from `spikelens simulate world` (.h5), or E-SAI-layout folders (their train/ split)",
    )
    tr.add_argument("-o", "--output", type=Path, required=True, help="checkpoint (.pt); the report goes beside it")
    tr.add_argument("--test", type=Path, nargs="+", help="recordings or folders to score (default: DATA's test/)")
    tr.add_argument("--model", default="hybridlite", choices=("hybridlite", "hybridnet"), help="architecture")
    tr.add_argument("--no-physics", action="store_true", help="events only (E-SAI's own input), no physics channels")
    tr.add_argument("--epochs", type=int, default=10, help="passes over the training crops")
    tr.add_argument("--batch", type=int, default=4, help="crops per step")
    tr.add_argument("--crop", type=int, default=96, help="crop size, px")
    tr.add_argument("--bins", type=int, default=30, help="time bins T")
    tr.add_argument("--device", default="auto", help="auto, cpu or cuda")
    tr.add_argument("--seed", type=int, default=0, help="seed of the crops and the initial weights")
    tr.add_argument(
        "--fit-weight",
        type=float,
        default=0.0,
        help="weight of a loss on structure alone: L1 after the best affine fit to the truth",
    )
    tr.add_argument(
        "--aps",
        action="store_true",
        help="hybridlite: read the APS frames too (their percentiles and mean, for absolute brightness); with --init, "
        "the checkpoint's model gains them, silent until trained",
    )
    tr.add_argument(
        "--frame-gate",
        action="store_true",
        help="hybridlite (implies --aps): mix the APS frames into the output by learnt maps (which percentile is "
        "the target, how far to trust it); with --init, the gate starts nearly shut",
    )
    tr.add_argument(
        "--target-first",
        action="store_true",
        help="hybridlite (implies --aps): read the APS percentiles in the order the events choose, the one whose "
        "log gradient agrees with theirs first",
    )
    tr.add_argument(
        "--shade-first",
        action="store_true",
        help="hybridlite (implies --aps): read the APS percentiles per pixel, the one farther from the occluder's "
        "shade first (the target's); with --init, a frame gate keeps its trust and starts selecting that one",
    )
    tr.add_argument(
        "--frame-agreement",
        action="store_true",
        help="hybridlite (implies --frame-gate): the gate also reads how well the frames' log gradient agrees with "
        "the events' (one number a recording: blur, noise); with --init, from zero weight",
    )
    tr.add_argument(
        "--calibrate",
        action="store_true",
        help="hybridlite (implies --frame-gate): the estimate takes the frames' brightness and contrast (its gain "
        "and offset fitted to the frames' estimate) before the gate mixes them; no weights of its own",
    )
    tr.add_argument("--resume", action="store_true", help="continue an interrupted run from OUTPUT's .state.pt")
    tr.add_argument("--init", help="start from this checkpoint's weights and architecture (path or bundled name)")
    tr.add_argument("--stride", type=int, choices=(1, 2), help="hybridlite: 2 (default) runs the encoder at half size")
    tr.add_argument(
        "--log-map",
        choices=("plain", "unfolded"),
        help="the log map in the physics channels (default: unfolded; with --init, the checkpoint's)",
    )
    tr.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    tr.set_defaults(func=_cmd_train_reconstruct)
    ev = sub.add_parser(
        "evaluate-reconstruct",
        help="score a model and every baseline (accumulation, integrate, frame SAI, oracle fits) on recordings",
        formatter_class=_Formatter,
    )
    ev.add_argument("inputs", type=Path, nargs="*", help="recordings with ground truth, or folders (their test/)")
    ev.add_argument(
        "--robustness",
        type=int,
        metavar="SCENES",
        help="instead: simulate SCENES scenes per level and tabulate PSNR against threshold, noise, coverage, "
        "depth and speed error",
    )
    ev.add_argument("--model", default="hybridlite", help="bundled name, checkpoint path, or none (baselines only)")
    ev.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ev.add_argument("--bins", type=int, default=30, help="time bins T")
    ev.add_argument("-o", "--output", type=Path, help="write the report (.json, per-file .csv beside it)")
    ev.add_argument("--json", action="store_true", help="print the mean scores as JSON")
    ev.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    ev.set_defaults(func=_cmd_evaluate_reconstruct)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="spikelens", description="Event-camera workbench.", formatter_class=_Formatter)
    p.add_argument("--version", action="version", version=f"spikelens {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    info = sub.add_parser(
        "info", help="describe a recording or a live source (the bundled sample if none)", formatter_class=_Formatter
    )
    info.add_argument("source", nargs="?", help=f"what to describe: {SOURCE_HELP}")
    info.add_argument("--json", action="store_true", help="machine-readable output (a stable set of keys)")
    info.add_argument("--meta", action="store_true", help="with --json, add camera and extra metadata")
    info.add_argument("--probe-s", type=float, default=1.0, help="live sources: seconds of events to measure")
    info.set_defaults(func=_cmd_info)

    conv = sub.add_parser("convert", help="convert a recording to .h5 or .npz, losslessly", formatter_class=_Formatter)
    conv.add_argument("input", type=Path, help="any supported recording")
    conv.add_argument("output", type=Path, help="output .h5/.hdf5 (streamed) or .npz (loaded whole)")
    conv.add_argument("-q", "--quiet", action="store_true", help="no progress, no summary")
    conv.add_argument("--overwrite", action="store_true", help="replace an existing output")
    conv.set_defaults(func=_cmd_convert)

    rec = sub.add_parser(
        "record", help="stream any source into SpikeLens HDF5 (bounded memory)", formatter_class=_Formatter
    )
    rec.add_argument("source", help=SOURCE_HELP)
    rec.add_argument("-o", "--output", type=Path, required=True, help="output .h5")
    rec.add_argument("--seconds", type=float, help="stop after this much of the stream (default: until it ends)")
    rec.add_argument("--events", type=int, help="stop after this many events (default: no limit)")
    rec.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    rec.add_argument("--overwrite", action="store_true", help="replace an existing output")
    rec.set_defaults(func=_cmd_record)

    _add_refocus(sub)
    _add_reconstruct(sub)
    cli_classify.add_parsers(sub, _Formatter)
    _add_simulate(sub)

    gui = sub.add_parser("gui", help="open the desktop workbench (on FILE if given)", formatter_class=_Formatter)
    gui.add_argument("file", nargs="?", type=Path, help="a recording to open at start")
    gui.set_defaults(func=_cmd_gui)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from spikelens.datasets import FormatError

    try:
        return args.func(args)
    except (FormatError, ValueError, OSError) as exc:
        print(f"spikelens: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
