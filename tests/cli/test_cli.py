import json

import pytest
from helpers import videoml


def test_help_lists_the_commands():
    result = videoml("--help")
    assert result.returncode == 0 and "data" in result.stdout
    result = videoml("data", "--help")
    assert result.returncode == 0 and "synth" in result.stdout
    result = videoml("data", "synth", "--help")
    assert result.returncode == 0 and "--videos-per-class" in result.stdout
    assert "rotate_cw" in result.stdout  # offered, though not in the default set


def test_synth_writes_a_data_set_and_reports_it(tmp_path):
    out = tmp_path / "set"
    args = ("data", "synth", "--out", str(out), "--classes", "move_left,move_right,grow", "--videos-per-class", "3",
            "--frames", "8", "--width", "48", "--height", "32", "--seed", "5", "--num-workers", "2")
    result = videoml(*args)
    assert result.returncode == 0, result.stderr
    assert "3 classes, 3 train, 3 val, 3 test" in result.stdout
    assert (out / "classes.txt").read_text().split() == ["move_left", "move_right", "grow"]
    config = json.loads((out / "synth.json").read_text())["config"]
    assert (config["width"], config["height"], config["seed"]) == (48, 32, 5)
    assert len((out / "manifest.jsonl").read_text().splitlines()) == 9
    # again: same settings, nothing to do, same report
    again = videoml(*args)
    assert again.returncode == 0 and again.stdout == result.stdout


@pytest.mark.parametrize("args, code, words", [
    (("--width", "12"), 2, "size must be even and at least 32x32"),
    (("--classes", "move_up,spin"), 2, "unknown classes ['spin']"),
    (("--codec", "mpeg4", "--vfr"), 2, "AVI"),
    (("--frames", "0"), 2, "frames must be >= 2"),
    (("--splits", "0.5,0.5,0.5"), 2, "splits"),
])
def test_bad_values_give_one_line_and_exit_2(tmp_path, args, code, words):
    result = videoml("data", "synth", "--out", str(tmp_path / "x"), *args)
    assert result.returncode == code
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert words in result.stderr and "Traceback" not in result.stderr


def test_an_out_path_that_is_a_file_is_named(tmp_path):
    target = tmp_path / "afile"
    target.write_text("x")
    result = videoml("data", "synth", "--out", str(target), "--videos-per-class", "1", "--frames", "4")
    assert result.returncode == 1
    assert result.stderr.strip() == f"videoml: error: {target}: exists and is not a directory"


def test_a_different_data_set_in_the_way_needs_force(tmp_path):
    base = ("data", "synth", "--out", str(tmp_path), "--classes", "grow,shrink", "--videos-per-class", "1",
            "--width", "32", "--height", "32")
    assert videoml(*base, "--frames", "4").returncode == 0
    result = videoml(*base, "--frames", "6")
    assert result.returncode == 1 and "--force" in result.stderr and "Traceback" not in result.stderr
    assert videoml(*base, "--frames", "6", "--force").returncode == 0


def test_debug_shows_the_traceback(tmp_path):
    target = tmp_path / "afile"
    target.write_text("x")
    result = videoml("--debug", "data", "synth", "--out", str(target))
    assert result.returncode == 1 and "Traceback" in result.stderr


def test_a_bool_option_alone_is_true_and_the_word_after_it_stays_an_argument(corpus):
    # `--autorotate FILE`: FILE is the input, not the option's value (as `infer --resume a.mp4`)
    result = videoml("data", "conformance", "--autorotate", str(corpus["h264"]), "--backends", "pyav")
    assert result.returncode == 0, result.stderr
    assert f"| {corpus['h264']} | 60 | exact |" in result.stdout
    explicit = videoml("data", "conformance", "--autorotate", "false", str(corpus["h264"]), "--backends", "pyav")
    assert explicit.returncode == 0 and "exact" in explicit.stdout


def test_a_word_meant_as_a_bool_options_value_is_named_as_such(tmp_path):
    """A command without inputs to take it: the word after a bool option was meant as its value."""
    result = videoml("bench", "plan", str(tmp_path), "--decoded-cache", "maybe")
    assert result.returncode == 2 and result.stderr.strip() == (
        "videoml: error: --decoded-cache takes true or false (alone: true), not 'maybe' (see 'videoml bench plan "
        "--help')")


@pytest.mark.parametrize("args, option", [
    (("infer", "a.mp4", "-m", "m.ckpt", "-o", "o.jsonl", "--dense", "inf"), "--dense"),
    (("infer", "a.mp4", "-m", "m.ckpt", "-o", "o.jsonl", "--decode-timeout", "1e300"), "--decode-timeout"),
    (("extract", "a.mp4", "-m", "m.ckpt", "-o", "out", "--decode-timeout", "nan"), "--decode-timeout"),
    (("data", "check", "a.mp4", "--decode-timeout", "inf"), "--decode-timeout"),
    (("fit", "--config", "configs/synth_x3d_tiny.yaml", "--data.decode_timeout", "inf"), "--data.decode_timeout"),
])
def test_durations_must_be_finite_and_positive_when_parsed(tmp_path, args, option):
    result = videoml(*args)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith(f"videoml: error: {option}: ") and "v<=10000000.0" in lines[0]


def _alias_bomb(path):
    """Nine levels of ten aliases each: 10^9 values once expanded, from a file of 500 bytes."""
    lines, previous = ["a: &a [x, x, x, x, x, x, x, x, x, x]"], "a"
    for name in "bcdefghi":
        lines.append(f"{name}: &{name} [{', '.join(['*' + previous] * 10)}]")
        previous = name
    path.write_text("\n".join(lines) + "\nnum_workers: *i\n")
    return path


@pytest.mark.parametrize("command", [("data", "synth"), ("fit",)])
def test_config_files_that_expand_without_bound_are_refused_before_parsing(tmp_path, command):
    bomb, recursive = _alias_bomb(tmp_path / "bomb.yaml"), tmp_path / "recursive.yaml"
    recursive.write_text("a: &a [1, *a]\n")
    for path, words in ((bomb, "aliases expand to more than 1,000,000 values"), (recursive, "refers to a value")):
        result = videoml(*command, "--config", str(path))
        assert result.returncode == 2 and result.stderr.strip().splitlines() == [result.stderr.strip()]
        assert result.stderr.startswith(f"videoml: error: {path}: ") and words in result.stderr


def test_print_config_gives_a_file_that_runs_the_same_command_positionals_included(corpus, tmp_path):
    printed = videoml("data", "check", str(corpus["h264"]), str(corpus["vp9_vfr_start"]), "--print_config")
    assert printed.returncode == 0, printed.stderr
    config = tmp_path / "check.yaml"
    config.write_text(printed.stdout)
    again = videoml("data", "check", "--config", str(config))
    assert again.returncode == 0 and "2 files: 2 ok, 0 warn, 0 bad" in again.stderr
    given = videoml("data", "check", "--config", str(config), str(corpus["h264"]))  # the command line wins
    assert given.returncode == 0 and "1 file: 1 ok" in given.stderr
    none = videoml("data", "check")
    assert none.returncode == 2 and "no paths given, on the command line or in --config" in none.stderr


def test_one_idea_has_one_name_and_old_spellings_still_work_for_now(tmp_path, small_synth):
    video = str(small_synth.root / small_synth.split_file("val").read_text().split()[0])
    for command in (["infer"], ["extract"], ["data", "check"], ["data", "synth"], ["bench", "suite"], ["export"]):
        shown = videoml(*command, "--help").stdout
        assert "-o OUT" in shown or "--out OUT" in shown, command  # every output is --out / -o
        options = {w.strip("[],)") for w in shown.split() if w.startswith("--")} - {"--print_config"}  # (jsonargparse's)
        assert "--output" not in options and not [o for o in options if "_" in o], (command, options)
    old = videoml("data", "check", video, "--output", str(tmp_path / "a.txt"), "--timeout", "30")
    new = videoml("data", "check", video, "-o", str(tmp_path / "b.txt"), "--decode-timeout", "30")
    assert old.returncode == new.returncode == 0
    assert (tmp_path / "a.txt").read_text() == (tmp_path / "b.txt").read_text()
    assert "videoml: --output is now --out (the old name goes in the next release)" in old.stderr
    assert "videoml: --timeout is now --decode-timeout" in old.stderr and "is now" not in new.stderr


def test_precision_takes_lightning_values_in_every_command_and_the_short_names_for_now():
    for old, new in (("fp32", "32-true"), ("bf16", "bf16-mixed"), ("fp16", "16-mixed")):
        for spelled in (["--precision", old], [f"--precision={old}"]):
            printed = videoml("infer", "a.mp4", "-m", "zoo:x3d_xs", *spelled, "--print_config")
            assert printed.returncode == 0 and f"precision: {new}\n" in printed.stdout, printed.stderr
            assert f"videoml: --precision {old} is now --precision {new}" in printed.stderr
        current = videoml("extract", "a.mp4", "-m", "zoo:x3d_xs", "-o", "f", "--precision", new, "--print_config")
        assert f"precision: {new}\n" in current.stdout and "is now" not in current.stderr
    refused = videoml("infer", "a.mp4", "-m", "zoo:x3d_xs", "--precision", "fp8")
    assert refused.returncode == 2 and "--precision: expected one of auto, 32-true, bf16-mixed, 16-mixed, got fp8" in \
        refused.stderr


def test_a_wrong_choice_in_a_list_or_optional_option_is_one_line_with_the_choices_and_the_value():
    formats = videoml("export", "model.ckpt", "-f", "nosuch")
    assert formats.returncode == 2 and formats.stderr.strip() == (
        "videoml: error: --formats: expected one of torchscript-trace, torchscript-script, pt2, onnx, aoti, all, got "
        "nosuch "
        "(see 'videoml export --help')")
    crops = videoml("infer", "a.mp4", "-m", "model.ckpt", "--crops", "2")
    assert crops.stderr.strip() == "videoml: error: --crops: expected one of 1, 3, got 2 (see 'videoml infer --help')"
    opset = videoml("export", "--help").stdout
    assert "ONNX opset. (type: PositiveInt, default: 18)" in " ".join(opset.split())  # a value, not a Python name
