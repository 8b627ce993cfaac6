"""The conformance corpus: real video files that nobody in this project wrote, plus generated files for the classes
no package ships.

Real files come from Debian packages that ship sample media, listed in ``data/corpus/debian.json`` with the package
version, the file's path inside it, its SHA-256, its licence and what it exercises. They are fetched with
``apt-get download`` (nothing is installed), unpacked with ``dpkg-deb``, checked against their checksums and cached
(``$VIDEOML_CORPUS_DIR``, else ``<cache>/corpus``); a second fetch costs nothing. Generated files are made with
FFmpeg's command line (and PyAV, for display matrices FFmpeg 5's command line cannot write) from its own test
source, and cached likewise; :data:`GENERATED` says what each exercises.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from videoml.data.decoding import default_cache_dir
from videoml.errors import VideomlError

MANIFEST = Path(__file__).resolve().parents[2] / "data" / "corpus" / "debian.json"
_SOURCE = "testsrc2=size=160x96:rate=25"
_X264 = ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"]

# name -> (what it exercises, ffmpeg arguments after the input; "{src}" for a generated H.264 source)
GENERATED = {
    "edit_list.mp4": ("MP4 with an edit list: a stream copy cut at 1.3 s (`-ss 1.3 -c copy`) keeps earlier packets "
                      "the decoder must not show", ["-ss", "1.3", "-i", "{src}", "-c", "copy"]),
    "open_gop.mp4": ("open-GOP H.264 (non-IDR key frames, 3 B-frames)",
                     ["-f", "lavfi", "-i", _SOURCE, "-t", "4", *_X264, "-bf", "3",
                      "-x264-params", "open-gop=1:keyint=12:min-keyint=12:scenecut=0"]),
    "h264_10bit.mp4": ("10-bit H.264 (yuv420p10le)", ["-f", "lavfi", "-i", _SOURCE, "-t", "2", "-c:v", "libx264",
                                                      "-preset", "veryfast", "-pix_fmt", "yuv420p10le"]),
    "hevc_10bit.mkv": ("10-bit HEVC with B-frames in Matroska", ["-f", "lavfi", "-i", _SOURCE, "-t", "2", "-c:v",
                                                                 "libx265", "-preset", "veryfast", "-pix_fmt",
                                                                 "yuv420p10le", "-x265-params", "log-level=error"]),
    "vfr.mp4": ("variable frame rate H.264 (frames dropped in a pattern, time stamps kept)",
                ["-f", "lavfi", "-i", _SOURCE, "-t", "3", "-vf", "select='not(mod(n\\,3))+not(mod(n\\,5))'",
                 "-fps_mode", "vfr", *_X264, "-bf", "2"]),
    "two_video_streams.mkv": ("two video streams of different sizes (the first is read)",
                              ["-f", "lavfi", "-i", _SOURCE, "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10",
                               "-t", "2", "-map", "0:v", "-map", "1:v", *_X264]),
    "odd_size.mp4": ("H.264 4:4:4 of odd size (97x61)", ["-f", "lavfi", "-i", "testsrc2=size=97x61:rate=25", "-t",
                                                         "2", "-c:v", "libx264", "-preset", "veryfast",
                                                         "-pix_fmt", "yuv444p"]),
    "mjpeg_full_range.avi": ("Motion JPEG in AVI, full-range yuvj420p", ["-f", "lavfi", "-i", _SOURCE, "-t", "2",
                                                                         "-c:v", "mjpeg", "-pix_fmt", "yuvj420p"]),
    "raw_bgr24.avi": ("uncompressed video in AVI (bgr24)", ["-f", "lavfi", "-i", _SOURCE, "-t", "1", "-c:v",
                                                            "rawvideo", "-pix_fmt", "bgr24"]),
    "mpeg4_bframes.avi": ("MPEG-4 Part 2 in AVI with (unpacked) B-frames", ["-f", "lavfi", "-i", _SOURCE, "-t", "3",
                                                                           "-c:v", "mpeg4", "-bf", "2", "-g", "12"]),
    "vp9.webm": ("VP9 in WebM (alternate reference frames)", ["-f", "lavfi", "-i", _SOURCE, "-t", "2", "-c:v",
                                                             "libvpx-vp9", "-deadline", "realtime", "-g", "20"]),
    "av1.mkv": ("AV1 in Matroska", ["-f", "lavfi", "-i", _SOURCE, "-t", "1", "-c:v", "libaom-av1", "-cpu-used", "8",
                                    "-g", "12"]),
    "mpeg2.ts": ("MPEG-2 video in MPEG-TS", ["-f", "lavfi", "-i", _SOURCE, "-t", "2", "-c:v", "mpeg2video", "-bf",
                                             "2", "-g", "12"]),
}
# Files made from others: name -> (what it exercises, how)
DERIVED = {
    "joined.ts": "MPEG-TS with a time-stamp discontinuity: two H.264 TS files (-bf 2 -g 12) joined with `cat`",
    "rotate_90.mp4": "H.264 with a display matrix turning it 90 degrees (phone recordings)",
    "rotate_180.mp4": "H.264 with a display matrix turning it 180 degrees",
    "truncated.mp4": "H.264 MP4 (index first) cut at 60 % of its size",
    "corrupt.mkv": "H.264 in Matroska with 64 zeroed bytes in every 4,000 from the middle on",
}


def corpus_dir() -> Path:
    return Path(os.environ.get("VIDEOML_CORPUS_DIR") or default_cache_dir() / "corpus")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _run(command: list[str], what: str, cwd=None) -> None:
    try:
        run = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=cwd)
    except FileNotFoundError:
        raise VideomlError(f"{command[0]} is needed to {what}") from None
    if run.returncode:
        raise VideomlError(f"{what} failed: {(run.stderr.strip().splitlines() or ['?'])[-1]}")


def fetch_debian(root: Path, manifest: Path = MANIFEST) -> list[Path]:
    """The manifest's files under ``root/debian/<package>/``, downloaded only where missing or changed."""
    paths = []
    for package in json.loads(manifest.read_text())["packages"]:
        folder = root / "debian" / package["package"]
        targets = [(folder / Path(f["path"]).name, f) for f in package["files"]]
        if not all(t.exists() and _sha256(t) == f["sha256"] for t, f in targets):
            _fetch_package(package, folder, targets)
        paths += [t for t, _ in targets]
    return paths


def _fetch_package(package: dict, folder: Path, targets: list) -> None:
    name, version = package["package"], package["version"]
    with tempfile.TemporaryDirectory() as tmp:
        _run(["apt-get", "download", "-q", "-o", f"Dir::Cache::archives={tmp}", f"{name}={version}"],
             f"downloading Debian package {name}={version} (after apt-get update)", cwd=tmp)
        debs = list(Path(tmp).glob("*.deb"))
        _run(["dpkg-deb", "-x", str(debs[0]), f"{tmp}/root"], f"unpacking {debs[0].name}")
        folder.mkdir(parents=True, exist_ok=True)
        for target, entry in targets:
            source = Path(tmp) / "root" / entry["path"]
            if not source.exists() or _sha256(source) != entry["sha256"]:
                raise VideomlError(f"{name}={version}: {entry['path']} is missing or differs from the manifest")
            shutil.copyfile(source, target)


def _ffmpeg(arguments: list[str], out: Path, what: str) -> None:
    _run(["ffmpeg", "-v", "error", "-nostdin", "-y", *arguments, str(out)], f"making {what}")


def _h264_source(folder: Path, name: str, container: str = "mp4") -> Path:
    path = folder / f"source_{name}.{container}"
    if not path.exists():
        _ffmpeg(["-f", "lavfi", "-i", _SOURCE, "-t", "4", *_X264, "-bf", "2", "-g", "12",
                 *(["-movflags", "+faststart"] if container == "mp4" else [])], path, path.name)
    return path


def _with_rotation(source: Path, out: Path, degrees: int) -> None:
    """A stream copy of ``source`` carrying a display matrix (FFmpeg 5's command line cannot write one)."""
    import av

    with av.open(str(source)) as inp, av.open(str(out), "w") as dst:
        stream = dst.add_stream_from_template(inp.streams.video[0])
        stream.set_display_rotation(degrees)
        for packet in inp.demux(inp.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                dst.mux(packet)


def _damaged(source: Path, out: Path, cut: float | None = None) -> None:
    data = bytearray(source.read_bytes())
    if cut is not None:
        data = data[: int(len(data) * cut)]
    else:
        for at in range(len(data) // 2, len(data) - 64, 4000):
            data[at:at + 64] = bytes(64)
    out.write_bytes(bytes(data))


def _derive(name: str, folder: Path, out: Path) -> None:
    if name == "joined.ts":
        a, b = _h264_source(folder, "a", "ts"), _h264_source(folder, "b", "ts")
        out.write_bytes(a.read_bytes() + b.read_bytes())
    elif name.startswith("rotate_"):
        _with_rotation(_h264_source(folder, "main"), out, int(name.split("_")[1].split(".")[0]))
    elif name == "truncated.mp4":
        _damaged(_h264_source(folder, "main"), out, cut=0.6)
    elif name == "corrupt.mkv":
        _damaged(_h264_source(folder, "mkv", "mkv"), out)


def generate(root: Path) -> list[Path]:
    """The generated files under ``root/generated/``, made where missing."""
    folder = root / "generated"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, (what, arguments) in GENERATED.items():
        out = folder / name
        if not out.exists():
            source = str(_h264_source(folder, "main"))
            _ffmpeg([a.replace("{src}", source) for a in arguments], out, f"{name} ({what})")
        paths.append(out)
    for name in DERIVED:
        out = folder / name
        if not out.exists():
            _derive(name, folder, out)
        paths.append(out)
    return paths


def corpus(root: Path | None = None) -> list[Path]:
    """Every corpus file (fetched and generated), made or downloaded where missing. Processes that ask at once
    (parallel test workers, two commands) take turns on a lock in ``root``: none reads a file another is writing."""
    from filelock import FileLock

    root = root or corpus_dir()
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(root / ".lock"):
        return fetch_debian(root) + generate(root)


def describe(path: Path, manifest: Path = MANIFEST) -> str:
    """What a corpus file exercises (from the manifest or the generator's list); "" for other files."""
    for package in json.loads(manifest.read_text())["packages"]:
        for entry in package["files"]:
            if Path(entry["path"]).name == path.name and path.parent.name == package["package"]:
                return f"{entry['exercises']} [{package['package']} {package['version']}, {package['licence']}]"
    generated = {name: what for name, (what, _) in GENERATED.items()} | DERIVED
    return f"{generated[path.name]} [generated]" if path.parent.name == "generated" and path.name in generated else ""
