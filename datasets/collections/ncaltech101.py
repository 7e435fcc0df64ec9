"""N-Caltech101: 101 object classes (BACKGROUND_Google excluded), seeded per-class split.

Original layout: ``ROOT/Caltech101/<class>/image_NNNN.bin`` (ATIS events) and
``ROOT/Caltech101_annotations/<class>/annotation_NNNN.bin``; tonic's extra
nesting (``ROOT/Caltech101/Caltech101/...``) is found too. Each class's files
are shuffled with ``seed`` and the first ``train_fraction`` go to training,
so train and test never share a recording and the split is reproducible.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spikelens.datasets.collections.base import EventDataset, Transform, missing
from spikelens.datasets.formats.atis_bin import AtisBinRecording, read_ncaltech_annotation

URL = "https://www.garrickorchard.com/datasets/n-caltech101"
BACKGROUND = "BACKGROUND_Google"
#: The ATIS sensor; recordings are saccades over images of varying size within it.
SENSOR = (304, 240)


def _find(root: Path, name: str) -> Path | None:
    for cand in (root / name, root / name / name, root):
        if cand.is_dir() and any(p.is_dir() and p.name != BACKGROUND and any(p.glob("*.bin")) for p in cand.iterdir()):
            return cand
    return None


class NCaltech101(EventDataset):
    sensor_size = (*SENSOR, 2)

    def __init__(
        self,
        root: str | Path,
        train: bool = True,
        train_fraction: float = 0.8,
        seed: int = 0,
        transform: Transform = None,
        target_transform: Transform = None,
    ) -> None:
        super().__init__(transform, target_transform)
        self.root = Path(root)
        base = _find(self.root, "Caltech101")
        if base is None:
            raise missing("N-Caltech101", self.root, "Caltech101/<class>/image_0001.bin", URL)
        self._annotations = _find(self.root, "Caltech101_annotations")
        self.classes = sorted(p.name for p in base.iterdir() if p.is_dir() and p.name != BACKGROUND)
        rng = np.random.default_rng(seed)
        self._samples: list[tuple[Path, int]] = []
        for c, name in enumerate(self.classes):
            files = sorted((base / name).glob("*.bin"))
            order = rng.permutation(len(files))
            n_train = round(len(files) * train_fraction)
            picked = order[:n_train] if train else order[n_train:]
            self._samples += [(files[i], c) for i in sorted(picked)]

    def __len__(self) -> int:
        return len(self._samples)

    def _item(self, index: int) -> tuple[np.ndarray, int]:
        path, c = self._samples[index]
        return AtisBinRecording(path, *SENSOR).load(), c

    def annotation(self, index: int) -> dict[str, np.ndarray]:
        """Bounding box and contour of sample ``index`` (needs Caltech101_annotations)."""
        path, c = self._samples[index]
        if self._annotations is None:
            raise missing("N-Caltech101 annotations", self.root, "Caltech101_annotations/<class>/", URL)
        ann = self._annotations / self.classes[c] / path.name.replace("image", "annotation")
        return read_ncaltech_annotation(ann)
