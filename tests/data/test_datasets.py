import json
import logging

import pytest

from videoml.data.datasets import folder, hmdb51, kinetics, labeled_paths, load_source, ssv2, ucf101
from videoml.errors import VideomlError


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_labeled_paths_resolve_beside_the_file_and_read_class_names(small_synth):
    videos = labeled_paths(small_synth.split_file("train"))
    assert videos.classes == tuple(small_synth.classes)
    assert len(videos) == 8 and all(p.is_file() for p, _ in videos.items)
    assert sorted(label for _, label in videos.items) == list(range(8))


def test_labeled_paths_errors_name_file_and_line(tmp_path):
    bad = tmp_path / "list.csv"
    bad.write_text("a.mp4 1\nb.mp4 one\n")
    with pytest.raises(VideomlError, match=f"{bad}:2: expected '<path> <label>'"):
        labeled_paths(bad)
    with pytest.raises(VideomlError, match="no such file"):
        labeled_paths(tmp_path / "nope.csv")


def test_missing_videos_are_skipped_and_counted(tmp_path, caplog):
    touch(tmp_path / "v" / "a b.mp4")
    listing = tmp_path / "list.csv"
    listing.write_text("v/a b.mp4 0\nv/gone.mp4 1\n")
    with caplog.at_level(logging.WARNING):
        videos = labeled_paths(listing)
    assert videos.items == ((tmp_path / "v" / "a b.mp4", 0),)
    assert videos.classes == ("0", "1")
    assert "1 of 2 listed videos are missing" in caplog.text
    listing.write_text("v/gone.mp4 0\n")
    with pytest.raises(VideomlError, match="none of its 1 videos exist"):
        labeled_paths(listing)


def test_folder_per_class(tmp_path):
    touch(tmp_path / "walk" / "1.mp4")
    touch(tmp_path / "run" / "x" / "2.webm")
    touch(tmp_path / "run" / "notes.txt")
    videos = folder(tmp_path)
    assert videos.classes == ("run", "walk")
    assert videos.items == ((tmp_path / "run" / "x" / "2.webm", 0), (tmp_path / "walk" / "1.mp4", 1))


def test_kinetics_csv_and_clip_names(tmp_path):
    (tmp_path / "train.csv").write_text("label,youtube_id,time_start,time_end,split\n"
                                        "riding a bike,abc,10,20,train\nabseiling,def,0,10,train\n")
    (tmp_path / "validate.csv").write_text("label,youtube_id,time_start,time_end,split\nabseiling,ghi,5,15,validate\n")
    touch(tmp_path / "train" / "riding a bike" / "abc_000010_000020.mp4")
    touch(tmp_path / "train" / "abseiling" / "def_000000_000010.mp4")
    touch(tmp_path / "val" / "abseiling" / "ghi_000005_000015.mp4")
    train = kinetics(tmp_path / "train.csv", tmp_path)
    assert train.classes == ("abseiling", "riding a bike")
    assert sorted(label for _, label in train.items) == [0, 1]
    val = kinetics(tmp_path / "validate.csv", tmp_path, classes_csv=tmp_path / "train.csv")
    assert val.items == ((tmp_path / "val" / "abseiling" / "ghi_000005_000015.mp4", 0),)
    (tmp_path / "bad.csv").write_text("name,id\n")
    with pytest.raises(VideomlError, match="expected the columns"):
        kinetics(tmp_path / "bad.csv", tmp_path)


def test_ucf101_official_splits(tmp_path):
    lists = tmp_path / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 Archery\n")
    (lists / "trainlist01.txt").write_text("Archery/v_Archery_g08_c01.avi 2\n")
    (lists / "testlist01.txt").write_text("ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\n")
    touch(tmp_path / "UCF-101" / "Archery" / "v_Archery_g08_c01.avi")
    touch(tmp_path / "UCF-101" / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g01_c01.avi")
    assert ucf101(tmp_path).items == ((tmp_path / "UCF-101" / "Archery" / "v_Archery_g08_c01.avi", 1),)
    test = ucf101(tmp_path, subset="test")
    assert test.classes == ("ApplyEyeMakeup", "Archery") and test.items[0][1] == 0


def test_hmdb51_official_splits(tmp_path):
    splits = tmp_path / "testTrainMulti_7030_splits"
    splits.mkdir()
    (splits / "wave_test_split1.txt").write_text("w1.avi 1\nw2.avi 2\nw3.avi 0\n")
    (splits / "clap_test_split1.txt").write_text("c1.avi 2\n")
    for name in ("wave/w1.avi", "wave/w2.avi", "wave/w3.avi", "clap/c1.avi"):
        touch(tmp_path / "hmdb51" / name)
    train = hmdb51(tmp_path)
    assert train.classes == ("clap", "wave") and train.items == ((tmp_path / "hmdb51" / "wave" / "w1.avi", 1),)
    assert [p.name for p, _ in hmdb51(tmp_path, subset="test").items] == ["c1.avi", "w2.avi"]


def test_ssv2_templates(tmp_path):
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "something-something-v2-labels.json").write_text(json.dumps(
        {"Pushing something from left to right": "0", "Holding something next to something": "1"}))
    (labels / "something-something-v2-train.json").write_text(json.dumps([
        {"id": "7", "label": "holding a cup next to a pen", "template": "Holding [something] next to [something]",
         "placeholders": ["a cup", "a pen"]}]))
    touch(tmp_path / "20bn-something-something-v2" / "7.webm")
    videos = ssv2(tmp_path)
    assert videos.items == ((tmp_path / "20bn-something-something-v2" / "7.webm", 1),)
    assert load_source("ssv2", root=tmp_path).items == videos.items


def test_unknown_source_and_bad_options_are_named():
    with pytest.raises(VideomlError, match="unknown data source 'imagenet'"):
        load_source("imagenet", root="/x")
    with pytest.raises(VideomlError, match="data source 'folder'"):
        load_source("folder", path="/x")
