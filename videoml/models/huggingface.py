"""Hugging Face video classifiers by name: ``hf:ORG/NAME`` from the Hugging Face cache, or ``hf:FOLDER`` (what
``save_pretrained`` writes), wherever a registry name is taken (``--model.model``, ``-m``, ``create_model``).

The families of ``transformers`` 5 with a video-classification head: VideoMAE, TimeSformer and ViViT. A name loads
the folder's weights, its classes (``config.id2label``) and its input: the clip length of its config, the resize,
crop and normalisation of its image processor (``preprocessor_config.json``: what its published accuracy was
measured with; evaluation resizes as the processor does, torchvision's antialiased bilinear resize, then its centre
crop), and the frame spacing its family's Kinetics recipe samples with (:data:`STRIDES`, which the configs do not
hold). A model trained to another class count gets a new head (fine-tuning).

Nothing reaches the network: names resolve in the local Hugging Face cache (``HF_HOME``; ``HF_HUB_OFFLINE=1`` is
set when unset), and a model that is not there is one line saying how to get it. ``transformers`` is an optional
dependency (``pip install 'videoml[hf]'``).
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

from torch import nn

from videoml.errors import UsageError, VideomlError, first_line, install_hint
from videoml.spec import InputSpec

HF_PREFIX = "hf:"
# model_type -> source frames between clip frames, as each family's Kinetics-400 recipe samples:
STRIDES = {"videomae": 4,  # VideoMAE (Tong et al., 2022), Kinetics-400: 16 frames, stride 4 (its fine-tuning scripts)
           "timesformer": 32,  # TimeSformer (Bertasius et al., 2021): 8 frames "sampled at a rate of 1/32"
           "vivit": 2}  # ViViT (Arnab et al., 2021): 32 frames, stride 2 on Kinetics
# model_type -> (temporal views, spatial crops) of the papers' Kinetics-400 evaluation
VIEWS = {"videomae": (5, 3), "timesformer": (1, 3), "vivit": (4, 3)}


class HFVideoClassifier(nn.Module):
    """A ``transformers`` video classifier on videoml's clips: (B, C, T, H, W) in, logits out (``transformers``
    takes ``pixel_values`` as (B, T, C, H, W) and returns an output object)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.hf = model  # not "model": Lightning checkpoints prefix the LightningModule's attribute so

    def forward(self, video):
        return self.hf(pixel_values=video.transpose(1, 2)).logits


def source_of(name: str) -> str:
    return os.path.expanduser(name[len(HF_PREFIX):])


def _transformers():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never the network: the cache or a folder (read at import)
    try:
        import transformers
    except ImportError:
        raise UsageError(f"Hugging Face models need transformers: {install_hint('transformers')}") from None
    transformers.logging.set_verbosity_error()  # its notes on new heads are the point of fine-tuning, not news
    transformers.logging.disable_progress_bar()
    return transformers


def _is_folder(source: str) -> bool:
    return source.startswith(("/", ".", "~")) or os.path.exists(source)


def _loaded(name: str, what: str, load):
    """``load()``, with the errors of a missing or unreadable model as one line naming ``name``."""
    source = source_of(name)
    if _is_folder(source) and not os.path.isdir(source):
        raise VideomlError(f"{name}: no such folder")
    try:
        return load()
    except OSError as e:
        if _is_folder(source):
            raise VideomlError(f"{name}: cannot read its {what} ({first_line(e)})") from None
        raise VideomlError(f"{name}: not in the Hugging Face cache, and the hub is not reached (HF_HUB_OFFLINE): "
                           f"download it where the internet is (hf download {source}), or give the folder "
                           "save_pretrained wrote (hf:FOLDER)") from None
    except ValueError as e:  # a config of a model type without a video-classification head, among others
        raise VideomlError(f"{name}: {first_line(e)}") from None


@functools.lru_cache(maxsize=None)
def _config_and_processor(name: str):
    transformers = _transformers()
    config = _loaded(name, "config", lambda: transformers.AutoConfig.from_pretrained(source_of(name)))
    if config.model_type not in STRIDES:
        raise VideomlError(f"{name}: a {config.model_type} model; video classifiers by name are "
                           f"{', '.join(STRIDES)}")
    processor = _loaded(name, "image processor (preprocessor_config.json, the preprocessing its accuracy was "
                        "measured with)", lambda: transformers.AutoImageProcessor.from_pretrained(source_of(name)))
    return config, processor


def hf_input(name: str) -> InputSpec:
    """The model's input: its config's clip length, its image processor's resize, crop and normalisation."""
    config, processor = _config_and_processor(name)
    if int(getattr(processor, "resample", 2)) != 2 or not getattr(processor, "do_center_crop", True):
        raise VideomlError(f"{name}: its image processor resizes with resample={processor.resample} or without a "
                           "centre crop; videoml evaluates with bilinear resizing and a centre crop")
    size, crop = processor.size, processor.crop_size
    short = size.get("shortest_edge")
    exact = None if short else (size["height"], size["width"])
    scale = short or min(exact)
    mean, std = _normalisation(processor)
    return InputSpec(frames=config.num_frames, stride=STRIDES[config.model_type], crop=crop["height"],
                     train_scale=(scale, round(scale * 320 / 256)), eval_scale=scale, eval_size=exact,
                     mean=mean, std=std, resize="huggingface")


def _normalisation(processor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The processor's ``((x * rescale_factor + offset) - image_mean) / image_std`` (ViViT's offset: -1) as videoml's
    ``(x / 255 - mean) / std``."""
    rescale = processor.rescale_factor if processor.do_rescale else 1.0
    offset = -1.0 if getattr(processor, "offset", False) else 0.0
    m, s = (processor.image_mean, processor.image_std) if processor.do_normalize else ([0.0] * 3, [1.0] * 3)
    m, s = [m] * 3 if isinstance(m, (int, float)) else m, [s] * 3 if isinstance(s, (int, float)) else s
    return (tuple((mi - offset) / (255 * rescale) for mi in m), tuple(si / (255 * rescale) for si in s))


def hf_classes(name: str) -> tuple[str, ...]:
    config, _ = _config_and_processor(name)
    return tuple(config.id2label[i] for i in range(config.num_labels))


def hf_views(name: str) -> tuple[int, int]:
    config, _ = _config_and_processor(name)
    return VIEWS[config.model_type]


def build_hf(name: str, num_classes: int, **options) -> nn.Module:
    """The folder's model with ``num_classes`` outputs: its own head when the counts agree, else a new one;
    ``options`` set config values (``hidden_dropout_prob``, ``drop_path_rate`` where the family has them)."""
    transformers = _transformers()
    config, _ = _config_and_processor(name)
    model = _loaded(name, "weights", lambda: transformers.AutoModelForVideoClassification.from_pretrained(
        source_of(name), num_labels=num_classes, ignore_mismatched_sizes=num_classes != config.num_labels,
        **options))
    return HFVideoClassifier(model.train())  # from_pretrained hands it over in eval mode; a built model trains


def hf_entry(name: str):
    """The registry entry of ``hf:SOURCE`` (:class:`videoml.models.registry.ModelEntry`)."""
    from videoml.models.registry import ModelEntry

    config, _ = _config_and_processor(name)
    return ModelEntry(name, functools.partial(build_hf, name), hf_input(name),
                      f"{config.model_type} ({config.num_frames} frames, {config.image_size}px) from "
                      f"{source_of(name)}", family="huggingface")


def load_hf_model(name: str):
    """The model ``hf:SOURCE`` with its own head, in eval mode, and its card (classes: ``config.id2label``; views:
    its paper's Kinetics evaluation)."""
    from videoml.models.registry import build_model
    from videoml.models.weights import ModelCard

    classes = hf_classes(name)
    views, crops = hf_views(name)
    model = build_model(name, len(classes))
    return model.eval(), ModelCard(model=name, classes=classes, input=hf_input(name), views=views, crops=crops)


def cached_models() -> list[str]:
    """The ``hf:`` names of the video classifiers in the local Hugging Face cache (none without transformers)."""
    try:
        _transformers()
    except UsageError:
        return []
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        repos = scan_cache_dir().repos
    except (CacheNotFound, OSError):  # no cache yet
        return []
    names = []
    for repo in sorted(repos, key=lambda r: r.repo_id):
        configs = [f.file_path for rev in repo.revisions for f in rev.files if f.file_name == "config.json"]
        if repo.repo_type == "model" and configs and _model_type(configs[0]) in STRIDES:
            names.append(HF_PREFIX + repo.repo_id)
    return names


def _model_type(config: os.PathLike) -> str | None:
    try:
        return json.loads(Path(config).read_text()).get("model_type")
    except (OSError, ValueError, AttributeError):  # unreadable, not JSON, not an object
        return None
