"""Checkpoints are a state dict plus the model's config as JSON: nothing is unpickled on load."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn

from spikelens.datasets import atomic_output

M = TypeVar("M", bound=nn.Module)


def save_checkpoint(model: nn.Module, path: str | Path) -> None:
    """Write ``{"config": json, "state_dict": tensors}`` atomically; the model must have a dataclass ``config``."""
    payload = {"config": json.dumps(dataclasses.asdict(model.config)), "state_dict": model.state_dict()}
    with atomic_output(path, ".pt") as tmp:
        torch.save(payload, tmp)


def load_checkpoint(cls: type[M], path: str | Path, map_location: str | torch.device = "cpu") -> M:
    """Rebuild ``cls(config)`` and load its weights with ``torch.load(weights_only=True)``."""
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
        config = cls.config_class(**json.loads(payload["config"]))
    except Exception as exc:  # unpickling refusal, missing keys, wrong config fields
        raise ValueError(f"{path}: not a {cls.__name__} checkpoint: {exc}") from exc
    model = cls(config)
    model.load_state_dict(payload["state_dict"])
    return model
