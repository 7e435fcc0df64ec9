"""Read pickled .npy files (E-SAI samples) without running code from them.

E-SAI ships each sample as a dict pickled inside a .npy. ``np.load(...,
allow_pickle=True)`` would call whatever the pickle names, so a file from a
mirror could run commands on open. This unpickler resolves only the globals
the format needs: NumPy's own array, dtype and scalar reconstruction (and
``_codecs.encode`` for 'latin1', which Python 2 era pickles use for bytes).
Dicts, lists, tuples, strings, numbers, booleans and None need no global.
Anything else is refused by name before it is called, with a FormatError.
There is deliberately no switch to turn full unpickling back on.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from spikelens.datasets.errors import FormatError
from spikelens.datasets.formats.numpy_files import read_npy_header

_NUMPY = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class RefusedGlobal(pickle.UnpicklingError):
    def __init__(self, module: str, name: str) -> None:
        super().__init__(f"refused to load {module}.{name}: an E-SAI sample holds only arrays and plain values")


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    if encoding != "latin1" or not isinstance(text, str):
        raise RefusedGlobal("_codecs", f"encode(..., {encoding!r})")
    return text.encode("latin1")


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _NUMPY:
            return super().find_class(module, name)
        if (module, name) == ("_codecs", "encode"):
            return _latin1_encode
        raise RefusedGlobal(module, name)


def load_pickled_npy(path: str | Path) -> Any:
    """The object a .npy file holds (a 0-d object array yields its item), unpickled safely.

    Raises FormatError naming the file and, for a refused global, its name.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            dtype, shape = read_npy_header(f)
            if not dtype.hasobject:
                f.seek(0)
                return np.load(f, allow_pickle=False)
            obj = _ArraysOnly(f, encoding="latin1").load()
    except RefusedGlobal as exc:
        raise FormatError(path, str(exc)) from None
    except FormatError:
        raise
    except Exception as exc:  # truncated, not a pickle, wrong opcodes, ...
        raise FormatError(path, f"cannot read the pickled .npy: {type(exc).__name__}: {exc}") from None
    if isinstance(obj, np.ndarray) and obj.dtype.hasobject and obj.shape == () and shape == ():
        return obj.item()
    return obj
