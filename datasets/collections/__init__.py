"""Map-style datasets over the ORIGINAL dataset files (and tonic's layouts).

Each item is ``(events, target)`` with optional ``transform`` (tonic's
transforms work: items are structured arrays with x, y, t, p and each dataset
has tonic's ``sensor_size``) and ``target_transform``. Nothing is downloaded:
a missing folder raises :class:`DatasetMissingError` saying where to get it.
"""

from spikelens.datasets.collections.cifar10_dvs import CIFAR10DVS
from spikelens.datasets.collections.dvs_gesture import DVSGesture
from spikelens.datasets.collections.esai import ESAIDataset
from spikelens.datasets.collections.ncaltech101 import NCaltech101

__all__ = ["CIFAR10DVS", "DVSGesture", "ESAIDataset", "NCaltech101"]
