"""What travels with a trained model: its architecture, class names, input and test views.

A Lightning checkpoint from ``videoml fit`` holds it in its hyper-parameters; an exported model carries it as JSON
(``videoml.json`` beside the TorchScript / ``torch.export`` archive's code, ONNX metadata property ``videoml``), so
``videoml infer`` needs nothing but the file.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass

from videoml.errors import VideomlError
import torch
from torch import nn

from videoml.models.registry import InputSpec, build_model, load_weights, model_input, read_file

METADATA_KEY = "videoml.json"


@dataclass(frozen=True)
class ModelCard:
    model: str  # registry name
    classes: tuple[str, ...]
    input: InputSpec
    model_options: dict = dataclasses.field(default_factory=dict)
    views: int = 1  # temporal views x spatial crops the model was evaluated with (defaults for inference)
    crops: int = 1

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str | bytes, source: str) -> "ModelCard":
        try:
            data = json.loads(text)
            spec = data.pop("input")
            spec["train_scale"] = tuple(spec["train_scale"])
            spec["mean"], spec["std"] = tuple(spec["mean"]), tuple(spec["std"])
            return cls(input=InputSpec(**spec), classes=tuple(data.pop("classes")), **data)
        except (ValueError, KeyError, TypeError) as e:
            raise VideomlError(f"{source}: unreadable videoml metadata ({type(e).__name__}: {e})") from None


def read_checkpoint(path: str | os.PathLike) -> ModelCard:
    """The card of a ``videoml fit`` checkpoint (its weights load with :func:`load_weights`)."""
    checkpoint = read_file(path)
    hp = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    if not hp or "model" not in hp or not hp.get("classes"):
        raise VideomlError(f"{path}: not a videoml checkpoint (no model name and classes in its hyper-parameters)")
    data = checkpoint.get("datamodule_hyper_parameters") or {}
    return ModelCard(model=hp["model"], classes=tuple(hp["classes"]),
                     input=model_input(hp["model"]).replace(**(hp.get("input") or {})),
                     model_options=dict(hp.get("model_options") or {}),
                     views=int(data.get("views", 1)), crops=int(data.get("crops", 1)))


def load_trained(path: str | os.PathLike) -> tuple[nn.Module, ModelCard]:
    """The model of a ``videoml fit`` checkpoint, in eval mode, and its card."""
    card = read_checkpoint(path)
    model = build_model(card.model, len(card.classes), **card.model_options)
    load_weights(model, path, strict_head=True)
    return model.eval(), card


def save_checkpoint(model: nn.Module, card: ModelCard, path: str | os.PathLike) -> None:
    """Write ``model`` and its card as a checkpoint that :func:`load_trained`, ``videoml infer`` and ``videoml export``
    read like one from ``videoml fit`` (e.g. to serve weights trained elsewhere)."""
    torch.save({"hyper_parameters": {"model": card.model, "classes": list(card.classes),
                                     "input": dataclasses.asdict(card.input), "model_options": card.model_options},
                "datamodule_hyper_parameters": {"views": card.views, "crops": card.crops},
                "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}}, path)
