"""What the dataset classes share: item plumbing and the missing-data message."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from spikelens.datasets.errors import DatasetMissingError

Transform = Callable[[Any], Any] | None


class EventDataset:
    """Map-style dataset (works with ``torch.utils.data.DataLoader``) of (events, target)."""

    #: (width, height, polarities), as tonic's transforms expect.
    sensor_size: tuple[int, int, int] = (0, 0, 2)
    classes: tuple[str, ...] | list[str] = ()

    def __init__(self, transform: Transform = None, target_transform: Transform = None) -> None:
        self.transform = transform
        self.target_transform = target_transform

    def __len__(self) -> int:
        raise NotImplementedError

    def _item(self, index: int) -> tuple[np.ndarray, Any]:
        raise NotImplementedError

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        events, target = self._item(index % len(self))
        if self.transform is not None:
            events = self.transform(events)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return events, target


def missing(name: str, root: Path, expected: str, url: str) -> DatasetMissingError:
    return DatasetMissingError(
        f"{name} not found under {root}: expected {expected}. SpikeLens never downloads; "
        f"get the original files from {url} and extract them there."
    )
