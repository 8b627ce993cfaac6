"""What `videoml infer` does with its outputs when a user is careless: nothing lost, nothing written twice."""

import json
import os
import shutil
import signal

import pytest
from helpers import videoml

from videoml.errors import VideomlError
from videoml.infer.clips import VideoClips, decoded_items
from videoml.infer.results import ResultWriter, read_records
from videoml.models.registry import model_input


def _videos(dataset, n=2):
    return sorted(str(dataset.root / line.split()[0]) for line in dataset.split_file("test").read_text().splitlines())[:n]


@pytest.mark.slow
def test_infer_refuses_outputs_it_would_damage(small_synth, checkpoint, tmp_path):
    video = _videos(small_synth, 1)[0]
    run = lambda *args: videoml("infer", video, "-m", str(checkpoint), "--num-workers", "0", *args)  # noqa: E731
    out = tmp_path / "out.jsonl"
    with ResultWriter(out):  # another run holds it
        held = run("-o", str(out), "--overwrite")
    assert held.returncode == 2 and f"{out} is being written by pid" in held.stderr
    table = tmp_path / "table.csv"
    table.write_text("precious\n")
    csv_exists = run("-o", str(tmp_path / "new.jsonl"), "--csv", str(table))
    assert csv_exists.returncode == 2 and f"{table} exists" in csv_exists.stderr
    assert table.read_text() == "precious\n" and not (tmp_path / "new.jsonl").exists()
    same = run("-o", str(out), "--csv", str(out), "--overwrite")
    assert same.returncode == 2 and "the same file" in same.stderr
    os.mkfifo(tmp_path / "fifo")
    for target, kind in ((tmp_path / "fifo", "not a regular file"), ("/dev/null", "not a regular file")):
        refused = run("-o", str(target), "--overwrite")
        assert refused.returncode == 2 and kind in refused.stderr, refused.stderr
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")
    link = tmp_path / "link.jsonl"
    link.symlink_to(tmp_path / "elsewhere.jsonl")
    assert run("-o", str(link)).returncode == 2
    afile = tmp_path / "afile"
    afile.write_text("")
    under_a_file = run("-o", str(afile / "x.jsonl"))
    assert under_a_file.returncode == 2 and len(under_a_file.stderr.strip().splitlines()) == 1
    assert "Traceback" not in under_a_file.stderr


@pytest.mark.slow
def test_resume_keys_on_real_paths_and_undecodable_names_are_kept(small_synth, checkpoint, tmp_path):
    videos = _videos(small_synth, 2)
    odd = tmp_path / os.fsdecode(b"clip \xff\xfe.mp4")
    shutil.copyfile(videos[0], odd)
    out, table = tmp_path / "out.jsonl", tmp_path / "out.csv"
    first = videoml("infer", videos[0], str(odd), "-m", str(checkpoint), "-o", str(out), "--csv", str(table),
                    "--num-workers", "0")
    assert first.returncode == 0, first.stderr[-3000:]
    relative = os.path.relpath(videos[0], tmp_path)
    again = videoml("infer", relative, videos[1], str(odd), "-m", str(checkpoint), "-o", str(out), "--csv",
                    str(table), "--num-workers", "0", "--resume", cwd=tmp_path)
    assert again.returncode == 0 and "1 done, 0 failed, 2 skipped" in again.stderr, again.stderr[-3000:]
    got = read_records(out)
    assert [r["status"] for r in got] == ["ok"] * 3 and got[1]["path"] == str(odd)
    assert b"clip \xff\xfe.mp4" in table.read_bytes()  # the file name's own bytes
    assert "\\udcff\\udcfe" in out.read_text()  # JSON escapes of os.fsdecode's surrogates


@pytest.mark.parametrize("line", ["[1, 2]", '{"foo": 1}', '"text"'])
def test_resume_refuses_lines_that_are_not_records(tmp_path, line):
    out = tmp_path / "out.jsonl"
    out.write_text(json.dumps({"path": "a.mp4", "status": "ok"}) + "\n" + line + "\n")
    with pytest.raises(VideomlError, match="line 2 is not a videoml result record"):
        ResultWriter(out, resume=True)


@pytest.mark.parametrize("args, words", [
    (("--num-workers", "-1"), "--num-workers: -1 does not conform to restriction v>=0"),
    (("--dense", "nan"), "--dense: does not conform to restriction v>0 and v<=10000000.0, got nan"),
    (("--decode-timeout", "0"), "--decode-timeout: does not conform to restriction v>0 and v<=10000000.0, got 0"),
])
def test_bad_values_are_refused_before_anything_is_written(tmp_path, args, words):
    out = tmp_path / "out.jsonl"
    result = videoml("infer", str(tmp_path), "-m", "x.ckpt", "-o", str(out), *args)
    assert result.returncode == 2 and words in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_an_empty_checkpoint_is_one_line(corpus, tmp_path):
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    result = videoml("infer", str(corpus["h264"]), "-m", str(empty), "-o", str(tmp_path / "o.jsonl"))
    assert result.returncode == 1 and f"{empty}: not a loadable checkpoint" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


@pytest.mark.slow
def test_a_video_over_the_time_budget_is_recorded_and_the_run_goes_on(small_synth, checkpoint, tmp_path):
    out = tmp_path / "out.jsonl"
    result = videoml("infer", *_videos(small_synth, 2), "-m", str(checkpoint), "-o", str(out), "--num-workers", "1",
                     "--decode-timeout", "0.0001")
    assert result.returncode == 3, result.stderr[-3000:]
    got = read_records(out)
    assert len(got) == 2 and all(r["status"] == "error" and "time budget" in r["error"] for r in got)


def _folder_beyond_path_max(root, video) -> str:
    """A folder holding ``video`` (a copy) at the first depth whose path is over PATH_MAX (4096 with its NUL),
    however long ``root`` is: made one level at a time, relative."""
    name, path_max = "d" * 200, os.pathconf(root, "PC_PATH_MAX")
    levels = -(-(path_max - len(str(root))) // (len(name) + 1))
    fd = os.open(root, os.O_RDONLY)
    for _ in range(levels):
        os.mkdir(name, dir_fd=fd)
        fd, parent = os.open(name, os.O_RDONLY, dir_fd=fd), fd
        os.close(parent)
    with open(os.open("deep.mp4", os.O_WRONLY | os.O_CREAT, dir_fd=fd), "wb") as f:
        f.write(open(video, "rb").read())
    os.close(fd)
    return os.path.join(str(root), *[name] * levels)


@pytest.mark.slow
def test_inputs_refused_as_they_are_read_are_recorded_in_input_order(small_synth, checkpoint, tmp_path):
    from PIL import Image

    good = _videos(small_synth, 2)
    fifo, image, tree = tmp_path / "pipe.mp4", tmp_path / "still.png", tmp_path / "tree"
    os.mkfifo(fifo)
    Image.new("RGB", (32, 32)).save(image)
    tree.mkdir()
    deep = _folder_beyond_path_max(tree, good[0])
    out = tmp_path / "out.jsonl"
    result = videoml("infer", good[0], str(fifo), "/dev/null", good[1], str(image), str(tree), "-m", str(checkpoint),
                     "-o", str(out), "--num-workers", "1")
    assert result.returncode == 3, result.stderr[-3000:]
    got = read_records(out)
    assert [r["path"] for r in got] == [good[0], str(fifo), "/dev/null", good[1], str(image), deep]
    assert [r["status"] for r in got] == ["ok", "error", "error", "ok", "error", "error"]
    assert got[-1]["error"] == f"{deep}: File name too long"  # (its stat fails as its listing did)
    assert "2 done, 4 failed" in result.stderr


class _CrashingClips(VideoClips):
    """Decoding one file kills the worker, as a crash inside a decoder would."""

    def __getitem__(self, index):
        self.now = self.paths[index]
        return super().__getitem__(index)

    def clip_indices(self, timestamps):
        if self.now.endswith("crash.mp4"):
            os.kill(os.getpid(), signal.SIGSEGV)
        return super().clip_indices(timestamps)


@pytest.mark.slow
def test_a_worker_that_dies_becomes_an_error_for_its_video_and_the_rest_goes_on(small_synth, tmp_path):
    videos = _videos(small_synth, 4)
    crash = tmp_path / "crash.mp4"
    shutil.copyfile(videos[0], crash)
    paths = videos[:2] + [str(crash)] + videos[2:]
    dataset = _CrashingClips(paths, model_input("x3d_tiny"), views=2)
    items = list(decoded_items(dataset, num_workers=2))
    assert [item.path for item in sorted(items, key=lambda i: i.index)] == paths  # each exactly once
    failed = [item for item in items if item.error]
    assert [item.path for item in failed] == [str(crash)]
    assert "the decoding process died reading it" in failed[0].error
    assert all(item.video is not None for item in items if not item.error)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux's unshare (a private tmpfs)")
def test_a_full_disk_is_one_line_naming_the_output_and_what_was_written_is_kept(small_synth, checkpoint, tmp_path):
    import subprocess
    import sys

    videos = sorted(str(p) for p in (small_synth.root / "videos").rglob("*.mp4"))
    full, out = tmp_path / "full", tmp_path / "full" / "out.jsonl"
    full.mkdir()
    # an 8 KiB file system of its own (a user and mount namespace): the lock file and a page of records fill it
    command = (f"mount -t tmpfs -o size=8k tmpfs {full} && {sys.executable} -m videoml infer {' '.join(videos)} "
               f"-m {checkpoint} -o {out} --num-workers 0; echo rc=$?; wc -l < {out}")
    result = subprocess.run(["unshare", "-rm", "sh", "-c", command], capture_output=True, text=True)
    if "mount" in result.stderr and "rc=" not in result.stdout:
        pytest.skip(f"no tmpfs in a user namespace here: {result.stderr.strip()}")
    lines = [line for line in result.stderr.splitlines() if line.startswith("videoml: error:")]
    assert lines == [f"videoml: error: {out}: cannot write a record (No space left on device); what is written is "
                     "kept, --resume goes on from it"], result.stderr[-3000:]
    assert "rc=1" in result.stdout and 0 < int(result.stdout.split()[-1]) < len(videos)
