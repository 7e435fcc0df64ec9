"""Model registry and checkpoints: a name, a config and a version travel with the weights.

A checkpoint is ``{"header": json, "state_dict": tensors}`` (header: model
name, config as a dict, format version, spikelens version), read with
``torch.load(weights_only=True)``: nothing in it can run code. E-SAI's own
checkpoints (a ``torch.nn.DataParallel`` state dict: every key prefixed
``module.``) are recognised by their keys and load into :class:`HybridNet`
as they are. ``load_model`` takes a path or the name of a bundled model.
"""

from __future__ import annotations

import dataclasses
import json
from importlib import metadata
from pathlib import Path

import torch
from torch import nn

from spikelens.datasets import atomic_output
from spikelens.hybrid_net.classify import HybridClassifier
from spikelens.hybrid_net.reconstruct import HybridLite, HybridNet
from spikelens.hybrid_net.spiking_classify import SpikingClassifier

#: Bumped when the checkpoint layout changes.
FORMAT_VERSION = 1
#: Model name -> class; each class has ``config_class`` (a dataclass) and takes it as its only argument.
MODELS: dict[str, type[nn.Module]] = {
    "hybridnet": HybridNet,
    "hybridlite": HybridLite,
    "classifier": HybridClassifier,
    "spiking_classifier": SpikingClassifier,
}
#: Where bundled weights live: ``<name>.pt`` beside this module.
BUNDLED = Path(__file__).parent / "weights"
#: What each architecture is for; commands ask for one kind.
KINDS = {
    "hybridnet": "reconstruction",
    "hybridlite": "reconstruction",
    "classifier": "classifier",
    "spiking_classifier": "classifier",
}
#: The bundled models by kind (a test keeps this equal to the files' headers).
BUNDLED_KINDS = {"hybridlite": "reconstruction", "gesture": "classifier"}
_KIND_WORDS = {"reconstruction": "a reconstruction model", "classifier": "a classifier"}


class CheckpointError(ValueError):
    """A file that is not a checkpoint we can load, with the reason."""


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto``: CUDA when present, else CPU; anything else as torch names it."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"unknown device {device!r}: use auto, cpu or cuda") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device cuda asked for, but PyTorch sees no CUDA GPU")
    return dev


def model_name(model: nn.Module) -> str:
    for name, cls in MODELS.items():
        if type(model) is cls:
            return name
    raise ValueError(f"{type(model).__name__} is not a registered model: {sorted(MODELS)}")


def save_model(model: nn.Module, path: str | Path) -> None:
    """Write the weights with their header, atomically."""
    try:
        version = metadata.version("spikelens")
    except metadata.PackageNotFoundError:
        version = "unknown"
    header = {
        "model": model_name(model),
        "config": dataclasses.asdict(model.config),
        "format": FORMAT_VERSION,
        "spikelens": version,
    }
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_output(path, ".pt") as tmp:
        torch.save({"header": json.dumps(header), "state_dict": state}, tmp)


def _is_esai(state: dict) -> bool:
    keys = set(state)
    return bool(keys) and all(k.startswith("module.") for k in keys) and "module.conv3.weight" in keys


def _build(name: str, config: dict, source: str) -> nn.Module:
    if name not in MODELS:
        raise CheckpointError(f"{source}: unknown model {name!r}; known: {sorted(MODELS)}")
    cls = MODELS[name]
    try:
        return cls(cls.config_class(**config))
    except TypeError as exc:
        raise CheckpointError(f"{source}: config does not fit {cls.__name__}: {exc}") from exc


def bundled_path(name: str) -> Path | None:
    p = BUNDLED / f"{name}.pt"
    return p if name and "/" not in name and p.is_file() else None


def kind_of(model: nn.Module) -> str:
    """``reconstruction`` or ``classifier``."""
    return KINDS[model_name(model)]


def _what_file(path: Path) -> str:
    """What a file that is no checkpoint looks like, for the error line."""
    with open(path, "rb") as f:
        head = f.read(512)
    if not head:
        return "an empty file"
    if head.startswith(b"PK\x03\x04"):
        return "a zip archive that is no PyTorch checkpoint (or one holding objects other than tensors)"
    try:
        text = head.decode("utf-8").lstrip()
    except UnicodeDecodeError:
        return "binary data that is no PyTorch checkpoint"
    return "a JSON file" if text[:1] in ("{", "[") else "a text file"


def _needs(kind: str, command: str | None) -> str:
    names = ", ".join(n for n, k in BUNDLED_KINDS.items() if k == kind)
    who = command or "this"
    return f"{who} needs {_KIND_WORDS[kind]}: {names} (bundled) or a checkpoint file of one"


def _is_hdf5(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(8) == b"\x89HDF\r\n\x1a\n"


def _load_nir(path: Path, dev: torch.device, kind: str | None, command: str | None) -> nn.Module:
    """A NIR graph (HDF5): always a classifier of event windows here."""
    from spikelens.hybrid_net.nir_run import NIRGraphError, load_nir

    if kind not in (None, "classifier"):
        raise CheckpointError(f"{path} is a NIR graph, run as a classifier; {_needs(kind, command)}")
    try:
        import nir  # noqa: F401
    except ImportError:
        raise CheckpointError(
            f"{path} is an HDF5 file; running a NIR graph needs the nir package: pip install nir"
        ) from None
    try:
        return load_nir(path).to(dev).eval()
    except NIRGraphError as exc:
        raise CheckpointError(str(exc)) from None


def load_model(
    path_or_name: str | Path,
    device: str | torch.device = "auto",
    kind: str | None = None,
    command: str | None = None,
) -> nn.Module:
    """A model in eval mode on ``device`` from a checkpoint path, an E-SAI checkpoint, a NIR graph (run by
    :mod:`spikelens.hybrid_net.nir_run`) or a bundled name.

    ``kind`` (``reconstruction`` or ``classifier``) refuses the other kind with one line that says what
    the file holds and what ``command`` needs. No error repeats torch's advice to unpickle unsafely.
    """
    if kind is not None and kind not in _KIND_WORDS:
        raise ValueError(f"unknown model kind {kind!r}; choose from {sorted(_KIND_WORDS)}")
    dev = resolve_device(device)
    path = Path(path_or_name)
    if not path.exists():
        found = bundled_path(str(path_or_name))
        if found is None:
            hint = f"; {_needs(kind, command)}" if kind else ""
            raise CheckpointError(f"{path_or_name}: no such file, and no bundled model of that name{hint}")
        path = found
    if path.is_dir():
        raise CheckpointError(f"{path}: a folder, not a checkpoint file")
    if _is_hdf5(path):
        return _load_nir(path, dev, kind, command)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # refused globals, not a zip/pickle, truncated: torch's own text advises unsafe loading
        hint = f"; {_needs(kind, command)}" if kind else ""
        raise CheckpointError(f"{path}: not a SpikeLens or E-SAI checkpoint ({_what_file(path)}){hint}") from None
    if not isinstance(payload, dict):
        raise CheckpointError(f"{path}: not a checkpoint (a {type(payload).__name__})")
    if "header" in payload and "state_dict" in payload:
        try:
            header = json.loads(payload["header"])
            name, config = header["model"], header["config"]
        except (TypeError, ValueError, KeyError) as exc:
            raise CheckpointError(f"{path}: bad checkpoint header: {exc}") from exc
        if header.get("format", 0) > FORMAT_VERSION:
            raise CheckpointError(f"{path}: checkpoint format {header['format']} is newer than this spikelens")
        model, state = _build(name, config, str(path)), payload["state_dict"]
    elif _is_esai(payload):
        model = HybridNet()
        state = {k.removeprefix("module."): v for k, v in payload.items()}
    else:
        raise CheckpointError(f"{path}: neither a spikelens checkpoint nor an E-SAI HybridNet state dict")
    if kind is not None and kind_of(model) != kind:
        label = str(path_or_name) if bundled_path(str(path_or_name)) else f"{path} holds a {model_name(model)}, which"
        raise CheckpointError(f"{label} is {_KIND_WORDS[kind_of(model)]}; {_needs(kind, command)}")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise CheckpointError(f"{path}: weights do not fit {type(model).__name__}: {first}") from None
    return model.to(dev).eval()
