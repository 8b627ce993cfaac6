"""Published weights by name: ``zoo:x3d_s`` is PyTorchVideo's Kinetics-400 X3D-S checkpoint, ``zoo:r3d_18``
torchvision's R3D-18.

A name resolves to the published URL (PyTorchVideo's model zoo, the files its TorchHub builders load; torchvision's
weights enums' URLs), which is downloaded once into the torch hub cache (``$TORCH_HOME/hub/checkpoints``, where
``torch.hub`` and torchvision keep their own downloads: weights torchvision already fetched are used as they are)
with a progress bar, then read from there, offline too. torchvision names each file after the start of its SHA-256,
which the download is verified against; PyTorchVideo publishes no checksums. Either way the SHA-256 of the first
download is recorded beside the file (``NAME.sha256``) and every later use verifies the file against it, so a
damaged or replaced cache is an error, not silently different weights. Files are read with
``torch.load(weights_only=True)``.

A download is written aside and kept only when it is whole (as long as the server announced) and loads as a PyTorch
checkpoint, before its digest is recorded: a truncated body or an HTML page served with status 200 leaves nothing
behind, and the next try downloads again. A server that does not connect or stops sending for
``VIDEOML_ZOO_TIMEOUT`` seconds (30) is given up on; failures of the network are tried three times in all.

A mirror inside a cluster without internet, or a local server, replaces a library's root URL, laid out as it:
``VIDEOML_ZOO_URL`` PyTorchVideo's (``https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo``),
``VIDEOML_TORCHVISION_URL`` torchvision's (``https://download.pytorch.org/models``).

Kinetics-400 class names are not part of PyTorchVideo's published files: they are torchvision's (its Kinetics-400
weights' ``categories``, shipped with torchvision), whose order is the label index PyTorchVideo's checkpoints were
trained with (the class names are sorted; PyTorchVideo's published ``kinetics_classnames.json`` maps all 400 names to
these same indices, and MMAction2's ``label_map_k400.txt`` lists them in this order).
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from videoml.errors import VideomlError, first_line
from videoml.vocab import check

if TYPE_CHECKING:
    from videoml.models.weights import ModelCard

ZOO_PREFIX = "zoo:"
# Each library's download root, and the variable naming a mirror laid out like it (module doc)
ROOTS = {"pytorchvideo": ("https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo", "VIDEOML_ZOO_URL"),
         "torchvision": ("https://download.pytorch.org/models", "VIDEOML_TORCHVISION_URL")}


def kinetics400() -> tuple[str, ...]:
    """The Kinetics-400 class names in label order (module doc)."""
    from torchvision.models.video import R3D_18_Weights

    return tuple(R3D_18_Weights.KINETICS400_V1.meta["categories"])


@dataclass(frozen=True)
class ZooEntry:
    model: str  # registry name
    file: str  # below the library's root (ROOTS)
    top1: float | None  # Kinetics-400 validation, as the library publishes them (PyTorchVideo's model zoo table,
    top5: float | None  # MViT: its hub; torchvision: its weights' meta)
    views: int = 10  # the evaluation the numbers were measured with: temporal views x spatial crops
    crops: int = 3
    source: str = "pytorchvideo"  # whose weights: a key of ROOTS

    @property
    def published_digest(self) -> str | None:
        """The start of the file's SHA-256 where the library publishes it: torchvision names its files
        ``NAME-<first 8 hex digits>.pth`` (``torch.hub``'s ``check_hash`` convention); PyTorchVideo publishes none."""
        found = torch.hub.HASH_REGEX.search(self.file) if self.source == "torchvision" else None
        return found.group(1) if found else None


def _torchvision(model: str, file: str, top1: float, top5: float, views: int) -> ZooEntry:
    """torchvision's Kinetics-400 weights of ``model``: its weights enum's URL, acc@1 and acc@5, evaluated on
    ``views`` clips per video, one centre crop (the enum's ``_docs``: ``clips_per_video``)."""
    return ZooEntry(model, file, top1, top5, views=views, crops=1, source="torchvision")


ZOO = {
    "c2d_r50": ZooEntry("c2d_r50", "kinetics/C2D_8x8_R50.pyth", 71.46, 89.68),
    "i3d_r50": ZooEntry("i3d_r50", "kinetics/I3D_8x8_R50.pyth", 73.27, 90.70),
    "slow_r50": ZooEntry("slow_r50", "kinetics/SLOW_8x8_R50.pyth", 74.58, 91.63),
    "slowfast_r50": ZooEntry("slowfast_r50", "kinetics/SLOWFAST_8x8_R50.pyth", 76.94, 92.69),
    "slowfast_r101": ZooEntry("slowfast_r101", "kinetics/SLOWFAST_8x8_R101.pyth", 77.90, 93.27),
    "csn_r101": ZooEntry("csn_r101", "kinetics/CSN_32x2_R101.pyth", 77.00, 92.90),
    "r2plus1d_r50": ZooEntry("r2plus1d_r50", "kinetics/R2PLUS1D_16x4_R50.pyth", 76.01, 92.23),
    "x3d_xs": ZooEntry("x3d_xs", "kinetics/X3D_XS.pyth", 69.12, 88.63),
    "x3d_s": ZooEntry("x3d_s", "kinetics/X3D_S.pyth", 73.33, 91.27),
    "x3d_m": ZooEntry("x3d_m", "kinetics/X3D_M.pyth", 75.94, 92.72),
    "x3d_l": ZooEntry("x3d_l", "kinetics/X3D_L.pyth", None, None),
    "mvit_base_16x4": ZooEntry("mvit_base_16x4", "kinetics/MVIT_B_16x4.pyth", 78.9, None, views=5, crops=1),
    "efficient_x3d_xs": ZooEntry("efficient_x3d_xs", "kinetics/efficient_x3d_xs_original_form.pyth", 68.5, 88.0,
                                 views=10, crops=1),
    "efficient_x3d_s": ZooEntry("efficient_x3d_s", "kinetics/efficient_x3d_s_original_form.pyth", 73.0, 90.6,
                                views=10, crops=1),
    "r3d_18": _torchvision("r3d_18", "r3d_18-b3b3357e.pth", 63.2, 83.479, 5),
    "mc3_18": _torchvision("mc3_18", "mc3_18-a90a0ba3.pth", 63.96, 84.13, 5),
    "r2plus1d_18": _torchvision("r2plus1d_18", "r2plus1d_18-91a641e6.pth", 67.463, 86.175, 5),
    "s3d": _torchvision("s3d", "s3d-d76dad2f.pth", 68.368, 88.05, 1),
    "mvit_v1_b": _torchvision("mvit_v1_b", "mvit_v1_b-dbeb1030.pth", 78.477, 93.582, 5),
    "mvit_v2_s": _torchvision("mvit_v2_s", "mvit_v2_s-ae3be167.pth", 80.757, 94.665, 5),
    "swin3d_t": _torchvision("swin3d_t", "swin3d_t-7615ae03.pth", 77.715, 93.519, 12),
    "swin3d_s": _torchvision("swin3d_s", "swin3d_s-da41c237.pth", 79.521, 94.158, 12),
    "swin3d_b": _torchvision("swin3d_b", "swin3d_b_1k-24f7c7c6.pth", 79.427, 94.386, 12),
    "swin3d_b_22k": _torchvision("swin3d_b", "swin3d_b_22k-7c6ae6fa.pth", 81.643, 95.574, 12),
}


def zoo_entry(name: str) -> ZooEntry:
    name = name[len(ZOO_PREFIX):] if name.startswith(ZOO_PREFIX) else name
    check(ZOO_PREFIX + name, [ZOO_PREFIX + known for known in ZOO], "published weights")
    return ZOO[name]


def url_of(entry: ZooEntry) -> str:
    root, variable = ROOTS[entry.source]
    return f"{os.environ.get(variable, root).rstrip('/')}/{entry.file}"


def mirror_variable(entry: ZooEntry) -> str:
    return ROOTS[entry.source][1]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


TRIES = 3  # a download that fails for the network's sake is tried again, after 0.5 s, then 1 s


def stall_seconds() -> float:
    """How long a download may wait for the server to connect or to send more (``VIDEOML_ZOO_TIMEOUT``, 30 s)."""
    return float(os.environ.get("VIDEOML_ZOO_TIMEOUT", 30))


def _receive(url: str, into: Path, progress: bool) -> None:
    """``url`` into the file ``into``, complete: a server that stalls past :func:`stall_seconds` or sends less than
    the Content-Length it announced is an error. By hand because ``torch.hub.download_url_to_file`` waits forever on
    a stalled server and keeps a body shorter than its Content-Length."""
    import urllib.request

    from tqdm.auto import tqdm

    with urllib.request.urlopen(url, timeout=stall_seconds()) as response, open(into, "wb") as f:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        with tqdm(total=total, unit="B", unit_scale=True, disable=not progress, desc=into.name) as bar:
            for block in iter(lambda: response.read(1 << 20), b""):
                f.write(block)
                bar.update(len(block))
        if total is not None and f.tell() != total:
            raise ConnectionError(f"the server sent {f.tell()} of the {total} bytes it announced")


def _download(name: str, url: str, cached: Path, progress: bool, mirror: str) -> None:
    """The file at ``url`` as ``cached``, or nothing there: written aside, kept only when complete and a PyTorch
    checkpoint (a proxy's HTML page answered with 200 is not), tried :data:`TRIES` times."""
    import urllib.error

    cached.parent.mkdir(parents=True, exist_ok=True)
    part = cached.with_name(f"{cached.name}.{os.getpid()}.part")
    error = None
    try:
        for attempt in range(TRIES):
            if attempt:
                time.sleep(0.5 * 2 ** (attempt - 1))
            try:
                _receive(url, part, progress)
                error = None
                break
            except urllib.error.HTTPError as e:  # the server answered: trying again changes nothing
                error = e
                break
            except (OSError, ValueError) as e:  # no connection, a stall, a short body
                error = e
        if error is not None:
            raise VideomlError(f"zoo:{name}: cannot download {url} ({type(error).__name__}: {first_line(error)}); "
                               f"without internet access, copy the file into {cached.parent} or set {mirror} "
                               "to a mirror") from None
        _check_loads(name, part, f"the download from {url}")
        os.replace(part, cached)
    finally:
        part.unlink(missing_ok=True)


def _check_loads(name: str, path: Path, what: str) -> None:
    """A VideomlError unless ``path`` is a PyTorch checkpoint that loads (weights only)."""
    try:
        torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle, zip or torch's own errors: whatever it is, it is no checkpoint
        raise VideomlError(f"zoo:{name}: {what} is not a PyTorch checkpoint ({type(e).__name__}: {first_line(e)}; an "
                           "HTML page of a proxy or a login?)") from None


def fetch(name: str, progress: bool = True) -> Path:
    """The cached file of published weights ``name``, downloaded first if not cached; verified (module doc)."""
    entry = zoo_entry(name)
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(entry.file).name
    record = cached.with_name(cached.name + ".sha256")
    downloaded = not cached.is_file()
    if downloaded:
        _download(name, url_of(entry), cached, progress, mirror_variable(entry))
    digest = _sha256(cached)
    expected = entry.published_digest or (record.read_text().strip() if record.is_file() else None)
    if expected and not digest.startswith(expected):
        if downloaded:  # not kept: the next try downloads again
            cached.unlink()
        found = "the download from " + url_of(entry) if downloaded else str(cached)
        raise VideomlError(f"zoo:{name}: {found} has SHA-256 {digest[:16]}..., expected {expected[:16]}...: damaged "
                           f"or not the published file{'' if downloaded else '; delete it to download it again'}")
    if not record.is_file():  # the first use: trusted only once it loads (a file copied in by hand, too)
        if not downloaded:
            _check_loads(name, cached, f"{cached} (delete it to download it again)")
        record.write_text(digest + "\n")
    return cached


def load_zoo_model(name: str, progress: bool = True) -> tuple[nn.Module, "ModelCard"]:
    """The Kinetics-400 model of published weights ``name``, in eval mode, and its card."""
    from videoml.models.registry import build_model, model_input
    from videoml.models.weights import ModelCard, load_weights

    entry = zoo_entry(name)
    path = fetch(name, progress)
    classes = kinetics400()
    model = build_model(entry.model, len(classes))
    load_weights(model, path, strict_head=True)
    card = ModelCard(model=entry.model, classes=classes, input=model_input(entry.model), views=entry.views,
                     crops=entry.crops)
    return model.eval(), card


def weights_path(weights: str | os.PathLike) -> str:
    """A weights option as a file path: ``zoo:NAME`` fetched (module doc), anything else as given."""
    return str(fetch(str(weights))) if str(weights).startswith(ZOO_PREFIX) else str(weights)
