"""Output locks, both kinds: the kernel's flock on local file systems, an O_EXCL lock file where flock may lock on one
machine only (NFS, Lustre, CIFS, FUSE)."""

import os
import socket
import subprocess
import sys

import pytest

import videoml.fileio as fileio
from videoml.errors import UsageError
from videoml.fileio import lock_kind, output_lock
from videoml.infer.results import ResultWriter


@pytest.mark.parametrize("kind", ["flock", "file"])
def test_a_second_writer_is_refused_while_the_first_holds_the_output(tmp_path, monkeypatch, kind):
    monkeypatch.setenv("VIDEOML_LOCK", kind)
    out = tmp_path / "out.jsonl"
    with ResultWriter(out) as first:
        first.write({"path": "a.mp4", "status": "ok"})
        with pytest.raises(UsageError, match=f"{out} is being written by pid {os.getpid()} on {socket.gethostname()}"):
            ResultWriter(out, resume=True)
    with ResultWriter(out, resume=True) as again:  # free once the first is done
        assert again.done == {os.path.realpath("a.mp4")}
    assert not (tmp_path / "out.jsonl.lock").exists()


def test_a_lock_file_left_by_a_killed_run_on_this_machine_is_taken_over(tmp_path, monkeypatch):
    monkeypatch.setenv("VIDEOML_LOCK", "file")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    lock = tmp_path / "out.jsonl.lock"
    lock.write_text(f"pid {dead} on {socket.gethostname()} (videoml infer)\n")
    with output_lock([tmp_path / "out.jsonl"]):
        assert lock.read_text().startswith(f"pid {os.getpid()} on ")
    assert not lock.exists()


def test_a_lock_file_of_another_machine_is_refused_naming_it_and_the_file_to_delete(tmp_path, monkeypatch):
    monkeypatch.setenv("VIDEOML_LOCK", "file")
    lock = tmp_path / "out.jsonl.lock"
    lock.write_text("pid 4242 on node17 (videoml infer)\n")
    with pytest.raises(UsageError) as refused:
        with output_lock([tmp_path / "out.jsonl"]):
            pass
    assert str(refused.value) == (f"{tmp_path / 'out.jsonl'} is being written by pid 4242 on node17 (videoml infer); "
                                  f"wait for it to finish or choose another output (if that run is dead, delete "
                                  f"{lock})")
    assert lock.read_text() == "pid 4242 on node17 (videoml infer)\n"  # left as it was


@pytest.mark.parametrize("mount, kind", [("ext4", "flock"), ("xfs", "flock"), ("tmpfs", "flock"), ("nfs4", "file"),
                                         ("nfs", "file"), ("lustre", "file"), ("cifs", "file"),
                                         ("fuse.sshfs", "file"), ("fuse.gcsfuse", "file")])
def test_network_and_fuse_file_systems_get_the_lock_file(tmp_path, monkeypatch, mount, kind):
    monkeypatch.delenv("VIDEOML_LOCK", raising=False)
    monkeypatch.setattr(fileio, "_mount_type", lambda path: mount)
    assert lock_kind(tmp_path) == kind

