"""`videoml report` on reports it did not write itself: counts out of range, folders it cannot write."""

import shutil
import subprocess

import pytest
from helpers import videoml

from videoml.evaluation import CONFUSION, ClassReport


@pytest.fixture
def folder(tmp_path):
    report = ClassReport.from_labels(["a", "a", "b", "b", "b"], ["a", "b", "b", "b", "a"], ["a", "b"])
    return report.write(tmp_path / "report")


@pytest.mark.parametrize("count", ["-2", "1000000000000000000000000000000", "1.5"])
def test_a_count_that_is_no_number_of_videos_is_one_line_naming_the_file_and_line(folder, count):
    lines = (folder / CONFUSION).read_text().splitlines()
    lines[2] = lines[2].rsplit(",", 1)[0] + f",{count}"  # class b's videos predicted as b
    (folder / CONFUSION).write_text("\n".join(lines) + "\n")
    result = videoml("report", str(folder))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert f"{folder / CONFUSION}" in result.stderr
    assert "line 3" in result.stderr or "not a confusion" in result.stderr


def test_a_report_folder_that_cannot_be_written_is_still_printed(folder):
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(folder)]).returncode:
        pytest.skip("needs chattr +i (an immutable folder, which even root cannot write)")
    try:
        result = videoml("report", str(folder))
    finally:
        subprocess.run(["chattr", "-i", str(folder)])
    assert result.returncode == 0, result.stderr
    assert "top-1 0.6000 over 5 videos" in result.stdout and "| b | 3 | 0.667 | a |" in result.stdout
    assert result.stderr.strip() == f"videoml: {folder}: its CSVs and PNG were not written again (Operation not " \
                                    "permitted)"
