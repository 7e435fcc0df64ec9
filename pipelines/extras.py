"""Heavy optional dependencies, imported where they are used: one line names what to install.

torch is needed only to run or train models; the viewer, readers, converters, recorder and refocusing
work without it (a test blocks the import and runs them).
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: the PyTorch this project pins (a bare ``torch`` requirement may pull a multi-GB CUDA build)
TORCH_PIN = "torch==2.13.0"
#: module -> what to install for it
INSTALL = {"torch": f"pip install {TORCH_PIN} (or the [ml] extra)"}
#: the bundled models, by what they do (checkpoints live in spikelens.hybrid_net.weights)
DEFAULT_CLASSIFIER = "gesture"
DEFAULT_RECONSTRUCTOR = "hybridlite"


class MissingExtra(ImportError, ValueError):
    """An optional dependency is not installed (a ValueError too, so the CLI prints one line, status 2)."""


def require(module: str, what: str) -> ModuleType:
    """``module`` imported, or MissingExtra: ``what`` needs it, and how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        how = INSTALL.get(module, f"pip install {module}")
        raise MissingExtra(f"{what} needs {module}, which is not installed: {how}") from exc


def available(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True
