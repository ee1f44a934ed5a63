import os
import stat
import time

import pytest

from opgraph._base import fileio
from opgraph._base.fileio import (
    ConcurrentWriteError,
    atomic_dir,
    atomic_open,
    atomic_write,
    clean_stale,
    folder_lock,
)
from opgraph.errors import OpgraphError


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(p):
    return stat.S_IMODE(p.stat().st_mode)


def test_new_files_respect_the_umask(tmp_path, umask_022):
    assert _mode(atomic_write(tmp_path / "a.txt", "x")) == 0o644
    os.umask(0o077)
    assert _mode(atomic_write(tmp_path / "b.txt", b"x")) == 0o600
    assert fileio.current_umask() == 0o077


def test_replacing_a_file_keeps_its_mode(tmp_path, umask_022):
    p = tmp_path / "a.txt"
    p.write_text("old")
    p.chmod(0o640)
    atomic_write(p, "new")
    assert p.read_text() == "new" and _mode(p) == 0o640


def test_failed_write_leaves_old_file_and_no_temporary(tmp_path):
    p = atomic_write(tmp_path / "a.txt", "old")
    with pytest.raises(RuntimeError), atomic_open(p) as fh:
        fh.write("half")
        raise RuntimeError
    assert p.read_text() == "old"
    assert os.listdir(tmp_path) == ["a.txt"]


def _age(path, seconds):
    t = time.time() - seconds
    os.utime(path, (t, t))


def test_stale_temporaries_are_removed_unless_young_or_locked(tmp_path):
    stale = tmp_path / ".a.txt.abc123.opgraph-tmp"
    young = tmp_path / ".b.txt.abc123.opgraph-tmp"
    locked = tmp_path / ".c.txt.abc123.opgraph-tmp"
    users = tmp_path / ".notes.tmp"  # not ours: never touched
    stale_dir = tmp_path / ".r.abc.opgraph-tmpdir"
    for p in (stale, young, locked, users):
        p.write_bytes(b"x" * 100)
    stale_dir.mkdir()
    (stale_dir / "index.html").write_text("half")
    for p in (stale, locked, users, stale_dir):
        _age(p, 3600)
    import fcntl

    fd = os.open(locked, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        # the lock is held by this process through another open file description: a probe cannot take it
        removed = clean_stale(tmp_path)
    finally:
        os.close(fd)
    assert sorted(p.name for p in removed) == sorted([stale.name, stale_dir.name])
    assert young.exists() and locked.exists() and users.exists()


def test_next_write_cleans_what_a_killed_writer_left(tmp_path):
    left = tmp_path / ".out.json.zzz.opgraph-tmp"
    left.write_bytes(b"x" * 1000)
    _age(left, 3600)
    fileio._last_scan.clear()
    atomic_write(tmp_path / "other.json", "{}")
    assert not left.exists()


def test_atomic_dir_swaps_whole_folders_and_keeps_other_files(tmp_path, umask_022):
    out = tmp_path / "out"
    with atomic_dir(out, owned=("figs",)) as d:
        (d / "a.txt").write_text("v1")
        (d / "figs").mkdir()
        (d / "figs" / "1.png").write_text("v1")
    assert _mode(out) == 0o755
    (out / "work").mkdir()
    (out / "work" / "keep.bin").write_bytes(b"k")
    with atomic_dir(out, owned=("figs",)) as d:
        (d / "a.txt").write_text("v2")
        assert (out / "a.txt").read_text() != "v2"  # invisible until the block ends
    assert (out / "a.txt").read_text() == "v2"
    assert not (out / "figs").exists()  # owned by the output: dropped when the new one has none
    assert (out / "work" / "keep.bin").read_bytes() == b"k"
    assert [p.name for p in tmp_path.iterdir() if "opgraph-tmp" in p.name] == []


def test_atomic_dir_failure_leaves_old_folder(tmp_path):
    out = tmp_path / "out"
    with atomic_dir(out) as d:
        (d / "a.txt").write_text("v1")
    with pytest.raises(ZeroDivisionError), atomic_dir(out) as d:
        (d / "a.txt").write_text("v2")
        1 / 0  # noqa: B018
    assert (out / "a.txt").read_text() == "v1"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.lock", "out"]


def test_second_concurrent_writer_is_refused(tmp_path):
    out = tmp_path / "out"
    with folder_lock(out):
        import subprocess
        import sys

        code = (
            "import sys\nfrom opgraph._base.fileio import atomic_dir\n"
            f"with atomic_dir({str(out)!r}) as d:\n    (d / 'x').write_text('x')\n"
        )
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert proc.returncode != 0 and "ConcurrentWriteError" in proc.stderr
    assert not out.exists()
    with pytest.raises(ConcurrentWriteError, match="another process"), folder_lock(out), atomic_dir(out):
        pass


def test_atomic_dir_refuses_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OpgraphError, match="current directory"), atomic_dir("."):
        pass
    (tmp_path / "f").write_text("x")
    with pytest.raises(OpgraphError, match="not a folder"), atomic_dir(tmp_path / "f"):
        pass


def test_folder_whose_parent_is_not_writable_can_still_be_updated(tmp_path, monkeypatch):
    import errno

    out = tmp_path / "p" / "r"
    with atomic_dir(out) as d:
        (d / "a").write_text("1")
    real_open = os.open

    def no_lock_files(path, *args, **kwargs):
        if str(path).endswith(".lock"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", no_lock_files)  # what a read-only parent does (root ignores modes)
    with folder_lock(out):
        atomic_write(out / "a", "2")
    assert (out / "a").read_text() == "2"


def test_replace_marked_block_keeps_the_other_sections(tmp_path):
    from opgraph._base.fileio import replace_marked_block

    doc = tmp_path / "page.md"
    replace_marked_block(
        doc, "<!-- a:begin -->", "<!-- a:end -->", "<!-- a:begin -->\nA1\n<!-- a:end -->", header="# t\n"
    )
    replace_marked_block(doc, "<!-- b:begin -->", "<!-- b:end -->", "<!-- b:begin -->\nB1\n<!-- b:end -->\n")
    replace_marked_block(doc, "<!-- a:begin -->", "<!-- a:end -->", "<!-- a:begin -->\nA2\nA2'\n<!-- a:end -->")
    assert (
        doc.read_text() == "# t\n\n<!-- a:begin -->\nA2\nA2'\n<!-- a:end -->\n\n<!-- b:begin -->\nB1\n<!-- b:end -->\n"
    )
    with pytest.raises(OpgraphError, match="must start with"):
        replace_marked_block(doc, "<!-- a:begin -->", "<!-- a:end -->", "A3")
