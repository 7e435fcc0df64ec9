"""Soak: `spikelens record` and `spikelens live` on a long simulated gesture stream, resident memory sampled.

    python benchmarks/soak.py [--stream-s 1800] [--speed 4] [--only record|live]

Each command runs on ``sim:gesture@SPEED`` for ``--stream-s`` seconds of stream (wall time: that / SPEED);
its resident memory (VmRSS, /proc) is read every second. The bar: under 10 % growth after the first
minute, and every event counted (record: the file holds what it says it wrote; live: the summary's
events match what the stream produced, with no window skipped or, if skipped, counted).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def soak(
    cmd: list[str], wall_s: float, interrupt: bool = False
) -> tuple[list[tuple[float, float]], subprocess.CompletedProcess]:
    """Run ``cmd``, sampling its RSS each second; with ``interrupt`` send it SIGTERM after ``wall_s``."""
    import signal

    # stdout to a file: a pipe nobody reads would fill and stall the command
    with tempfile.TemporaryFile("w+") as log:
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.PIPE, text=True)
        samples, start, sent = [], time.monotonic(), False
        while p.poll() is None:
            m = rss_mb(p.pid)
            if m is not None:
                samples.append((time.monotonic() - start, m))
            if interrupt and not sent and time.monotonic() - start > wall_s:
                p.send_signal(signal.SIGTERM)  # not SIGINT: a background job (nohup, &) inherits it ignored
                sent = True
            if time.monotonic() - start > wall_s + 120:
                p.kill()
            time.sleep(1.0)
        _, err = p.communicate()
        log.seek(0)
        out = log.read()
    return samples, subprocess.CompletedProcess(cmd, p.returncode, out, err)


def report(name: str, samples: list[tuple[float, float]], extra: str) -> None:
    after = [m for t, m in samples if t >= 60] or [m for _, m in samples]
    first, peak, last = after[0], max(after), after[-1]
    print(
        f"{name:<7} {samples[-1][0]:7.0f} s wall  RSS after 1 min {first:6.0f} MB, peak {peak:6.0f} MB, "
        f"end {last:6.0f} MB, growth {100 * (peak - first) / first:5.1f} %  {extra}"
    )
    minutes = [next(m for t, m in samples if t >= k * 60) for k in range(1, int(samples[-1][0] // 60) + 1)]
    print(f"{'':<7} RSS each minute, MB: {' '.join(f'{m:.0f}' for m in minutes)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stream-s", type=float, default=1800.0)
    ap.add_argument("--speed", type=float, default=4.0)
    ap.add_argument("--only", choices=("record", "live"))
    args = ap.parse_args()
    wall = args.stream_s / args.speed
    src = f"sim:gesture:7@{args.speed:g}"
    exe = [sys.executable, "-m", "spikelens"]
    print(f"soak: {src}, {args.stream_s:g} s of stream ({wall:.0f} s wall) per command")
    if args.only in (None, "record"):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "soak.h5"
            samples, r = soak([*exe, "record", src, "-o", str(out), "--seconds", str(args.stream_s), "-q"], wall)
            from spikelens.datasets import open_recording

            with open_recording(out) as rec:
                n = rec.load().size
            said = int(r.stdout.split()[1]) if r.stdout.startswith("wrote ") else -1
            report(
                "record", samples, f"events: wrote {said:,}, file holds {n:,} ({'all' if n == said else 'MISMATCH'})"
            )
    if args.only in (None, "live"):
        p_samples, r = soak([*exe, "live", src, "--json", "--device", "cpu"], wall, interrupt=True)
        end = json.loads(r.stderr.strip().splitlines()[-1])
        report("live", p_samples, f"decisions {end['decisions']:,}, skipped {end['skipped']}, events {end['events']:,}")


if __name__ == "__main__":
    main()
