"""Weights and what travels with them: reading and writing checkpoints, loading weights into a model, and the model
card (architecture, class names, input and test views).

A Lightning checkpoint from ``videoml fit`` holds it in its hyper-parameters; an exported model carries it as JSON
(``videoml.json`` beside the TorchScript / ``torch.export`` archive's code, ONNX metadata property ``videoml``), so
``videoml infer`` needs nothing but the file.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass

import torch
from torch import nn

from videoml.errors import VideomlError, first_line
from videoml.models.registry import build_model, model_input
from videoml.spec import InputSpec

METADATA_KEY = "videoml.json"


@dataclass(frozen=True)
class ModelCard:
    model: str  # registry name
    classes: tuple[str, ...]
    input: InputSpec
    model_options: dict = dataclasses.field(default_factory=dict)
    views: int = 1  # temporal views x spatial crops the model was evaluated with (defaults for inference)
    crops: int = 1
    features: str | None = None  # an export of embeddings: the layer they are of (videoml.models.features); else logits
    optimized: bool = False  # an export of the fast inference graph (BatchNorm folded, videoml.models.optimize)
    compiled: str | None = None  # an export compiled ahead of time: "aoti-cpu" (AOTInductor, for the exporting CPU)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str | bytes, source: str) -> "ModelCard":
        try:
            data = json.loads(text)
            return cls(input=InputSpec.from_dict(data.pop("input")), classes=tuple(data.pop("classes")), **data)
        except (ValueError, KeyError, TypeError) as e:
            raise VideomlError(f"{source}: unreadable videoml metadata ({type(e).__name__}: {e})") from None


def classifier_name(model: nn.Module) -> str:
    """The qualified name of the model's classifier, the head that depends on the class count: its final Linear
    layer, or in a model without one its final 1x1x1 convolution (torchvision's S3D classifies so)."""
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    pointwise = [n for n, m in model.named_modules() if isinstance(m, nn.Conv3d) and m.kernel_size == (1, 1, 1)]
    if not linears and not pointwise:
        raise VideomlError(f"{type(model).__name__} has no Linear classifier")
    return (linears or pointwise)[-1]


def read_file(path) -> object:
    """A checkpoint file's contents, read with ``torch.load(weights_only=True)``; errors name the file."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise VideomlError(f"{path}: no such checkpoint file") from None
    except Exception as e:  # torch raises many types for a file that is not a checkpoint
        raise VideomlError(f"{path}: not a loadable checkpoint ({type(e).__name__}: {first_line(e)})") from None


def load_weights(model: nn.Module, path, strict_head: bool = False) -> list[str]:
    """Load a checkpoint into ``model``; returns the names of parameters left as initialised (a new head).

    Reads PyTorchVideo model-zoo files (``{"model_state": ...}``), Lightning checkpoints (``{"state_dict": ...}``,
    keys prefixed ``model.``) and plain state dicts, with ``torch.load(weights_only=True)``. A classifier of another
    class count is skipped (kept as initialised) unless ``strict_head``; any other mismatch is an error naming the
    tensors.
    """
    state = read_file(path)
    for key in ("model_state", "state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict):
        raise VideomlError(f"{path}: holds no state dict")
    if all(k.startswith("model.") for k in state):
        state = {k[len("model."):]: v for k, v in state.items()}

    own = model.state_dict()
    head = classifier_name(model)
    skipped, problems = [], []
    for name, tensor in own.items():
        if name not in state:
            problems.append(f"missing {name}")
        elif state[name].shape != tensor.shape:
            if name.startswith(head + ".") and not strict_head:
                skipped.append(name)
            else:
                problems.append(f"{name}: checkpoint {tuple(state[name].shape)} vs model {tuple(tensor.shape)}")
    problems += [f"unexpected {name}" for name in state if name not in own]
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise VideomlError(f"{path}: does not fit the model: {shown}")
    model.load_state_dict({k: v for k, v in state.items() if k not in skipped}, strict=False)
    return skipped


def read_checkpoint(path: str | os.PathLike) -> ModelCard:
    """The card of a ``videoml fit`` checkpoint (its weights load with :func:`load_weights`)."""
    checkpoint = read_file(path)
    hp = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    if not hp or "model" not in hp or not hp.get("classes"):
        raise VideomlError(f"{path}: not a videoml checkpoint (no model name and classes in its hyper-parameters)")
    data = checkpoint.get("datamodule_hyper_parameters") or {}
    return ModelCard(model=hp["model"], classes=tuple(hp["classes"]),
                     input=model_input(hp["model"], hp.get("input")),
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
