import json

import pytest
from helpers import videoml

from videoml.data.check import check_video
from videoml.data.files import find_videos
from videoml.errors import VideomlError


def test_check_reports_what_a_good_file_holds(corpus):
    record = check_video(corpus["h264_long_gop"])
    assert record["ok"] and record["error"] is None
    assert (record["codec"], record["width"], record["height"]) == ("h264", 64, 48)
    assert record["frames"] == record["decoded_frames"] == record["header_frames"] == 90
    assert record["fps"] == 16.0 and record["b_frames"] is True
    assert (record["keyframes"], record["gop_max"]) == (3, 40)


def test_check_cli_table_and_jsonl_and_exit_status(corpus, tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    cut = tmp_path / "cut.avi"
    data = corpus["mpeg4_avi"].read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])

    result = videoml("data", "check", str(corpus["h264"]), str(corpus["vp9_vfr_start"]), "--num-workers", "2")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["status", "frames", "fps"] and len(lines) == 3
    assert lines[1].startswith("ok") and "60/60" in lines[1] and str(corpus["h264"]) in lines[1]

    out = tmp_path / "report.jsonl"
    result = videoml("data", "check", str(corpus["h264"]), str(empty), str(tmp_path), "--format", "jsonl", "-o",
                     str(out))
    assert result.returncode == 1
    records = [json.loads(line) for line in out.read_text().splitlines()]
    by_path = {r["path"]: r for r in records}
    assert by_path[str(corpus["h264"])]["ok"]
    assert by_path[str(empty)] == {"path": str(empty), "status": "bad", "ok": False, "error": "empty file (0 bytes)",
                                   "bytes": 0}
    truncated = by_path[str(cut)]  # found in the folder; what it holds decodes, but its header promised 60 frames
    assert truncated["ok"] and truncated["status"] == "warn"
    assert truncated["header_frames"] == 60 and truncated["frames"] < 60
    assert f"header claims 60 frames, the file holds {truncated['frames']} (truncated?)" in truncated["warning"]
    # its last packet is cut: FFmpeg shows a damaged picture, reported (and replaced when read with "nearest")
    assert truncated["damaged_frames"] == [truncated["frames"] - 1] and not truncated["random_access"]
    assert "3 files: 1 ok, 1 warn, 1 bad" in result.stderr


def test_find_videos_expands_folders_and_patterns(tmp_path):
    (tmp_path / "b").mkdir()
    for name in ("b/z.mp4", "a.MKV", "notes.txt", "b/y.webm"):
        (tmp_path / name).write_bytes(b"x")
    assert find_videos([tmp_path]) == [tmp_path / "a.MKV", tmp_path / "b/y.webm", tmp_path / "b/z.mp4"]
    assert find_videos([str(tmp_path / "b" / "*.mp4"), tmp_path / "notes.txt", tmp_path / "b/z.mp4"]) == [
        tmp_path / "b/z.mp4", tmp_path / "notes.txt"]
    with pytest.raises(VideomlError, match="no such file"):
        find_videos([tmp_path / "missing.mp4"])
    with pytest.raises(VideomlError, match="matches no file"):
        find_videos([str(tmp_path / "*.avi")])
