"""IBM DVS128 Gesture: 11 classes, users 1-23 train / 24-29 test, one sample per labelled segment.

Original layout (``DvsGesture.tar.gz``): ``ROOT/DvsGesture/userNN_<lighting>.aedat``
(AEDAT 3.1) with ``userNN_<lighting>_labels.csv`` (``class,startTime_usec,endTime_usec``,
classes 1-11) and ``trials_to_train.txt`` / ``trials_to_test.txt``. The
``DvsGesture`` level may be omitted. tonic's preprocessed layout
(``ibmGestureTrain|ibmGestureTest/userNN_<lighting>/<class>.npy``) is read too.
Segments are [start, end) in the recording's microseconds; 1176 train / 288
test segments from the originals (tonic's copy has 1077 / 264).
"""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

import numpy as np

from spikelens.datasets.collections.base import EventDataset, Transform, missing
from spikelens.datasets.detect import open_recording
from spikelens.datasets.errors import FormatError

URL = "https://research.ibm.com/interactive/dvsgesture/"
CLASSES = [
    "hand_clapping",
    "right_hand_wave",
    "left_hand_wave",
    "right_arm_clockwise",
    "right_arm_counter_clockwise",
    "left_arm_clockwise",
    "left_arm_counter_clockwise",
    "arm_roll",
    "air_drums",
    "air_guitar",
    "other_gestures",
]


def labels_beside(path: Path) -> Path | None:
    """DVS128 Gesture's ``<stem>_labels.csv`` next to a recording, if there is one."""
    p = Path(path).with_name(f"{Path(path).stem}_labels.csv")
    return p if p.is_file() else None


def read_labels(path: Path) -> list[tuple[int, int, int]]:
    """(class index 0-10, start us, end us) rows of a ``*_labels.csv``."""
    if not path.is_file():
        raise FormatError(path, "label CSV is missing (every .aedat needs its _labels.csv)")
    rows = []
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:3]] != ["class", "startTime_usec", "endTime_usec"]:
            raise FormatError(path, f"label CSV header must be class,startTime_usec,endTime_usec; got {header}")
        for lineno, row in enumerate(reader, start=2):
            if not row or not "".join(row).strip():
                continue
            try:
                c, t0, t1 = (int(v) for v in row[:3])
            except ValueError as exc:
                raise FormatError(path, f"line {lineno}: {exc}") from exc
            if not 1 <= c <= len(CLASSES) or t1 <= t0:
                raise FormatError(path, f"line {lineno}: bad class {c} or interval [{t0}, {t1})")
            rows.append((c - 1, t0, t1))
    return rows


class DVSGesture(EventDataset):
    sensor_size = (128, 128, 2)
    classes = CLASSES

    def __init__(
        self, root: str | Path, train: bool = True, transform: Transform = None, target_transform: Transform = None
    ) -> None:
        super().__init__(transform, target_transform)
        self.root = Path(root)
        self.train = train
        base = self.root / "DvsGesture" if (self.root / "DvsGesture").is_dir() else self.root
        tonic_dir = self.root / ("ibmGestureTrain" if train else "ibmGestureTest")
        if (base / "trials_to_train.txt").is_file():
            self._samples = self._index_original(base)
        elif tonic_dir.is_dir():
            self._samples = [(p, int(p.stem), 0, 0) for p in sorted(tonic_dir.glob("user*/*.npy"))]
        else:
            raise missing(
                "DVS128 Gesture", self.root, "DvsGesture/trials_to_train.txt and the userNN_*.aedat files", URL
            )
        self._load = lru_cache(maxsize=2)(self._load_file)

    def _index_original(self, base: Path) -> list[tuple[Path, int, int, int]]:
        trials = base / ("trials_to_train.txt" if self.train else "trials_to_test.txt")
        if not trials.is_file():
            raise FormatError(trials, "trial list is missing")
        samples = []
        for name in trials.read_text().split():
            aedat = base / name
            if not aedat.is_file():
                raise FormatError(aedat, f"listed in {trials.name} but missing")
            for c, t0, t1 in read_labels(base / f"{aedat.stem}_labels.csv"):
                samples.append((aedat, c, t0, t1))
        return samples

    def _load_file(self, path: Path) -> np.ndarray:
        with open_recording(path) as rec:
            return rec.load()

    def __len__(self) -> int:
        return len(self._samples)

    def _item(self, index: int) -> tuple[np.ndarray, int]:
        path, c, t0, t1 = self._samples[index]
        ev = self._load(path)
        if path.suffix == ".aedat":
            lo, hi = np.searchsorted(ev["t"], [t0, t1])
            ev = ev[lo:hi]
        return ev, c
