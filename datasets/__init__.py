"""Events in, events out: the event model, one reader per file format, HDF5/NPZ
writers and the dataset classes. Nothing here imports Qt or torch at import time.
"""

from spikelens.datasets.atomic import atomic_output
from spikelens.datasets.detect import detect_format, open_recording
from spikelens.datasets.errors import DatasetMissingError, FormatError
from spikelens.datasets.events import EVENT_DTYPE, as_events, empty_events, make_events
from spikelens.datasets.formats.hdf5 import H5EventWriter, write_h5
from spikelens.datasets.formats.numpy_files import write_npz
from spikelens.datasets.recording import ArrayRecording, Recording, RecordingMeta, RecordingStats
from spikelens.datasets.sensor_size import SensorSize

__all__ = [
    "EVENT_DTYPE",
    "ArrayRecording",
    "DatasetMissingError",
    "FormatError",
    "H5EventWriter",
    "Recording",
    "RecordingMeta",
    "RecordingStats",
    "SensorSize",
    "as_events",
    "atomic_output",
    "detect_format",
    "empty_events",
    "make_events",
    "open_recording",
    "write_h5",
    "write_npz",
]
