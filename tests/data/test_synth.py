import json
import math

import numpy as np
import pytest
from helpers import SMALL, decode_all, decord3

from videoml.data.decoding import backend_available
from videoml.data.synth import MOTIONS, SynthConfig, generate, object_state, plan_video, split_counts
from videoml.errors import UsageError, VideomlError


def _object_mask(frame: np.ndarray, record: dict) -> np.ndarray:
    """Pixels closer to the object's colour than to the background's."""
    f = frame.astype(np.int32)
    to_object = np.abs(f - record["object_rgb"]).sum(-1)
    to_background = np.abs(f - record["background_rgb"]).sum(-1)
    return to_object < to_background


def _measure(frame: np.ndarray, record: dict) -> dict:
    """The object's centroid, area and radial signature (max radius per angle bin), from pixels alone.

    Background pixels that happen to match the object's colour are dropped when they lie far from the bulk of the
    object's pixels (over 3x their median distance from the median point)."""
    ys, xs = np.nonzero(_object_mask(frame, record))
    distance = np.hypot(ys - np.median(ys), xs - np.median(xs))
    near = distance <= 3 * np.median(distance)
    ys, xs = ys[near], xs[near]
    mask = np.zeros(frame.shape[:2], dtype=bool)
    mask[ys, xs] = True
    cx, cy = xs.mean(), ys.mean()
    angle = np.arctan2(ys - cy, xs - cx)
    bins = ((angle + math.pi) / (2 * math.pi) * 90).astype(int) % 90
    signature = np.zeros(90)
    np.maximum.at(signature, bins, np.hypot(ys - cy, xs - cx))
    return {"x": cx, "y": cy, "area": mask.sum(), "signature": signature}


def _turn(a: np.ndarray, b: np.ndarray) -> float:
    """Signed rotation (radians, image coordinates: positive = clockwise on screen) that best maps signature a to b,
    searched within +-45 degrees: the steps measured are far smaller, and a shape close to symmetric can match itself
    half a turn away."""
    shifts = range(-len(a) // 8, len(a) // 8 + 1)
    scores = [np.dot(np.roll(a, s), b) for s in shifts]
    return shifts[int(np.argmax(scores))] * 2 * math.pi / len(a)


def test_labels_match_the_motion_seen_in_decoded_frames(small_synth):
    records = small_synth.manifest()
    assert {r["class"] for r in records} == set(MOTIONS)
    for record in records:
        frames, _ = decode_all(small_synth.root / record["path"])
        first, last = _measure(frames[0], record), _measure(frames[-1], record)
        dx, dy = last["x"] - first["x"], last["y"] - first["y"]
        growth = last["area"] / first["area"]
        # rotation summed over short steps, each far below any symmetry of the shape
        steps = [_measure(frames[i], record)["signature"] for i in range(0, len(frames), 3)]
        turn = sum(_turn(a, b) for a, b in zip(steps, steps[1:]))
        moving, direction = MOTIONS[record["class"]]
        observed = {
            "x": (abs(dx) > 8, np.sign(dx)),
            "y": (abs(dy) > 8, np.sign(dy)),
            "scale": (abs(math.log(growth)) > 0.3, np.sign(math.log(growth))),
            "angle": (abs(turn) > 0.3, np.sign(turn)),
        }
        for prop, (moved, sign) in observed.items():
            if prop == moving:
                assert moved and sign == direction, (record["path"], prop, dx, dy, growth, turn)
            elif prop != "angle":  # a rotating irregular shape shifts its centroid and area a little, never much
                assert not moved, (record["path"], prop, dx, dy, growth)


def test_the_object_is_lighter_than_its_background_in_every_frame(small_synth):
    for record in small_synth.manifest():
        frames, _ = decode_all(small_synth.root / record["path"])
        level = frames.mean(-1)
        for frame, lum in zip(frames, level):
            mask = _object_mask(frame, record)
            assert lum[mask].mean() - lum[~mask].mean() > 60, record["path"]


def test_a_single_frame_does_not_tell_the_class_but_two_frames_do():
    config = SynthConfig(classes=tuple(MOTIONS), videos_per_class=100, seed=11)
    records = [plan_video(config, i) for i in range(800)]
    rng = np.random.default_rng(0)
    labels = np.array([r["label"] for r in records])

    def nearest_mean_accuracy(features: np.ndarray) -> float:
        features = (features - features.mean(0)) / features.std(0)
        train, test = np.arange(600), np.arange(600, 800)
        means = np.stack([features[train][labels[train] == c].mean(0) for c in range(8)])
        predicted = np.argmin(((features[test][:, None] - means) ** 2).sum(-1), axis=1)
        return float((predicted == labels[test]).mean())

    def state(r, i):
        s = object_state(r, i)
        return [s["x"], s["y"], s["scale"], math.cos(s["angle"]), math.sin(s["angle"])]

    one_frame = np.array([state(r, int(rng.integers(len(r["times"])))) for r in records])
    two_frames = np.array([np.subtract(state(r, -1)[:3] + [object_state(r, -1)["angle"]],
                                       state(r, 0)[:3] + [object_state(r, 0)["angle"]]) for r in records])
    assert nearest_mean_accuracy(one_frame) < 0.25  # chance is 0.125
    assert nearest_mean_accuracy(two_frames) > 0.95


def test_same_seed_same_data_whatever_the_workers(tmp_path, small_synth):
    again = generate(SynthConfig(**SMALL), tmp_path / "again", num_workers=1)
    for name in ("classes.txt", "train.csv", "val.csv", "test.csv", "manifest.jsonl"):
        assert (again.root / name).read_text() == (small_synth.root / name).read_text()
    for record in small_synth.manifest()[:4]:
        a, _ = decode_all(small_synth.root / record["path"])
        b, _ = decode_all(again.root / record["path"])
        np.testing.assert_array_equal(a, b)
    other = generate(SynthConfig(**{**SMALL, "seed": 4}), tmp_path / "other", num_workers=1)
    assert other.manifest()[0]["tracks"] != small_synth.manifest()[0]["tracks"]


def test_files_decode_alike_with_pyav_and_decord(small_synth):
    decord = pytest.importorskip("decord", reason="decord is not installed (pip install 'videoml[decord]')")
    if decord3():
        pytest.skip("decord 3 fails 96-pixel-wide pictures (its reader refuses them: tests/data/decoding)")
    for record in small_synth.manifest()[:6]:
        path = small_synth.root / record["path"]
        frames, times = decode_all(path)
        assert len(frames) == SMALL["frames"]
        np.testing.assert_allclose(times, record["times"], atol=1e-3)
        reader = decord.VideoReader(str(path))
        assert len(reader) == SMALL["frames"]
        batch = reader.get_batch(list(range(len(reader))))
        batch = batch.numpy() if hasattr(batch, "numpy") else batch.asnumpy()  # whatever decord's global bridge is
        # Both wrap FFmpeg's decoder; the YUV->RGB conversion may round differently.
        assert np.abs(batch.astype(int) - frames).max() <= 3


def test_split_files_parse_with_pytorchvideo(small_synth):
    from pytorchvideo.data.labeled_video_paths import LabeledVideoPaths

    classes = small_synth.classes_file.read_text().split()
    assert classes == list(MOTIONS)
    seen = []
    for split in ("train", "val", "test"):
        paths = LabeledVideoPaths.from_path(str(small_synth.split_file(split)))
        paths.path_prefix = str(small_synth.root)
        for path, info in paths:
            assert (small_synth.root / path).is_file()
            assert 0 <= info["label"] < len(classes)
            seen.append((path, info["label"]))
    manifest = small_synth.manifest()
    assert sorted(seen) == sorted((str(small_synth.root / r["path"]), r["label"]) for r in manifest)
    # stratified: with 3 videos a class, each class has one video in each split
    for split in ("train", "val", "test"):
        assert sorted(r["label"] for r in manifest if r["split"] == split) == list(range(8))


def test_splits_are_stratified_by_the_fractions(tmp_path):
    config = SynthConfig(classes=("move_left", "rotate_cw", "grow"), videos_per_class=20, frames=4, width=32,
                         height=32, splits=(0.7, 0.15, 0.15))
    dataset = generate(config, tmp_path, num_workers=2)
    for split, expected in (("train", 14), ("val", 3), ("test", 3)):
        labels = [int(line.split()[1]) for line in dataset.split_file(split).read_text().splitlines()]
        assert [labels.count(c) for c in range(3)] == [expected] * 3


@pytest.mark.parametrize("n, fractions, expected", [
    (40, (0.7, 0.15, 0.15), [28, 6, 6]),
    (3, (0.7, 0.15, 0.15), [1, 1, 1]),
    (2, (0.7, 0.15, 0.15), [1, 1, 0]),
    (1, (0.7, 0.15, 0.15), [1, 0, 0]),
    (10, (0.8, 0.2, 0.0), [8, 2, 0]),
    (7, (0.5, 0.5, 0.0), [4, 3, 0]),
])
def test_split_counts_round_and_keep_small_splits_alive(n, fractions, expected):
    assert split_counts(n, fractions) == expected


@pytest.mark.slow
@pytest.mark.parametrize("options", [
    dict(codec="hevc"),
    dict(codec="mpeg4"),
    dict(codec="vp9"),
    dict(codec="h264", vfr=True),
    dict(codec="h264", start_time=1.5, fps="30000/1001"),
    dict(codec="vp9", vfr=True, start_time=0.25),
], ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
def test_other_codecs_containers_rates_and_start_times(tmp_path, options):
    config = SynthConfig(classes=("move_left", "grow"), videos_per_class=1, frames=20, width=64, height=64, **options)
    dataset = generate(config, tmp_path)
    for record in dataset.manifest():
        path = dataset.root / record["path"]
        assert path.suffix == {"hevc": ".mp4", "mpeg4": ".avi", "vp9": ".webm", "h264": ".mp4"}[config.codec]
        frames, times = decode_all(path)
        assert len(frames) == 20
        tolerance = 1.5e-3 if config.codec == "vp9" else 1e-4  # WebM stores milliseconds
        np.testing.assert_allclose(np.subtract(times, times[0]), record["times"], atol=tolerance)
        if config.codec != "mpeg4":  # AVI has no time stamps: B-frame delay shows as a one-frame offset
            assert times[0] == pytest.approx(config.start_time, abs=tolerance)
        if backend_available("decord"):  # a reader that counts frames its own way
            import decord

            assert len(decord.VideoReader(str(path))) == 20
        if config.vfr:
            assert np.ptp(np.diff(times)) > 0.2 / float(config.frame_rate)


def test_rerun_is_a_no_op_and_an_interrupted_run_is_completed(tmp_path):
    config = SynthConfig(classes=("move_up", "shrink"), videos_per_class=2, frames=8, width=32, height=32)
    dataset = generate(config, tmp_path)
    victim = dataset.root / dataset.manifest()[0]["path"]
    mtime = victim.stat().st_mtime_ns
    generate(config, tmp_path)
    assert victim.stat().st_mtime_ns == mtime

    # an interrupted run: state says unfinished, one video and the split files missing
    state = json.loads((tmp_path / "synth.json").read_text())
    (tmp_path / "synth.json").write_text(json.dumps({**state, "complete": False}))
    victim.unlink()
    dataset.split_file("train").unlink()
    generate(config, tmp_path)
    assert victim.is_file() and dataset.split_file("train").is_file()
    assert json.loads((tmp_path / "synth.json").read_text())["complete"] is True


def test_other_settings_over_an_existing_set_need_force(tmp_path):
    config = SynthConfig(classes=("move_up", "shrink"), videos_per_class=1, frames=8, width=32, height=32)
    generate(config, tmp_path)
    changed = SynthConfig(classes=("move_up", "shrink"), videos_per_class=1, frames=10, width=32, height=32)
    with pytest.raises(VideomlError, match="other settings"):
        generate(changed, tmp_path)
    dataset = generate(changed, tmp_path, force=True)
    assert len(decode_all(dataset.root / dataset.manifest()[0]["path"])[0]) == 10


@pytest.mark.parametrize("bad, message", [
    (dict(classes=("move_up", "spin")), "unknown classes"),
    (dict(codec="mpeg4", vfr=True), "AVI"),
    (dict(fps="0"), "fps"),
    (dict(width=33), "size"),
    (dict(splits=(0.5, 0.2, 0.2)), "splits"),
])
def test_bad_settings_are_named(bad, message):
    with pytest.raises(UsageError, match=message):
        SynthConfig(**bad)
