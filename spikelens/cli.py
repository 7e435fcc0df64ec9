"""The `spikelens` command line. Each subcommand is a thin shell over pipelines/."""

from __future__ import annotations

import argparse
import json
import sys
from importlib import resources
from pathlib import Path

from spikelens import __version__

EXIT_BAD_INPUT = 2
#: The stable contract of `spikelens info --json`.
JSON_KEYS = ["format", "width", "height", "events", "t_start_us", "t_end_us", "duration_us"]


def bundled_sample() -> Path:
    """A small recording that ships with the package, for demos and first runs."""
    return Path(str(resources.files("spikelens.datasets") / "samples" / "rotating_bar.h5"))


def _cmd_info(args: argparse.Namespace) -> int:
    from spikelens.pipelines.inspect import describe

    path = args.file or bundled_sample()
    info = describe(path)
    if args.json:
        keys = [*JSON_KEYS, "camera", "extra"] if args.meta else JSON_KEYS
        print(json.dumps({k: info[k] for k in keys}, indent=2))
        return 0
    print(f"{'file:':<13}{path}")
    for key in ("format", "camera", "width", "height", "events", "t_start_us", "t_end_us", "duration_us"):
        print(f"{key + ':':<13}{info[key]}")
    for key, value in info["extra"].items():
        print(f"{key + ':':<13}{value}")
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from spikelens.pipelines.convert import convert

    with tqdm(unit="ev", unit_scale=True, disable=args.quiet or None, file=sys.stderr) as bar:
        n = convert(args.input, args.output, progress=bar.update)
    if not args.quiet:
        print(f"wrote {n} events to {args.output}")
    return 0


def _cmd_refocus(args: argparse.Namespace) -> int:
    from spikelens.pipelines.sai import refocus_recording, save_npz, save_png

    if (args.depth is None) == (not args.auto):
        raise ValueError("give exactly one of --depth D or --auto")
    result = refocus_recording(
        args.input,
        args.depth,
        bins=args.bins,
        roi=args.roi,
        esai_compat=args.esai_compat,
        fx=args.fx,
        v=args.v,
        t_ref_us=args.t_ref_us,
        depth_range=tuple(args.depth_range),
        with_image=args.png is not None,
    )
    save_npz(result, args.output)
    if args.png:
        save_png(result.image, args.png)
    how = "autofocus" if result.autofocus else "given"
    print(f"depth {result.depth:.4f} m ({how}), {result.frames.shape[0]} bins, wrote {args.output}")
    return 0


def _cmd_train_refocusnet(args: argparse.Namespace) -> int:
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise ValueError("train-refocusnet needs PyTorch: pip install torch==2.13.0 (or the [ml] extra)") from exc
    from spikelens.hybrid_net.checkpoint import save_checkpoint
    from spikelens.hybrid_net.refocusnet import apse
    from spikelens.pipelines.refocusnet import autofocus_psi, evaluate_apse, simulate_samples, train_refocusnet

    train = simulate_samples(args.samples, seed=args.seed)
    val = simulate_samples(max(args.samples // 6, 8), seed=args.seed + 1)

    def report(epoch: int, loss: float, score: float) -> None:
        print(f"epoch {epoch + 1:>3}/{args.epochs}  train L1 {loss:.4f} px/bin  val APSE {score:.4f} px", flush=True)

    model, _ = train_refocusnet(train, val, epochs=args.epochs, seed=args.seed, progress=report)
    save_checkpoint(model, args.output)
    net = evaluate_apse(model, val)
    manual = apse(autofocus_psi(val), val.psi, val.n_bins, val.ref_bin)
    print(f"APSE on {len(val.psi)} simulated validation scenes: RefocusNet {net:.4f} px, autofocus {manual:.4f} px")
    print(f"wrote {args.output}")
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from spikelens.pipelines import simulate as sim

    total = None if args.kind == "video" else args.count
    unit = {"video": "frame", "sai": "sample", "gesture": "recording"}[args.kind]
    with tqdm(total=total, unit=unit, disable=args.quiet or None, file=sys.stderr) as bar:
        if args.kind == "video":
            params = sim.SensorParams(
                threshold_on=args.threshold, threshold_off=args.threshold, noise_rate_hz=args.noise_hz
            )
            size = tuple(args.size) if args.size else None
            n = sim.simulate_video(args.input, args.output, params, args.seed, args.fps, size, progress=bar.update)
            what = f"{n} events to {args.output}"
        elif args.kind == "sai":
            if not sim.photos_available() and not args.quiet:
                print("note: scikit-image is not installed, so every target is procedural", file=sys.stderr)
            w, h = args.size
            cfg = sim.SAIConfig(width=w, height=h, duration_us=round(args.duration_s * 1e6))
            m = sim.write_sai_dataset(args.output, args.count, args.seed, cfg, h5=args.h5, progress=bar.update)
            what = f"{len(m['samples'])} SAI samples to {args.output}"
        else:
            seg = tuple(args.segment_s)
            m = sim.write_gesture_dataset(args.output, args.count, args.seed, seg, progress=bar.update)
            what = f"{len(m['recordings'])} gesture recordings to {Path(args.output) / 'DvsGesture'}"
    if not args.quiet:
        print(f"wrote {what}")
    return 0


def _cmd_gui(args: argparse.Namespace) -> int:
    try:
        from spikelens.app import run
    except ImportError as exc:
        raise ValueError(f"the GUI needs PyQt6 and pyqtgraph: pip install 'spikelens[gui]' ({exc})") from exc
    return run(args.file)


def _add_simulate(sub: argparse._SubParsersAction) -> None:
    simp = sub.add_parser("simulate", help="simulate an event camera: a video, E-SAI scenes or DVS gestures")
    kinds = simp.add_subparsers(dest="kind", required=True)
    vid = kinds.add_parser("video", help="events of a video file (OpenCV) written to HDF5")
    vid.add_argument("input", type=Path)
    vid.add_argument("output", type=Path, help="output .h5")
    vid.add_argument("--fps", type=float, help="frame rate, when the container does not state it")
    vid.add_argument("--size", type=int, nargs=2, metavar=("W", "H"), help="resize frames to W x H first")
    vid.add_argument("--threshold", type=float, default=0.2, help="contrast threshold, log units (default 0.2)")
    vid.add_argument("--noise-hz", type=float, default=0.1, help="background activity per pixel (default 0.1)")
    for name, what in (("sai", "E-SAI samples (train/val/test, disjoint sources)"), ("gesture", "DVS Gesture")):
        k = kinds.add_parser(name, help=f"a dataset folder of simulated {what}")
        k.add_argument("output", type=Path, help="dataset folder")
        k.add_argument("--count", type=int, default=10, help="samples (sai) or recordings (gesture)")
        if name == "sai":
            k.add_argument("--h5", action="store_true", help="also write each sample as SpikeLens HDF5")
            k.add_argument("--size", type=int, nargs=2, default=(346, 260), metavar=("W", "H"), help="sensor size")
            k.add_argument("--duration-s", type=float, default=1.0, help="camera sweep length (default 1 s)")
        else:
            k.add_argument(
                "--segment-s", type=float, nargs=2, default=(1.5, 3.0), metavar=("MIN", "MAX"), help="gesture length"
            )
    for k in kinds.choices.values():
        k.add_argument("--seed", type=int, default=0)
        k.add_argument("-q", "--quiet", action="store_true")
    simp.set_defaults(func=_cmd_simulate)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="spikelens", description="Event-camera workbench.")
    p.add_argument("--version", action="version", version=f"spikelens {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="describe a recording (the bundled sample if no FILE)")
    info.add_argument("file", nargs="?", type=Path)
    info.add_argument("--json", action="store_true", help=f"machine-readable output: {', '.join(JSON_KEYS)}")
    info.add_argument("--meta", action="store_true", help="with --json, add camera and extra metadata")
    info.set_defaults(func=_cmd_info)

    conv = sub.add_parser("convert", help="convert a recording to .h5 or .npz, losslessly")
    conv.add_argument("input", type=Path)
    conv.add_argument("output", type=Path)
    conv.add_argument("-q", "--quiet", action="store_true")
    conv.set_defaults(func=_cmd_convert)

    ref = sub.add_parser("refocus", help="synthetic-aperture refocus a recording into T x H x W ON/OFF frames")
    ref.add_argument("input", type=Path)
    ref.add_argument("--depth", type=float, help="focus depth in metres")
    ref.add_argument("--auto", action="store_true", help="find the depth by autofocus")
    ref.add_argument("--bins", type=int, default=30, help="time bins T (default 30)")
    ref.add_argument("--roi", type=int, nargs=4, metavar=("Y", "X", "H", "W"), help="crop (top, left, height, width)")
    ref.add_argument("--esai-compat", action="store_true", help="reproduce E-SAI's preprocessing exactly")
    ref.add_argument("--fx", type=float, help="focal length in px (default: from the file)")
    ref.add_argument("--v", type=float, help="camera speed in m/s (default: from the file)")
    ref.add_argument("--t-ref-us", type=int, help="reference time in us (default: from the file, else mid-recording)")
    ref.add_argument("--depth-range", type=float, nargs=2, default=(0.3, 5.0), metavar=("NEAR", "FAR"))
    ref.add_argument("-o", "--output", type=Path, required=True, help="output .npz (pos, neg, depth)")
    ref.add_argument("--png", type=Path, help="also write the refocused accumulated image")
    ref.set_defaults(func=_cmd_refocus)

    tr = sub.add_parser("train-refocusnet", help="train E-SAI's RefocusNet on simulated scenes; report APSE")
    tr.add_argument("-o", "--output", type=Path, required=True, help="checkpoint (.pt: state dict + config JSON)")
    tr.add_argument("--samples", type=int, default=768, help="training scenes (default 768)")
    tr.add_argument("--epochs", type=int, default=25)
    tr.add_argument("--seed", type=int, default=0)
    tr.set_defaults(func=_cmd_train_refocusnet)
    _add_simulate(sub)

    gui = sub.add_parser("gui", help="open the desktop workbench (on FILE if given)")
    gui.add_argument("file", nargs="?", type=Path)
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
