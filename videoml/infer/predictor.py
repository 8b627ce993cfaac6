"""A model ready for inference, from a ``videoml fit`` checkpoint or an exported file.

The file's kind comes from its name: ``.ts`` TorchScript, ``.pt2`` ``torch.export`` program, ``.onnx`` ONNX (run in
ONNX Runtime on the CPU), ``zoo:NAME`` published weights (:mod:`videoml.models.zoo`); anything else is read as a
checkpoint. Every kind carries its :class:`ModelCard`.

A :class:`Predictor` takes uint8 clips as the data pipeline makes them ((B, C, T, H, W), or SlowFast's
``[slow, fast]``), normalises them on its device, and returns float32 logits on the CPU.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from pathlib import Path
from typing import Callable

import torch

from videoml.data.transforms import normalize
from videoml.errors import UsageError, VideomlError, first_line, install_hint
from videoml.models.features import HEAD, FeatureModel
from videoml.models.huggingface import HF_PREFIX, load_hf_model
from videoml.models.optimize import TOLERANCE, compiled, fold_batchnorm
from videoml.models.weights import METADATA_KEY, ModelCard, load_trained
from videoml.models.zoo import ZOO_PREFIX, load_zoo_model
from videoml.runtime import autocast, inference_precision, memory_format_for, parse_device, synchronize
from videoml.vocab import InferPrecision, MemoryFormat, Precision, check

log = logging.getLogger("videoml.infer")
EXPORT_SUFFIXES = {".ts": "torchscript", ".pt2": "pt2", ".onnx": "onnx"}
MODEL_KINDS = ("checkpoint", "zoo", "hf")  # the model itself (its modules), not an exported graph
# A lower precision ``auto`` chose, whose first batch took this many times the float32 model's: slow on this CPU
# (emulated, or a layer without a fast kernel: one ran over 100x slower), not first-call noise (a few ms)
SLOWER = 2.0


def model_kind(path: str | os.PathLike) -> str:
    if str(path).startswith(ZOO_PREFIX):
        return "zoo"
    if str(path).startswith(HF_PREFIX):
        return "hf"
    if str(path).lower().endswith(".aoti.pt2"):
        return "aoti"
    return EXPORT_SUFFIXES.get(Path(path).suffix.lower(), "checkpoint")


class Predictor:
    def __init__(self, forward: Callable, card: ModelCard, kind: str, device: torch.device,
                 precision: Precision = "32-true", memory_format: torch.memory_format = torch.contiguous_format,
                 reference: Callable | None = None, timed: bool = False):
        check(precision, Precision, "precision")
        if kind in ("onnx", "aoti") and precision != "32-true":
            raise UsageError(f"an {'ONNX model' if kind == 'onnx' else 'AOTInductor package'} runs at the precision "
                             "it was exported with: use --precision 32-true")
        self.forward, self.card, self.kind, self.device = forward, card, kind, device
        self.precision = precision
        self.memory_format = memory_format
        self.reference = reference  # the eager model ``forward`` (optimised) is checked against on the first call
        # a precision ``auto`` chose, kept only if its first batch runs faster than the float32 model's (the measured
        # table need not hold on this CPU); not when compiling, which the first call pays for
        self.timed = timed

    @property
    def classes(self) -> tuple[str, ...]:
        return self.card.classes

    def prepare(self, video: torch.Tensor | list[torch.Tensor]) -> torch.Tensor | list[torch.Tensor]:
        """uint8 clips -> normalised float32 on the device, in the memory format."""
        if isinstance(video, (list, tuple)):
            video = [v.to(self.device, non_blocking=True) for v in video]
        else:
            video = video.to(self.device, non_blocking=True)
        return normalize(video, self.card.input.mean, self.card.input.std, self.memory_format)

    @torch.inference_mode()
    def __call__(self, video: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
        video = self.prepare(video)
        outputs = self._verified(video) if self.reference is not None else self._run(self.forward, video)
        return outputs.cpu()

    def _run(self, forward: Callable, video, precision: Precision | None = None) -> torch.Tensor:
        with autocast(self.device, precision or self.precision):
            return forward(video).float()

    def _timed(self, forward: Callable, video, precision: Precision | None = None) -> tuple[torch.Tensor, float]:
        synchronize(self.device)
        started = time.perf_counter()
        outputs = self._run(forward, video, precision)
        synchronize(self.device)
        return outputs, time.perf_counter() - started

    def _verified(self, video) -> torch.Tensor:
        """The first outputs, checked against the float32 model's on the same clips (the fast graph and a lower
        precision each move them a little: by at most ``TOLERANCE[precision]`` of the largest output). When the
        fast graph fails (torch.compile without a C++ compiler, an operator it lacks), a one-line warning and the
        model from then on; when the outputs differ by more, a one-line warning and the float32 model. A precision
        ``auto`` chose (``timed``) that took over ``SLOWER`` times the float32 model's time (and 0.1 s more) gives
        way to float32, without a word."""
        reference, self.reference = self.reference, None
        expected, float32_s = self._timed(reference, video, "32-true")
        try:
            outputs, seconds = self._timed(self.forward, video)
        except Exception as e:  # torch.compile raises many types, from its compiler and its operators
            log.warning("the fast inference graph failed on the first batch (%s: %s); running the model as it is",
                        type(e).__name__, first_line(e))
            self.forward = reference
            outputs, seconds = self._timed(reference, video)
        log.info("first batch at %s: %.3g s, the float32 model %.3g s", self.precision, seconds, float32_s)
        if self.timed and self.precision != "32-true" and seconds > SLOWER * float32_s + 0.1:  # so on this CPU
            self.precision = "32-true"
            outputs = self._run(self.forward, video)
        difference = float((outputs - expected).abs().max())
        largest = max(float(expected.abs().max()), 1e-12)
        log.info("the outputs differ from the float32 model's by %.3g (%.2g of the largest)", difference,
                 difference / largest)
        if difference <= TOLERANCE[self.precision] * largest:
            return outputs
        what = "the model" if self.forward is reference else "the fast inference graph"
        if self.precision == "32-true":
            log.warning("%s differs from the model by %.3g (over %g of its largest output); running the model as it "
                        "is", what, difference, TOLERANCE[self.precision])
        else:
            log.warning("%s at %s differs from the float32 model by %.3g (over %g of its largest output); running "
                        "the model in float32", what, self.precision, difference, TOLERANCE[self.precision])
        self.forward, self.precision = reference, "32-true"
        return expected


def load_predictor(path: str | os.PathLike, device: str | torch.device = "cpu", precision: InferPrecision = "32-true",
                   memory_format: MemoryFormat = "auto", features: str | None = None,
                   optimize: bool | None = None, compile: bool = False) -> Predictor:
    """``precision``: 32-true, bf16-mixed, 16-mixed (autocast), or auto (see :func:`inference_precision`; the
    command line's default). ``memory_format``: "auto" (see :func:`memory_format_for`), "channels_last_3d" or
    "contiguous".
    ``features``: return the embeddings of this layer instead of logits (:class:`FeatureModel`; ``""``: the
    classifier's input, or an export's own layer); an exported model gives what it was exported to give (``videoml
    export --features``). ``optimize``: run a checkpoint's or published model's fast inference graph
    (:mod:`videoml.models.optimize`), verified on the first call against the float32 model (as a lower precision
    is); None: on the CPU, where it was measured to win
    (for an ONNX model: ONNX Runtime's graph optimisations). ``compile``: also ``torch.compile`` it (weights frozen),
    compiled and verified on the first call."""
    path = str(path)
    kind = model_kind(path)
    if not os.path.isfile(path) and kind not in ("zoo", "hf"):
        raise VideomlError(f"{path}: no such model file")
    device = parse_device(device)
    timed, precision = precision == "auto" and not compile, resolve_precision(path, device, precision)
    if kind in MODEL_KINDS:
        return _model_predictor(path, kind, device, precision, memory_format, features, optimize, compile, timed)
    if kind == "torchscript":
        extra = {METADATA_KEY: ""}
        try:
            with warnings.catch_warnings():  # TorchScript's deprecation notice is no news to who exported one
                warnings.filterwarnings("ignore", message=".*deprecated.*", category=FutureWarning)
                forward = torch.jit.load(path, map_location=device, _extra_files=extra).eval()
        except RuntimeError as e:
            raise VideomlError(f"{path}: not a TorchScript file ({first_line(e)})") from None
        card = _card(extra[METADATA_KEY], path)
    elif kind == "pt2":
        extra = {METADATA_KEY: ""}
        try:
            program = torch.export.load(path, extra_files=extra)
        except Exception as e:  # a zip without the program's parts, or not a zip at all
            raise VideomlError(f"{path}: not a torch.export program ({type(e).__name__}: {e})") from None
        card = _card(extra[METADATA_KEY], path)
        forward = program.module().to(device)
    elif kind == "aoti":
        forward, card = _aoti_package(path, device)
    else:
        forward, card = _onnx_session(path, optimize is not False)  # (ONNX Runtime runs on the CPU)
    _check_outputs(card, features, path)
    # a compiled package takes the layout it was compiled with (the export's contiguous clips)
    layout = torch.contiguous_format if kind == "aoti" else memory_format_for(memory_format, None, device.type)
    return Predictor(forward, card, kind, device, precision, layout)


def resolve_precision(path: str | os.PathLike, device: str | torch.device, precision: InferPrecision) -> Precision:
    """The precision the model at ``path`` runs at on ``device`` (``auto`` resolved: an exported file runs as it was
    exported)."""
    exported = model_kind(path) not in MODEL_KINDS
    return inference_precision(precision, parse_device(device), exported)


def _model_predictor(path: str, kind: str, device: torch.device, precision: Precision, memory_format: MemoryFormat,
                     features: str | None, optimize: bool | None, compile: bool, timed: bool = False) -> Predictor:
    """A checkpoint's or published weights' model, as it is or (``optimize``) as its fast inference graph, compiled
    or not. A named block's features need the model's own modules (their hooks), so they are never folded."""
    loaders = {"checkpoint": load_trained, "zoo": lambda p: load_zoo_model(p[len(ZOO_PREFIX):]), "hf": load_hf_model}
    model, card = loaders[kind](path)
    layout = memory_format_for(memory_format, model, device.type)
    model = model.to(device, memory_format=layout)
    if optimize is None:
        optimize = device.type == "cpu"
    fast = fold_batchnorm(model) if optimize and features in (None, "", HEAD) else None
    if features is not None:
        model = FeatureModel(model, features or HEAD).eval()
        fast = FeatureModel(fast).eval() if fast is not None else None
    fast = fast.to(device, memory_format=layout) if fast is not None else None
    if compile:
        fast = compiled(fast if fast is not None else model)
    if fast is None and precision == "32-true":
        return Predictor(model, card, kind, device, precision, layout)
    return Predictor(model if fast is None else fast, card, kind, device, precision, layout, reference=model,
                     timed=timed)


def _check_outputs(card: ModelCard, features: str | None, path: str) -> None:
    """An exported file gives what it was exported to give: logits, or one layer's embeddings."""
    if card.features == features or (features == "" and card.features is not None):
        return
    if features is None:
        raise UsageError(f"{path}: exported to give the embeddings of {card.features!r}, not class scores: use "
                         "videoml extract with it")
    if card.features is None:
        raise UsageError(f"{path}: an exported model of logits; export it with --features {features or HEAD} for "
                         "extract, or extract from its checkpoint")
    raise UsageError(f"{path}: exported with the embeddings of {card.features!r}, not of {features!r}")


def _aoti_package(path: str, device: torch.device) -> tuple[Callable, ModelCard]:
    """An AOTInductor package (``videoml export -f aoti``): its compiled model, on the device it was compiled for."""
    from torch._inductor import aoti_load_package

    from videoml.models.optimize import quiet_cpp_extension

    try:
        with quiet_cpp_extension():
            runner = aoti_load_package(path)
    except Exception as e:  # a zip without the package's parts, a library built for another machine
        raise VideomlError(f"{path}: not a loadable AOTInductor package ({type(e).__name__}: {first_line(e)})") from None
    card = _card(runner.get_metadata().get(METADATA_KEY, ""), path)
    if card.compiled != f"aoti-{device.type}":
        raise UsageError(f"{path}: compiled for {card.compiled.removeprefix('aoti-')}, not {device.type}: export it "
                         f"again on a {device.type} machine (videoml export -f aoti), or run its checkpoint")
    return runner, card


def _card(text: str | bytes, path: str) -> ModelCard:
    if not text:
        raise VideomlError(f"{path}: has no videoml metadata (export it with `videoml export`)")
    return ModelCard.from_json(text, path)


def _onnx_session(path: str, optimize: bool) -> tuple[Callable, ModelCard]:
    """An ONNX Runtime session on the CPU: its graph optimisations (constant folding, BatchNorm folded into the
    convolutions, node fusions) with ``optimize``, none without; as many threads as torch's (``torch.set_num_threads``
    or ``OMP_NUM_THREADS`` set both)."""
    try:
        import onnx
        import onnxruntime
    except ImportError:
        raise VideomlError(f"running ONNX models needs onnx and onnxruntime: {install_hint('onnxruntime')}") from None
    options = onnxruntime.SessionOptions()
    levels = onnxruntime.GraphOptimizationLevel
    options.graph_optimization_level = levels.ORT_ENABLE_ALL if optimize else levels.ORT_DISABLE_ALL
    options.intra_op_num_threads = torch.get_num_threads()
    try:
        meta = {p.key: p.value for p in onnx.load(path, load_external_data=False).metadata_props}
        session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnx / onnxruntime raise their own types for files they cannot read
        raise VideomlError(f"{path}: not a loadable ONNX model ({type(e).__name__}: {first_line(e)})") from None
    card = _card(meta.get(METADATA_KEY, ""), path)
    names = [i.name for i in session.get_inputs()]

    def forward(video):
        inputs = video if isinstance(video, list) else [video]
        feeds = {n: v.detach().cpu().contiguous().numpy() for n, v in zip(names, inputs)}
        return torch.from_numpy(session.run(None, feeds)[0])

    return forward, card
