"""`videoml data shard`: a prepared set packed into tar shards (WebDataset's layout) with a manifest; every sample in
exactly one shard, its bytes and frame index as prepared, after a kill and across the parts of a job array."""

import hashlib
import io
import json
import signal
import subprocess
import sys
import tarfile
import time

import numpy as np
import pytest
from helpers import videoml

from videoml.data.datasets import labeled_paths
from videoml.data.decoding import FrameIndex, VideoBytes, load_index, open_video

pytestmark = pytest.mark.slow


def _samples(out) -> dict:
    """split -> [(key, its members' bytes by extension, its shard)] in every shard the manifest lists, checked
    against the manifest's checksums."""
    manifest = json.loads((out / "manifest.json").read_text())
    found = {}
    for split, entry in manifest["splits"].items():
        for shard in entry["shards"]:
            data = (out / shard["name"]).read_bytes()
            assert len(data) == shard["bytes"] and hashlib.sha256(data).hexdigest() == shard["sha256"]
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
            keys = sorted({name.split(".")[0] for name in members})
            assert keys == shard["keys"]
            found.setdefault(split, []).extend(
                (key, {ext: members[f"{key}.{ext}"] for ext in ("mp4", "json", "index.npz")}, shard["name"])
                for key in keys)
        assert len(found[split]) == entry["samples"]
    return found


def test_every_sample_is_in_one_shard_with_its_label_bytes_and_frame_index(small_prepared, tmp_path):
    out = tmp_path / "shards"
    result = videoml("data", "shard", str(small_prepared), str(out), "--max-mb", "0.02")
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    found = _samples(out)
    for split in ("train", "val", "test"):
        listed = labeled_paths(small_prepared / f"{split}.csv")
        assert [key for key, _, _ in found[split]] == [f"{i:08d}" for i in range(len(listed))]  # each once, in order
        assert len({shard for _, _, shard in found[split]}) > 1
        for (key, members, _), (path, label) in zip(found[split], listed.items):
            record = json.loads(members["json"])
            assert (record["label"], small_prepared / record["path"]) == (label, path)
            assert members["mp4"] == path.read_bytes()
            index = FrameIndex.from_arrays(np.load(io.BytesIO(members["index.npz"])))
            assert np.array_equal(index.pts, load_index(path).pts)
    assert manifest["classes"] == list(listed.classes) and manifest["prepare"]["settings"]["short_side"] == 48
    key, members, shard = found["val"][0]
    with open_video(VideoBytes(f"{shard}:{key}", members["mp4"]),
                    index=FrameIndex.from_arrays(np.load(io.BytesIO(members["index.npz"])))) as in_shard, \
            open_video(small_prepared / json.loads(members["json"])["path"]) as on_disk:
        frames = np.arange(on_disk.num_frames)
        assert bool((in_shard.get_frames(frames).data == on_disk.get_frames(frames).data).all())


def test_the_parts_of_a_job_array_make_the_same_samples_and_the_last_writes_the_manifest(small_prepared, tmp_path):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert videoml("data", "shard", str(small_prepared), str(whole), "--max-mb", "0.05").returncode == 0
    first = videoml("data", "shard", str(small_prepared), str(parts), "--max-mb", "0.05", "--part", "1/2")
    assert first.returncode == 0 and "the manifest waits for the other parts" in first.stderr
    assert not (parts / "manifest.json").exists()
    second = videoml("data", "shard", str(small_prepared), str(parts), "--max-mb", "0.05", "--part", "0/2")
    assert second.returncode == 0 and f"manifest {parts / 'manifest.json'}" in second.stderr
    as_one, in_parts = _samples(whole), _samples(parts)
    for split in as_one:
        parted = sorted((k, m["mp4"]) for k, m, _ in in_parts[split])
        assert parted == sorted((k, m["mp4"]) for k, m, _ in as_one[split])
    refused = videoml("data", "shard", str(small_prepared), str(parts), "--part", "2/2")
    assert refused.returncode == 2 and "--part must be I/N with 0 <= I < N (e.g. 0/4), got '2/2'" in refused.stderr


def _killed_after_its_first_shard(small_prepared, out) -> int:
    """Run `data shard` (a shard per sample) and SIGKILL it once its first shard is recorded; the shards left."""
    run = subprocess.Popen([sys.executable, "-m", "videoml", "data", "shard", str(small_prepared), str(out), "--max-mb",
                            "0.001"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    part = out / "parts" / "part-0-of-1.json"
    deadline = time.monotonic() + 120
    while not part.exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    run.send_signal(signal.SIGKILL)
    run.wait()
    return len(list(out.glob("*/*.tar")))


def test_killed_mid_run_and_run_again_every_sample_once(small_prepared, tmp_path):
    for attempt in range(3):  # (a run that finished before the kill proves nothing: again, in a fresh folder)
        out = tmp_path / f"shards{attempt}"
        left = _killed_after_its_first_shard(small_prepared, out)
        if not (out / "manifest.json").exists():
            break
    assert 0 < left and not (out / "manifest.json").exists()
    again = videoml("data", "shard", str(small_prepared), str(out), "--max-mb", "0.001")
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"{left} kept from an earlier run" in again.stderr or f"{left - 1} kept" in again.stderr
    found = _samples(out)
    for split, entry in json.loads((small_prepared / "prepare.json").read_text())["splits"].items():
        assert [key for key, _, _ in found[split]] == [f"{i:08d}" for i in range(entry)]  # every sample once
    assert not list(out.glob("*/*.part"))


def test_a_damaged_prepared_set_is_refused_naming_what_is_missing(small_prepared, tmp_path):
    copy = tmp_path / "prepared"
    subprocess.run(["cp", "-r", str(small_prepared), str(copy)], check=True)
    gone = labeled_paths(copy / "val.csv").items[1][0]
    gone.unlink()
    refused = videoml("data", "shard", str(copy), str(tmp_path / "shards"))
    assert refused.returncode == 1, refused.stderr
    listed = len(labeled_paths(small_prepared / "val.csv"))
    assert refused.stderr.strip().splitlines()[-1] == (
        f"videoml: error: {copy / 'val.csv'}: 1 of its {listed} videos are missing "
        f"or empty (first: {gone}); run videoml data prepare again to restore them")


def test_what_is_not_a_prepared_set_or_not_a_folder_is_one_line(small_synth, small_prepared, tmp_path):
    unprepared = videoml("data", "shard", str(small_synth.root), str(tmp_path / "a"))
    assert unprepared.returncode == 1 and unprepared.stderr.strip() == (
        f"videoml: error: {small_synth.root}: not a prepared data set (prepare.json: No such file or directory); "
        "run videoml data prepare first")
    (tmp_path / "file").write_text("x")
    not_a_folder = videoml("data", "shard", str(small_prepared), str(tmp_path / "file"))
    assert not_a_folder.stderr.strip() == f"videoml: error: {tmp_path / 'file'}: exists and is not a directory"
