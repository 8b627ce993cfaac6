"""``videoml export``: a checkpoint to TorchScript, ``torch.export`` or ONNX, each verified before it is kept.

Formats (file suffix in brackets):
  ``torchscript-trace``  [.ts]   ``torch.jit.trace`` on real clips. Works for every registry model.
  ``torchscript-script`` [.ts]   ``torch.jit.script``. No PyTorchVideo 0.1.5 architecture compiles: X3D's and
                                 EfficientX3D's blocks annotate attributes as ``nn.Module`` (TorchScript has no such
                                 type), the ResNet family (Slow, C2D, I3D, SlowFast, R(2+1)D, CSN) indexes
                                 ``nn.ModuleList`` with a loop variable, and MViT adds ``pos_embed`` only in some
                                 configurations. The attempt is made and the reason reported.
  ``pt2``                [.pt2]  ``torch.export`` ExportedProgram with a dynamic batch dimension.
  ``onnx``               [.onnx] ``torch.onnx.export(dynamo=True)``, opset 18 by default, dynamic batch.
  ``aoti``           [.aoti.pt2] the ``torch.export`` program compiled ahead of time by AOTInductor into a package
                                 (``torch._inductor.aoti_compile_and_package``): machine code for the exporting
                                 device's instruction set (a CPU package uses its vector instructions: export on
                                 the kind of node that serves it), so ``videoml infer`` runs Inductor's fused
                                 kernels with no compilation at start. Asked for by name: not part of ``all``,
                                 which holds the portable formats.
SlowFast's two-pathway input becomes a list argument (TorchScript, pt2) or two inputs ``slow`` and ``fast`` (ONNX).
With ``features`` (``--features LAYER``), the file outputs that layer's embeddings instead of the logits
(:mod:`videoml.models.features`), for ``videoml extract``; its card says which. With ``optimize`` (``--optimize``),
the file holds the fast inference graph (:mod:`videoml.models.optimize`: BatchNorm folded into the convolutions),
checked like any export against the model as trained; its card says so.

Every file carries the model card (classes, input, views) and is checked before ``export`` returns: a fresh Python
process that cannot import videoml nor PyTorchVideo loads it (TorchScript and pt2 with torch, ONNX with ONNX Runtime)
and runs real decoded clips at another batch size than the export's; its logits must match eager PyTorch's within
``atol + rtol * |eager|`` (fp32: 1e-4 and 1e-3), or the file is deleted and the error says by how much.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from videoml.errors import UsageError, VideomlError, first_line
from videoml.models.weights import METADATA_KEY, ModelCard, load_trained
from videoml.vocab import DEFAULT_OPSET, ExportFormat, check, choices

# format -> file name in an output folder (``videoml infer`` tells the kinds apart by the suffix: the last, or
# ``.aoti.pt2``)
FORMATS = dict(zip(choices(ExportFormat), ("model.trace.ts", "model.script.ts", "model.pt2", "model.onnx",
                                           "model.aoti.pt2")))
SUFFIXES = {fmt: ".aoti.pt2" if fmt == "aoti" else Path(name).suffix for fmt, name in FORMATS.items()}
PORTABLE = tuple(f for f in FORMATS if f != "aoti")  # ``export -f all``: what runs on any machine with torch
ATOL, RTOL = 1e-4, 1e-3


@dataclass
class ExportReport:
    format: str
    path: str
    bytes: int
    max_abs_diff: float  # exported vs eager logits, fresh process, real clips
    tolerance: str
    batch_checked: int
    seconds: float
    opset: int | None = None


def sample_clips(card: ModelCard, video: str | os.PathLike | None, count: int) -> torch.Tensor | list[torch.Tensor]:
    """``count`` normalised clips decoded from ``video`` (default: a freshly generated synthetic video)."""
    from videoml.data.transforms import normalize
    from videoml.infer.clips import VideoClips

    with tempfile.TemporaryDirectory() as tmp:
        if video is None:
            from videoml.data.synth import SynthConfig, generate

            data = generate(SynthConfig(classes=("move_left", "grow"), videos_per_class=1,
                                        splits=(1.0, 0.0, 0.0)), tmp)
            video = data.root / Path(data.split_file("train").read_text().split()[0])
        item = VideoClips([video], card.input, views=count, crops=1)[0]
        if item.error:
            raise VideomlError(f"cannot decode the sample video: {item.error}")
    return normalize(item.video, card.input.mean, card.input.std)


def _save_torchscript(module, path: Path, card: ModelCard) -> None:
    module.save(str(path), _extra_files={METADATA_KEY: card.to_json()})


def _export(model, card: ModelCard, fmt: str, example, path: Path, opset: int) -> None:
    try:
        _write(model, card, fmt, example, path, opset)
    except VideomlError:
        raise
    except Exception as e:  # the exporters raise many types; say which model and format, and why
        reason = (str(e).strip().splitlines() or [""])[0]
        raise VideomlError(f"{fmt} export of {card.model} failed ({type(e).__name__}: {reason})") from None


def _write(model, card: ModelCard, fmt: str, example, path: Path, opset: int) -> None:
    args = (example,)
    with warnings.catch_warnings():
        # the user asked for TorchScript: its deprecation notice (in favour of torch.export) is no news here
        warnings.filterwarnings("ignore", message=".*TorchScript.*deprecated.*", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*torch.jit.*deprecated.*")
        if fmt == "torchscript-trace":
            _save_torchscript(torch.jit.trace(model, args, check_trace=False), path, card)
            return
        if fmt == "torchscript-script":
            try:
                scripted = torch.jit.script(model)
            except Exception as e:  # TorchScript's frontend raises several types; the message is what matters
                reason = first_line(e)
                raise VideomlError(f"{card.model} cannot be scripted ({type(e).__name__}: {reason}); "
                                   "use --format torchscript-trace, pt2 or onnx") from None
            _save_torchscript(scripted, path, card)
            return
    batch = torch.export.Dim("batch", min=1, max=4096)
    shapes = ([{0: batch} for _ in example],) if isinstance(example, list) else ({0: batch},)
    if fmt in ("pt2", "aoti"):
        program = torch.export.export(model, args, dynamic_shapes=shapes)
        if fmt == "pt2":
            torch.export.save(program, str(path), extra_files={METADATA_KEY: card.to_json()})
        else:
            _compile_package(program, path, card)
        return
    import onnx

    names = ["slow", "fast"] if isinstance(example, list) else ["video"]
    torch.onnx.export(model, args, str(path), dynamo=True, opset_version=opset, input_names=names,
                      output_names=["features" if card.features else "logits"], dynamic_shapes=shapes,
                      external_data=False, verbose=False)
    proto = onnx.load(str(path))
    onnx.helper.set_model_props(proto, {METADATA_KEY: card.to_json()})
    onnx.save(proto, str(path))


def _compile_package(program, path: Path, card: ModelCard) -> None:
    """AOTInductor's package of ``program`` with the card in its metadata (``runner.get_metadata()``)."""
    from torch._inductor import aoti_compile_and_package

    from videoml.models.optimize import quiet_cpp_extension

    card = dataclasses.replace(card, compiled=f"aoti-{next(iter(program.state_dict.values())).device.type}")
    with quiet_cpp_extension():
        aoti_compile_and_package(program, package_path=str(path),
                                 inductor_configs={"aot_inductor.metadata": {METADATA_KEY: card.to_json()}})


# Run in a fresh interpreter in which videoml and pytorchvideo cannot be imported: the exported file must stand alone.
_CHECK = r"""
import sys
sys.modules["videoml"] = None
sys.modules["pytorchvideo"] = None
import torch
fmt, model_path, inputs_path, out_path = sys.argv[1:5]
video = torch.load(inputs_path)
if fmt.startswith("torchscript"):
    logits = torch.jit.load(model_path)(video)
elif fmt == "pt2":
    logits = torch.export.load(model_path).module()(video)
elif fmt == "aoti":
    logits = torch._inductor.aoti_load_package(model_path)(video)
else:
    import onnxruntime
    session = onnxruntime.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    inputs = video if isinstance(video, list) else [video]
    feeds = {i.name: v.numpy() for i, v in zip(session.get_inputs(), inputs)}
    logits = torch.from_numpy(session.run(None, feeds)[0])
torch.save(logits, out_path)
"""


def verify(fmt: str, path: Path, eager, video) -> float:
    """Largest |exported - eager| logit difference, the exported file run in a fresh process; raises when off."""
    with tempfile.TemporaryDirectory() as tmp:
        inputs, out = Path(tmp) / "inputs.pt", Path(tmp) / "logits.pt"
        torch.save(video, inputs)
        done = subprocess.run([sys.executable, "-c", _CHECK, fmt, str(path), str(inputs), str(out)],
                              capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise VideomlError(f"{path}: the exported model does not run on its own in a fresh process: {last}")
        logits, eager = torch.load(out).detach(), eager.detach()  # (a traced model's output keeps its grad)
    if logits.shape != eager.shape:
        raise VideomlError(f"{path}: exported model gives logits of shape {tuple(logits.shape)}, eager "
                           f"{tuple(eager.shape)}")
    diff = (logits - eager).abs()
    if not bool((diff <= ATOL + RTOL * eager.abs()).all()):
        raise VideomlError(f"{path}: exported logits differ from eager PyTorch's by up to {float(diff.max()):.3g} "
                           f"(tolerance {ATOL:g} + {RTOL:g} x |logit|)")
    return float(diff.max())


def output_path(fmt: str, out: str | os.PathLike) -> Path:
    """Where ``fmt`` is written for ``out`` (a file, or a folder to hold the file named in ``FORMATS``)."""
    check(fmt, ExportFormat, "export format")
    path = Path(out)
    suffix = SUFFIXES[fmt]
    if path.is_dir() or not path.suffix:
        return path / FORMATS[fmt]
    if not path.name.endswith(suffix) or (fmt == "pt2" and path.name.endswith(SUFFIXES["aoti"])):
        raise UsageError(f"{path}: a {fmt} file should end in {suffix} (videoml infer goes by the suffix)")
    return path


class Exporter:
    """A checkpoint's model, loaded once with the sample clips and eager logits that every format is checked
    against, so exporting to several formats loads, decodes and runs it once."""

    def __init__(self, checkpoint: str | os.PathLike, sample_video: str | None = None, batch: int = 2,
                 features: str | None = None, optimize: bool = False):
        from videoml.models.features import HEAD, FeatureModel
        from videoml.models.optimize import fold_batchnorm

        model, self.card = load_trained(checkpoint)
        fast = model
        if optimize:  # a named block's features need the model's own modules: no folded graph for them
            fast = fold_batchnorm(model) if features in (None, HEAD) else None
        if fast is None:
            raise UsageError(f"{checkpoint}: no fast inference graph for this export (a named block's features need "
                             "the model's own modules; or torch.fx cannot trace it): export it without --optimize")
        if features is not None:  # the file outputs the layer's embeddings (``videoml extract`` reads it)
            model = FeatureModel(model, features).eval()
            fast = FeatureModel(fast, features).eval() if optimize else model
        self.card = dataclasses.replace(self.card, features=features, optimized=optimize)
        self.model, self.batch = fast, batch  # exported: the fast graph (optimize) or the model
        self.clips = sample_clips(self.card, sample_video, batch + 1)
        clips = self.clips
        self.example = [c[:batch] for c in clips] if isinstance(clips, list) else clips[:batch]
        with torch.inference_mode():
            self.eager = model(clips)  # what every file is checked against: the model as trained

    def export(self, fmt: str, out: str | os.PathLike, opset: int = DEFAULT_OPSET) -> ExportReport:
        """Export to ``output_path(fmt, out)`` and verify the file (deleted when it fails)."""
        started = time.perf_counter()
        path = output_path(fmt, out)
        path.parent.mkdir(parents=True, exist_ok=True)
        with torch.no_grad():
            _export(self.model, self.card, fmt, self.example, path, opset)
        try:
            max_diff = verify(fmt, path, self.eager, self.clips)
        except VideomlError:
            path.unlink(missing_ok=True)
            raise
        return ExportReport(fmt, str(path), path.stat().st_size, max_diff, f"{ATOL:g} + {RTOL:g} x |logit|",
                            self.batch + 1, round(time.perf_counter() - started, 2),
                            opset if fmt == "onnx" else None)


def report_json(report: ExportReport) -> str:
    return json.dumps(dataclasses.asdict(report))
