"""CIFAR10-DVS: 10 classes x 1000 recordings, split 9:1 per class.

Original layout: ``ROOT/<class>/cifar10_<class>_<n>.aedat`` (jAER AEDAT 2.0,
DVS128); tonic's converted copies (``.aedat4``) in the same folders load too.
The split is deterministic: per class, files in numeric order, the first
``train_fraction`` train, the rest test (SpikingJelly's default split).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from spikelens.datasets.collections.base import EventDataset, Transform, missing
from spikelens.datasets.detect import open_recording

URL = "https://figshare.com/articles/dataset/CIFAR10-DVS_New/4724671"
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _number(p: Path) -> int:
    m = re.search(r"(\d+)$", p.stem)
    return int(m.group(1)) if m else -1


class CIFAR10DVS(EventDataset):
    sensor_size = (128, 128, 2)
    classes = CLASSES

    def __init__(
        self,
        root: str | Path,
        train: bool = True,
        train_fraction: float = 0.9,
        transform: Transform = None,
        target_transform: Transform = None,
    ) -> None:
        super().__init__(transform, target_transform)
        self.root = Path(root)
        if not 0 < train_fraction < 1:
            raise ValueError("train_fraction must be in (0, 1)")
        self._samples: list[tuple[Path, int]] = []
        for c, name in enumerate(CLASSES):
            files = sorted((p for p in (self.root / name).glob("*.aedat*")), key=_number)
            if not files:
                raise missing("CIFAR10-DVS", self.root, f"{name}/cifar10_{name}_0.aedat and the other classes", URL)
            n_train = round(len(files) * train_fraction)
            chosen = files[:n_train] if train else files[n_train:]
            self._samples += [(p, c) for p in chosen]

    def __len__(self) -> int:
        return len(self._samples)

    def _item(self, index: int) -> tuple[np.ndarray, int]:
        path, c = self._samples[index]
        with open_recording(path) as rec:
            return rec.load(), c
