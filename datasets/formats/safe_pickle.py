"""Read pickled .npy files (E-SAI samples) without running code from them.

E-SAI ships each sample as a dict pickled inside a .npy. ``np.load(...,
allow_pickle=True)`` would call whatever the pickle names, so a file from a
mirror could run commands on open. This unpickler resolves only the globals
the format needs: NumPy's own array, dtype and scalar reconstruction (and
``_codecs.encode`` for 'latin1', which Python 2 era pickles use for bytes).
Dicts, lists, tuples, strings, numbers, booleans and None need no global.
Anything else is refused by name before it is called, with a FormatError.
NumPy itself trusts the states it is handed, so the Python unpickler is used
and every BUILD is checked before NumPy sees it: dtype states are tried on a
copy and must agree with the flags and size NumPy computes itself, array
data must fill its shape (a list of items for object arrays), and datetime
dtypes are refused (fuzzing found flipped bytes that segfaulted the C path).
There is deliberately no switch to turn full unpickling back on.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from spikelens.datasets.errors import FormatError
from spikelens.datasets.formats.numpy_files import read_npy_header

_NUMPY = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
}


class RefusedGlobal(pickle.UnpicklingError):
    def __init__(self, module: str, name: str) -> None:
        super().__init__(f"refused to load {module}.{name}: an E-SAI sample holds only arrays and plain values")


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    if encoding != "latin1" or not isinstance(text, str):
        raise RefusedGlobal("_codecs", f"encode(..., {encoding!r})")
    return text.encode("latin1")


class BadState(pickle.UnpicklingError):
    """A dtype or array state that NumPy would take on trust: flags that deny a dtype's objects, or raw bytes
    where an array holds objects, would have NumPy read the file's bytes as object pointers (a crash, or
    worse). Found by fuzzing: one flipped byte made an 'i8' dtype 'm8' and segfaulted the interpreter."""


def _rebuilt(dtype: np.dtype) -> np.dtype:
    """A new dtype NumPy builds from ``dtype``'s own description, with flags and size it computes itself."""
    return np.dtype(dtype.descr if dtype.names is not None else dtype.str, False, True)


def _check_dtype(dtype: np.dtype) -> None:
    try:
        canon = _rebuilt(dtype)
    except Exception as exc:
        raise BadState(f"a dtype with an impossible state ({type(exc).__name__})") from None
    if (canon.flags, canon.itemsize, canon.hasobject) != (dtype.flags, dtype.itemsize, dtype.hasobject):
        raise BadState(f"a dtype whose flags or size contradict its fields ({dtype.flags} vs {canon.flags})")


def _check_array_state(state: Any) -> None:
    if not (isinstance(state, tuple) and len(state) == 5 and isinstance(state[2], np.dtype)):
        raise BadState("an array state that is not (version, shape, dtype, fortran, data)")
    shape, dtype, data = state[1], state[2], state[4]
    if not (isinstance(shape, tuple) and all(isinstance(n, int) and n >= 0 for n in shape)):
        raise BadState(f"an array shape that is not one: {shape!r}")
    n = int(np.prod(shape, dtype=np.int64))
    if dtype.hasobject:
        if not isinstance(data, list) or len(data) != n:
            raise BadState("an object array whose data is not a list of its items")
    elif not isinstance(data, bytes | bytearray) or len(data) != n * dtype.itemsize:
        raise BadState("an array whose raw data does not fill its shape")


#: Dtype kinds an E-SAI sample can hold. Datetimes are left out: their state carries a unit that a state
#: written for another dtype lacks, and NumPy then dereferences a null pointer (fuzzing found 'i8' -> 'm8').
_KINDS = set("biufcSUVO")


def _dtype(obj: Any, align: bool = False, copy: bool = False) -> np.dtype:
    dtype = np.dtype(obj, align, copy)
    if dtype.kind not in _KINDS:
        raise BadState(f"a dtype of kind {dtype.kind!r} ({dtype}): an E-SAI sample holds none")
    return dtype


class _ArraysOnly(pickle._Unpickler):  # the Python unpickler: its BUILD can be checked before NumPy sees it
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("numpy", "dtype"):
            return _dtype
        if (module, name) in _NUMPY:
            return super().find_class(module, name)
        if (module, name) == ("_codecs", "encode"):
            return _latin1_encode
        raise RefusedGlobal(module, name)

    def load_build(self) -> None:
        if len(self.stack) < 2:
            raise BadState("BUILD with nothing to build")
        state, inst = self.stack[-1], self.stack[-2]
        if isinstance(inst, np.ndarray):  # its dtype came through _dtype and, if built, the check below
            _check_array_state(state)
        elif isinstance(inst, np.dtype):  # tried on a copy first: the dtype may already be in use
            try:
                probe = _rebuilt(inst)
                probe.__setstate__(state)
            except Exception as exc:
                raise BadState(f"a dtype state NumPy refuses ({type(exc).__name__})") from None
            _check_dtype(probe)
        else:
            raise BadState(f"BUILD of a {type(inst).__name__}: an E-SAI sample builds only dtypes and arrays")
        pickle._Unpickler.load_build(self)

    dispatch: ClassVar[dict] = dict(pickle._Unpickler.dispatch)
    dispatch[pickle.BUILD[0]] = load_build


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
    except (RefusedGlobal, BadState) as exc:
        raise FormatError(path, str(exc)) from None
    except FormatError:
        raise
    except Exception as exc:  # truncated, not a pickle, wrong opcodes, ...
        raise FormatError(path, f"cannot read the pickled .npy: {type(exc).__name__}: {exc}") from None
    if isinstance(obj, np.ndarray) and obj.dtype.hasobject and obj.shape == () and shape == ():
        return obj.item()
    return obj
