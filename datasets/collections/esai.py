"""The E-SAI synthetic-aperture dataset: pickled .npy samples with SAI metadata.

Layout: ``ROOT/<split>/*.npy`` (or ``ROOT/*.npy`` for a single folder). An
item is ``(events, occ_free_aps)``: the target is the unoccluded frame the
reconstruction network must produce; :meth:`meta` gives fx, v, depth and
t_ref. Samples are pickles, read with the restricted unpickler of
:mod:`spikelens.datasets.formats.safe_pickle`: a hostile file runs nothing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spikelens.datasets.collections.base import EventDataset, Transform, missing
from spikelens.datasets.formats.esai import open_esai
from spikelens.datasets.recording import RecordingMeta

URL = "https://github.com/dvs-whu/E-SAI"


class ESAIDataset(EventDataset):
    sensor_size = (346, 260, 2)

    def __init__(
        self, root: str | Path, split: str = "train", transform: Transform = None, target_transform: Transform = None
    ) -> None:
        super().__init__(transform, target_transform)
        self.root = Path(root)
        folder = self.root / split if (self.root / split).is_dir() else self.root
        self._files = sorted(folder.glob("*.npy"))
        if not self._files:
            raise missing("E-SAI", self.root, f"{split}/*.npy samples", URL)

    def __len__(self) -> int:
        return len(self._files)

    def _item(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rec = open_esai(self._files[index])
        return rec.load(), rec.meta.extra["occ_free_aps"]

    def meta(self, index: int) -> RecordingMeta:
        return open_esai(self._files[index]).meta
