"""Hugging Face video classifiers by name (`hf:FOLDER`), from folders that `save_pretrained` writes for small random
configs of each family: their classes, input and head, their image processors' preprocessing against the processors
themselves on real corpus files, and the commands that take a model. Nothing here reaches the hub."""

import json

import pytest
import torch
from helpers import videoml

transformers = pytest.importorskip("transformers")

from videoml.data.transforms import normalize  # noqa: E402
from videoml.errors import VideomlError  # noqa: E402
from videoml.infer.clips import VideoClips  # noqa: E402
from videoml.infer.results import read_records  # noqa: E402
from videoml.models.registry import build_model, model_entry, model_input  # noqa: E402

CLASSES = ("archery", "bowling", "juggling")
IMAGENET = dict(image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])
SMALL = dict(hidden_size=48, num_hidden_layers=2, num_attention_heads=2, intermediate_size=96,
             id2label=dict(enumerate(CLASSES)), label2id={c: i for i, c in enumerate(CLASSES)})


def _folder(root, family: str):
    """A small random model of ``family`` and the image processor its published checkpoints ship, saved as
    `save_pretrained` writes them (VideoMAE's and TimeSformer's Kinetics checkpoints use VideoMAE's processor)."""
    torch.manual_seed(0)
    processor = transformers.VideoMAEImageProcessor(size={"shortest_edge": 128},
                                                    crop_size={"height": 112, "width": 112}, **IMAGENET)
    if family == "videomae":
        config = transformers.VideoMAEConfig(image_size=112, num_frames=8, tubelet_size=2, **SMALL)
    elif family == "timesformer":
        config = transformers.TimesformerConfig(image_size=112, num_frames=4, **SMALL)
    else:  # ViViT's own processor rescales to [-1, 1] before it normalises
        config = transformers.VivitConfig(image_size=112, num_frames=8, tubelet_size=[2, 16, 16], **SMALL)
        processor = transformers.VivitImageProcessor(size={"shortest_edge": 128},
                                                     crop_size={"height": 112, "width": 112})
    folder = root / family
    transformers.AutoModelForVideoClassification.from_config(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module", params=["videomae", "timesformer", "vivit"])
def folder(request, tmp_path_factory):
    return _folder(tmp_path_factory.mktemp("hf"), request.param)


def test_a_folder_gives_the_model_its_classes_input_and_head(folder):
    name = f"hf:{folder}"
    entry, spec = model_entry(name), model_input(name)
    config = json.loads((folder / "config.json").read_text())
    assert entry.family == "huggingface" and spec.frames == config["num_frames"] and spec.crop == 112
    assert (spec.eval_scale, spec.resize) == (128, "huggingface")
    clip = torch.randn(2, 3, spec.frames, 112, 112)
    reference = transformers.AutoModelForVideoClassification.from_pretrained(folder).eval()
    model = build_model(name, 3).eval()
    with torch.no_grad():
        expected = reference(pixel_values=clip.transpose(1, 2)).logits
        assert torch.equal(model(clip), expected)  # its own head: the folder's weights, (B, C, T, H, W) in
    five = build_model(name, 5)  # fine-tuning: a new head, the rest as published
    assert five(clip).shape == (2, 5)
    kept = {k: v for k, v in five.state_dict().items() if "classifier" not in k}
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in kept.items())


def _corpus_files():
    from videoml.data.corpus import corpus

    try:
        return [f for f in corpus() if f.name in ("base_pal_wide.mpg", "VID_20191220_170832.mp4", "motion.mov")]
    except VideomlError as e:
        pytest.skip(f"no corpus here: {e}")


def test_evaluation_clips_are_the_image_processors_output_on_real_files(folder):
    """videoml's evaluation clip against the folder's own image processor on the same decoded frames (VideoMAE's
    processor resizes with torchvision, antialiased: the same numbers; ViViT's with PIL: within a level), and the
    model's logits on both."""
    from videoml.data.decoding import open_video

    name = f"hf:{folder}"
    spec, processor = model_input(name), transformers.AutoImageProcessor.from_pretrained(folder)
    model = build_model(name, 3).eval()
    pil = type(processor).__name__ == "VivitImageProcessor"
    for path in _corpus_files():
        clips = VideoClips([path], spec, views=2)
        item = clips.read(0, str(path))
        ours = normalize(item.video, spec.mean, spec.std)
        with open_video(path) as video:
            frames = video.get_clips(clips.clip_indices(video.timestamps)).data
        inputs = [list(clip.numpy()) if pil else list(clip.permute(0, 3, 1, 2)) for clip in frames]
        reference = torch.as_tensor(processor(inputs, return_tensors="pt")["pixel_values"]).transpose(1, 2)
        assert ours.shape == reference.shape, path
        difference = (ours - reference).abs()
        assert difference.max() <= (1.01 / 255 / min(spec.std) if pil else 1e-5), path  # measured: 1 level
        with torch.no_grad():
            a, b = model(ours), model(reference)
        assert (a - b).abs().max() <= (1e-3 if pil else 1e-4) * b.abs().max(), path  # measured: 1.7e-4, 0


def test_missing_and_unusable_models_are_one_line_errors(tmp_path):
    with pytest.raises(VideomlError, match=r"^hf:/nowhere/model: no such folder$"):
        model_entry("hf:/nowhere/model")
    with pytest.raises(VideomlError, match=r"^hf:someone/videomae-kinetics: not in the Hugging Face cache, and the "
                                           r"hub is not reached \(HF_HUB_OFFLINE\): download it where"):
        model_entry("hf:someone/videomae-kinetics")
    bert = tmp_path / "bert"
    transformers.BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                            intermediate_size=64).save_pretrained(bert)
    with pytest.raises(VideomlError, match=r"hf:.*bert: a bert model; video classifiers by name are videomae, "):
        model_entry(f"hf:{bert}")
    bare = tmp_path / "bare"
    transformers.VideoMAEConfig(image_size=32, num_frames=2, **SMALL).save_pretrained(bare)
    with pytest.raises(VideomlError, match=r"hf:.*bare: cannot read its image processor \(preprocessor_config.json"):
        model_entry(f"hf:{bare}")


@pytest.mark.slow
def test_infer_extract_and_export_take_a_hugging_face_model(small_synth, tmp_path):
    folder = _folder(tmp_path, "videomae")
    video = str(small_synth.root / small_synth.manifest()[0]["path"])
    out = tmp_path / "preds.jsonl"
    result = videoml("infer", video, "-m", f"hf:{folder}", "-o", str(out), "--num-workers", "0")
    assert result.returncode == 0, result.stderr[-3000:]
    [record] = read_records(out)
    assert record["status"] == "ok" and record["clips"] == 15  # VideoMAE's Kinetics evaluation: 5 views x 3 crops
    assert {entry["label"] for entry in record["top_k"]} == set(CLASSES)
    result = videoml("extract", video, "-m", f"hf:{folder}", "-o", str(tmp_path / "features"), "--views", "2",
                     "--crops", "1", "--num-workers", "0")
    assert result.returncode == 0, result.stderr[-3000:]
    from videoml.infer.features import load_features

    assert load_features(tmp_path / "features").clips[0].shape == (2, 48)  # the pooled last hidden state
    from videoml.api import load_model
    from videoml.models.weights import save_checkpoint

    model = load_model(f"hf:{folder}")
    checkpoint = tmp_path / "model.ckpt"
    save_checkpoint(build_model(f"hf:{folder}", 3), model.card, checkpoint)
    result = videoml("export", str(checkpoint), "-f", "pt2", "-o", str(tmp_path / "export"), "--sample", video)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "verified" in result.stdout + result.stderr


def test_layer_wise_learning_rates_fall_from_the_head_to_the_embeddings(tmp_path):
    from videoml.recipe import layer_decay_groups

    model = build_model(f"hf:{_folder(tmp_path, 'videomae')}", 3)
    groups = layer_decay_groups(model.named_parameters(), 1e-3, 0.5)
    lr = {id(p): g["lr"] for g in groups for p in g["params"]}
    named = dict(model.named_parameters())
    assert sum(len(g["params"]) for g in groups) == len(named)  # every parameter once
    expected = {"hf.videomae.embeddings.patch_embeddings.projection.weight": 1e-3 * 0.5 ** 3,  # 2 layers + 1
                "hf.videomae.encoder.layer.0.attention.attention.query.weight": 1e-3 * 0.5 ** 2,
                "hf.videomae.encoder.layer.1.output.dense.weight": 1e-3 * 0.5,
                "hf.fc_norm.weight": 1e-3, "hf.classifier.weight": 1e-3}
    assert {name: lr[id(named[name])] for name in expected} == pytest.approx(expected)
    with pytest.raises(VideomlError, match="model.layer_decay needs a transformer"):
        layer_decay_groups(build_model("x3d_tiny", 3).named_parameters(), 1e-3, 0.75)


def test_models_lists_the_video_classifiers_in_the_hugging_face_cache(tmp_path):
    import shutil

    from helpers import hf_cache

    videomae = _folder(tmp_path, "videomae")
    env = hf_cache(tmp_path / "hf", "someone/tiny-videomae",
                   lambda folder: shutil.copytree(videomae, folder, dirs_exist_ok=True))
    hf_cache(tmp_path / "hf", "someone/tiny-bert", transformers.BertConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64).save_pretrained)
    listing = videoml("models", "hf:*", env=env)
    assert listing.returncode == 0, listing.stderr
    rows = [line.split() for line in listing.stdout.splitlines()[1:]]
    assert [row[:3] for row in rows] == [["hf:someone/tiny-videomae", "8x4", "112px"]]  # the BERT model is no video
    assert rows[0][3] == "huggingface"  # classifier; the input from the cached config and image processor
