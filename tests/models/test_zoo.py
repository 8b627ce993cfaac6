"""Published weights by name (`zoo:NAME`), end to end against a zoo served on 127.0.0.1: download into the torch hub
cache, reuse of the cache (offline too), checksum failures, and the names in the commands that take a model."""

import functools
import http.server
import io
import os
import shutil
import threading
import time

import pytest
import torch
from helpers import videoml
from mutate import CASES, SEED, mutate

from videoml.api import create_model
from videoml.errors import VideomlError
from videoml.infer.features import load_features
from videoml.infer.results import read_records
from videoml.models.registry import build_model
from videoml.models.zoo import ZOO, kinetics400


class _Zoo:
    """A folder served over HTTP on the loopback interface, counting the requests."""

    def __init__(self, root):
        self.requests = []
        zoo = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):
                zoo.requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                      functools.partial(Handler, directory=str(root)))
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def zoo(tmp_path, monkeypatch):
    """x3d_xs's published file, as generated weights, served like the real zoo; a private torch hub cache."""
    torch.manual_seed(0)
    model = build_model("x3d_xs", 400)
    served = tmp_path / "served" / ZOO["x3d_xs"].file
    served.parent.mkdir(parents=True)
    torch.save({"model_state": model.state_dict()}, served)  # the layout of PyTorchVideo's .pyth files
    server = _Zoo(tmp_path / "served")
    monkeypatch.setenv("VIDEOML_ZOO_URL", server.url)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    yield server, model, served
    server.stop()


def _same_weights(a, b) -> bool:
    return all(torch.equal(a.state_dict()[k], v) for k, v in b.state_dict().items())


def test_zoo_models_answer_with_kinetics_class_names_in_the_published_label_order():
    names = kinetics400()
    assert len(names) == len(set(names)) == 400
    # indices from PyTorchVideo's published label map (kinetics_classnames.json, pyslowfast/dataset/class_names)
    known = {0: "abseiling", 5: "archery", 100: "drinking", 115: "eating ice cream", 166: "javelin throw",
             208: "passing American football (in game)", 209: "passing American football (not in game)",
             290: "sharpening knives", 358: "throwing discus", 399: "zumba"}
    assert {i: names[i] for i in known} == known


def test_models_lists_every_architecture_with_its_input_and_published_weights():
    from videoml.models.registry import MODELS

    listing = videoml("models")
    assert listing.returncode == 0, listing.stderr
    rows = {line.split()[0]: line for line in listing.stdout.splitlines()[1:]}
    assert sorted(rows) == sorted(MODELS)
    # the input (training crop / test crop), PyTorchVideo's numbers, whose
    assert rows["x3d_s"].split()[1:8] == ["13x6", "160px/182", "zoo:x3d_s", "73.33", "/", "91.27", "(10x3)"]
    assert rows["x3d_s"].split()[8] == "pytorchvideo" and rows["r3d_18"].split()[1:4] == ["16@15fps", "112px",
                                                                                          "zoo:r3d_18"]
    assert "zoo:swin3d_b_22k" in listing.stdout  # a model with two published weights: a row each
    assert "zoo:" not in rows["x3d_tiny"]  # no published weights
    some = videoml("models", "slowfast*")
    assert [line.split()[0] for line in some.stdout.splitlines()[1:]] == ["slowfast_r50", "slowfast_r101"]
    none = videoml("models", "nothing*")
    assert none.returncode == 2
    assert none.stderr.strip() == "videoml: error: no model matches 'nothing*' (see 'videoml models')"


def test_published_weights_download_once_then_load_from_the_cache_offline(zoo, tmp_path):
    server, published, _ = zoo
    model = create_model("x3d_xs", 400, weights="zoo:x3d_xs")
    assert _same_weights(model, published)
    cached = tmp_path / "torch" / "hub" / "checkpoints" / "X3D_XS.pyth"
    assert cached.is_file() and len((cached.parent / "X3D_XS.pyth.sha256").read_text().strip()) == 64
    assert server.requests == ["/kinetics/X3D_XS.pyth"]
    server.stop()  # offline: the cache is enough
    seven = create_model("x3d_xs", 7, weights="zoo:x3d_xs").state_dict()  # fine-tuning: a new 7-class head
    assert all(torch.equal(seven[k], v) for k, v in published.state_dict().items() if not k.startswith("blocks.5.proj"))
    reloaded = create_model("x3d_xs", 400, weights="zoo:x3d_xs")
    assert _same_weights(reloaded, published) and server.requests == ["/kinetics/X3D_XS.pyth"]


def test_a_damaged_cache_or_a_different_download_fails_its_checksum(zoo, tmp_path):
    server, _, served = zoo
    create_model("x3d_xs", 400, weights="zoo:x3d_xs")
    cached = tmp_path / "torch" / "hub" / "checkpoints" / "X3D_XS.pyth"
    data = bytearray(cached.read_bytes())
    data[-100] ^= 0xFF
    cached.write_bytes(bytes(data))
    with pytest.raises(VideomlError, match=r"zoo:x3d_xs: .*X3D_XS.pyth has SHA-256 .*, expected .*delete it"):
        create_model("x3d_xs", 400, weights="zoo:x3d_xs")
    cached.unlink()  # downloaded again, but the zoo now serves other bytes than the first time
    torch.save({"model_state": build_model("x3d_xs", 400).state_dict()}, served)
    with pytest.raises(VideomlError, match="the download from http://127.0.0.1:.* has SHA-256"):
        create_model("x3d_xs", 400, weights="zoo:x3d_xs")
    assert not cached.exists()  # not kept


def test_unreachable_and_unknown_weights_are_one_line_errors(zoo, tmp_path):
    server, _, _ = zoo
    server.stop()
    with pytest.raises(VideomlError, match=r"zoo:x3d_xs: cannot download http://127.0.0.1:\d+/kinetics/X3D_XS.pyth "
                                           r"\(URLError: .*\); without internet access, copy the file into"):
        create_model("x3d_xs", 400, weights="zoo:x3d_xs")
    with pytest.raises(VideomlError, match="unknown published weights 'zoo:x3d_xxl' \\(known: zoo:"):
        create_model("x3d_xs", 400, weights="zoo:x3d_xxl")


@pytest.mark.slow
def test_infer_and_extract_take_published_weights_by_name(zoo, small_synth, tmp_path):
    server, published, _ = zoo
    video = str(small_synth.root / small_synth.manifest()[0]["path"])
    env = {"VIDEOML_ZOO_URL": server.url, "TORCH_HOME": str(tmp_path / "torch")}
    out = tmp_path / "preds.jsonl"
    result = videoml("infer", video, "-m", "zoo:x3d_xs", "-o", str(out), "--views", "2", "--crops", "1",
                     "--num-workers", "0", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    [record] = read_records(out)
    assert record["status"] == "ok" and record["clips"] == 2 and record["top_k"][0]["label"] in kinetics400()
    result = videoml("extract", video, "-m", "zoo:x3d_xs", "-o", str(tmp_path / "features"), "--views", "2",
                     "--crops", "1", "--num-workers", "0", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert load_features(tmp_path / "features").clips[0].shape == (2, published.blocks[-1].proj.in_features)
    assert server.requests == ["/kinetics/X3D_XS.pyth"]  # the second command read the cache
    assert os.path.isfile(tmp_path / "torch" / "hub" / "checkpoints" / "X3D_XS.pyth")


class _BadServer:
    """A zoo on 127.0.0.1 that answers every request wrongly: ``truncate`` (announces more bytes than it sends),
    ``html`` (a login page with status 200), ``stall`` (accepts, then sends nothing), or ``body`` served with a
    Content-Length off by ``lie`` bytes; counts the requests."""

    def __init__(self, kind, body: bytes, lie: int = 1000):
        self.requests, server = 0, self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests += 1
                if kind == "stall":
                    time.sleep(3)
                    return
                data = b"<html><body>Please log in</body></html>" if kind == "html" else body
                self.send_response(200)
                self.send_header("Content-Length", str(len(data) + (lie if kind == "truncate" else 0)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("kind, words", [("truncate", "sent"), ("html", "is not a PyTorch checkpoint"),
                                         ("stall", "timed out")])
def test_a_server_that_truncates_lies_or_stalls_leaves_nothing_behind(zoo, tmp_path, monkeypatch, kind, words):
    _, model, served = zoo
    bad = _BadServer(kind, served.read_bytes())
    monkeypatch.setenv("VIDEOML_ZOO_URL", bad.url)
    monkeypatch.setenv("VIDEOML_ZOO_TIMEOUT", "1")
    try:
        started = time.monotonic()
        with pytest.raises(VideomlError, match=f"zoo:x3d_xs: .*{words}") as error:
            create_model("x3d_xs", 400, weights="zoo:x3d_xs")
        assert time.monotonic() - started < 20
        assert "\n" not in str(error.value)
        assert bad.requests == (1 if kind == "html" else 3)  # the network's failures are tried again, a page is not
    finally:
        bad.stop()
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    assert not cache.exists() or list(cache.iterdir()) == []  # no file, no digest: the next try downloads again
    monkeypatch.setenv("VIDEOML_ZOO_URL", zoo[0].url)  # the mirror fixed: it just works
    assert _same_weights(create_model("x3d_xs", 400, weights="zoo:x3d_xs"), model)


@pytest.mark.slow
def test_weights_served_mutated_load_as_served_or_leave_nothing_behind(zoo, tmp_path, monkeypatch):
    """The fuzz campaign's downloads: the published file truncated, bit-flipped, zeroed, shuffled or given a random
    head (tests/mutate.py), announced with its true length, a larger or a smaller one. Each ends in weights that are
    exactly what was served or in one line, with no file or digest left for the next try to trust."""
    _, _, served = zoo
    published, cache = served.read_bytes(), tmp_path / "torch" / "hub" / "checkpoints"
    monkeypatch.setenv("VIDEOML_ZOO_TIMEOUT", "1")
    for seed in range(SEED * 1000, SEED * 1000 + max(CASES // 20, 6)):
        body, what, _ = mutate(published, seed)
        lie = (0, 100, -100)[seed % 3]
        bad = _BadServer("truncate", body, lie)
        monkeypatch.setenv("VIDEOML_ZOO_URL", bad.url)
        try:
            model = create_model("x3d_xs", 400, weights="zoo:x3d_xs")
        except VideomlError as e:
            assert "\n" not in str(e), f"seed {seed} ({what}, length {lie:+d}): {e}"
            assert not cache.exists() or list(cache.iterdir()) == [], f"seed {seed} ({what}, length {lie:+d})"
        else:  # what a mutation left loadable (a flipped bit in a weight) is what was served, recorded as such
            assert lie == 0 and (cache / served.name).read_bytes() == body, f"seed {seed} ({what})"
            state = torch.load(io.BytesIO(body), weights_only=True)["model_state"]
            assert state.keys() == model.state_dict().keys()
            assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
        finally:
            bad.stop()
            shutil.rmtree(cache, ignore_errors=True)


@pytest.mark.filterwarnings("ignore:The 'torchvision.transforms._:UserWarning")  # the tutorial's own imports
def test_zoo_evaluation_clips_are_pytorchvideos_transforms_of_the_same_frames():
    """videoml's evaluation clip for a PyTorchVideo zoo model against PyTorchVideo's own evaluation transforms (its
    hub tutorial: /255, NormalizeVideo, ShortSideScale, CenterCropVideo, in float) on the same decoded frames of real
    corpus files. Clips leave the decoding workers as uint8 (a quarter of the bytes to move to the device), so the
    resized pixels are rounded: at most half a level, 0.5 / 255 / std after normalisation; the logits stay within
    2e-3 of the largest (measured: under 8e-4)."""
    from pytorchvideo.transforms import ShortSideScale
    from torchvision.transforms._transforms_video import CenterCropVideo, NormalizeVideo

    from videoml.data.corpus import corpus
    from videoml.data.decoding import open_video
    from videoml.data.transforms import normalize
    from videoml.infer.clips import VideoClips
    from videoml.models.registry import model_input

    try:
        files = [f for f in corpus() if f.name in ("base_pal_wide.mpg", "VID_20191220_170832.mp4", "motion.mov")]
    except VideomlError as e:
        pytest.skip(f"no corpus here: {e}")
    spec = model_input("x3d_s")
    torch.manual_seed(0)
    model = build_model("x3d_s", 400).eval()
    for path in files:
        clips = VideoClips([path], spec, views=2)
        item = clips.read(0, str(path))
        ours = normalize(item.video, spec.mean, spec.std)
        with open_video(path) as video:
            frames = video.get_clips(clips.clip_indices(video.timestamps)).data  # (views, T, H, W, 3) as stored
        reference = torch.stack([CenterCropVideo(spec.eval_crop)(ShortSideScale(spec.eval_scale)(
            NormalizeVideo(spec.mean, spec.std)(clip.permute(3, 0, 1, 2).float() / 255))) for clip in frames])
        assert ours.shape == reference.shape == (2, 3, 13, 182, 182), path
        assert (ours - reference).abs().max() <= 0.5 / 255 / min(spec.std) + 1e-5, path
        with torch.no_grad():
            a, b = model(ours), model(reference)
        assert (a - b).abs().max() <= 2e-3 * b.abs().max(), path
