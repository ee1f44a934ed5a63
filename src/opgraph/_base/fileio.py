"""Safe writes: whole files or nothing, whole folders or nothing, and no mode or litter surprises.

* :func:`atomic_open` / :func:`atomic_write`: write a temporary file beside the target and rename it over the
  target, so a reader sees the old file or the new one, never half of one. The new file gets the mode a plain
  ``open`` would give it (``0o666`` less the umask, or the old file's mode when it replaces one).
* :func:`atomic_dir`: build a multi-file output (a report: ``report.json`` + ``index.html`` + figures; a saved
  run: ``graph.json`` + ``values.pt``) in a temporary sibling folder and swap it into place in one step
  (``renameat2(RENAME_EXCHANGE)`` on Linux), so a reader sees the old output or the new one, never a mix. A lock
  file (``fcntl.flock``) makes a second concurrent writer of the same folder refuse instead of interleaving.
* A writer killed with SIGKILL leaves its temporary file or folder behind. Every writer holds an ``flock`` on its
  temporary while it writes (the kernel drops it when the process dies), so the next write to the same folder
  removes temporaries that are unlocked and older than :data:`STALE_AFTER_S` (see :func:`clean_stale`).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import stat
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from opgraph._base.errors import OpgraphError

log = logging.getLogger(__name__)

try:  # POSIX only; elsewhere there is no locking and stale temporaries are judged by age alone
    import fcntl

    _HAS_FLOCK = True
except ImportError:  # pragma: no cover - Windows
    _HAS_FLOCK = False

#: A temporary older than this (seconds) and not locked by a live writer is removed by the next write beside it.
STALE_AFTER_S = 60.0
#: At most one scan for stale temporaries per folder in this many seconds (a folder of many outputs stays fast).
_SCAN_EVERY_S = 30.0
_last_scan: dict[str, float] = {}

# Distinctive suffixes: only temporaries that opgraph itself made are ever removed, never a user's ".x.tmp".
_TMP_FILE = ".opgraph-tmp"
_TMP_DIR = ".opgraph-tmpdir"


class ConcurrentWriteError(OpgraphError):
    """Another process is writing the same output folder right now."""


# -- modes --------------------------------------------------------------------------------------------------------
def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (``/proc/self/status``)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)  # no /proc: the classic read-by-setting (not thread-safe, but brief)
    os.umask(mask)
    return mask


def _file_mode(dest: Path) -> int:
    with contextlib.suppress(OSError):
        return stat.S_IMODE(dest.stat().st_mode)  # replacing a file keeps its mode, as open("w") would
    return 0o666 & ~current_umask()


def _dir_mode(dest: Path) -> int:
    with contextlib.suppress(OSError):
        return stat.S_IMODE(dest.stat().st_mode)
    return 0o777 & ~current_umask()


# -- locks ------------------------------------------------------------------------------------------------------
def _try_lock(fd: int) -> bool:
    """Take an exclusive non-blocking flock on ``fd``; False when another process holds one."""
    if not _HAS_FLOCK:  # pragma: no cover
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def _is_locked(path: Path) -> bool:
    """Whether a live process holds an flock on ``path`` (a file or a folder)."""
    if not _HAS_FLOCK:  # pragma: no cover
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        return not _try_lock(fd)
    finally:
        os.close(fd)  # closing drops the probe's own lock


@contextlib.contextmanager
def folder_lock(dest: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold the writer's lock of output folder ``dest`` (the file ``.<name>.lock`` beside it).

    Raises:
        ConcurrentWriteError: another process holds it; nothing was written.
    """
    dest = Path(dest).absolute()
    lock_path = dest.parent / f".{dest.name}.lock"
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666 & ~current_umask())
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        # a folder whose parent this user cannot write: nobody can swap it either, so there is nothing to lock
        # against; a single file written inside it (rebuild_report's index.html) is still atomic
        log.debug("no lock for %s (%s)", dest, exc)
        yield lock_path
        return
    try:
        if not _try_lock(fd):
            raise ConcurrentWriteError(
                f"{dest} is being written by another process (lock {lock_path}); wait for it to finish or "
                "write to another folder"
            )
        yield lock_path
    finally:
        os.close(fd)  # the lock file itself stays: deleting it would let two writers lock two different files


# -- stale temporaries -------------------------------------------------------------------------------------------
def clean_stale(folder: str | os.PathLike[str], *, older_than_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove the temporaries (``.*.opgraph-tmp`` files, ``.*.opgraph-tmpdir`` folders) killed writers left.

    A temporary is removed only when it is older than ``older_than_s`` and no live process holds its lock.

    Returns:
        The removed paths.
    """
    removed: list[Path] = []
    base = Path(folder)
    now = time.time()
    try:
        entries = list(os.scandir(base))
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        if not name.startswith(".") or not (name.endswith(_TMP_FILE) or name.endswith(_TMP_DIR)):
            continue
        path = Path(entry.path)
        try:
            if now - entry.stat(follow_symlinks=False).st_mtime < older_than_s or _is_locked(path):
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path)
            else:
                path.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.debug("could not remove stale %s: %s", path, exc)
            continue
        log.info("removed %s left by an interrupted write", path)
        removed.append(path)
    return removed


def _maybe_clean(folder: Path) -> None:
    key = os.fspath(folder)
    now = time.monotonic()
    if now - _last_scan.get(key, -1e9) < _SCAN_EVERY_S:
        return
    _last_scan[key] = now
    clean_stale(folder)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# -- single files -------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` and rename it over ``path`` when the block succeeds.

    Args:
        path: Destination file. Its parent directory is created if missing.
        mode: ``"w"`` (text) or ``"wb"`` (binary).
        **kwargs: Passed to :func:`open` (e.g. ``encoding``).

    Yields:
        The open temporary file. On an exception the temporary file is removed and ``path`` is untouched.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open: mode must be 'w' or 'wb', got {mode!r}")
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    _maybe_clean(dest.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=_TMP_FILE, dir=dest.parent)
    try:
        _try_lock(fd)  # marks the temporary as live until this process closes it or dies
        os.fchmod(fd, _file_mode(dest))
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
            os.replace(tmp, dest)  # still locked (fd open) when it gets its final name
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write(path: str | os.PathLike[str], data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8, or bytes) to ``path`` atomically and return the path."""
    if isinstance(data, bytes):
        with atomic_open(path, "wb") as fh:
            fh.write(data)
    else:
        with atomic_open(path, "w", encoding="utf-8") as fh:
            fh.write(data)
    return Path(path)


# -- folders ------------------------------------------------------------------------------------------------------
def _exchange(a: Path, b: Path) -> bool:
    """Swap the paths ``a`` and ``b`` atomically (Linux ``renameat2``); False where the OS cannot."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), os.fspath(b))


def _link_tree(src: Path, dst: Path) -> None:
    """Recreate ``src`` at ``dst`` with hard links (copies where links fail); folders are new folders."""
    if src.is_dir() and not src.is_symlink():
        dst.mkdir(mode=stat.S_IMODE(src.stat().st_mode))
        for child in src.iterdir():
            _link_tree(child, dst / child.name)
    elif src.is_symlink():
        os.symlink(os.readlink(src), dst)
    else:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)


@contextlib.contextmanager
def atomic_dir(
    dest: str | os.PathLike[str], *, keep_others: bool = True, owned: tuple[str, ...] = ()
) -> Iterator[Path]:
    """Build the folder ``dest`` in a temporary sibling and swap it into place when the block succeeds.

    Write every file of the output into the yielded folder. On success the new folder replaces ``dest`` in one
    rename: readers see the old folder or the new one, never a mix. On an exception (or a kill) ``dest`` is
    untouched and the temporary is removed (now, or by the next write beside it).

    Args:
        dest: The output folder.
        keep_others: Entries of an existing ``dest`` that the new output does not contain (e.g. a demo's
            ``work/`` folder beside its report) are carried into the new folder (hard links, so no copying);
            ``False`` drops them.
        owned: Names of entries that belong to this output: never carried over, even when the new output
            lacks them (a report's ``figures`` folder when the new report has no figures).

    Yields:
        The temporary folder to write into.

    Raises:
        ConcurrentWriteError: another process is writing ``dest`` (nothing is written).
        OpgraphError: ``dest`` is the current directory or contains it (it cannot be swapped out).
    """
    dest = Path(dest).absolute()
    with contextlib.suppress(OSError):
        cwd = Path.cwd().resolve()
        if cwd == dest.resolve() or dest.resolve() in cwd.parents:
            raise OpgraphError(f"{dest} is the current directory (or holds it); write the output to a subfolder")
    if dest.exists() and not dest.is_dir():
        raise OpgraphError(f"{dest} exists and is not a folder; give a folder path")
    parent = dest.parent
    with folder_lock(dest):
        clean_stale(parent)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=_TMP_DIR, dir=parent))
        tfd = os.open(tmp, os.O_RDONLY)
        try:
            _try_lock(tfd)
            os.chmod(tmp, _dir_mode(dest))
            yield tmp
            if keep_others and dest.is_dir():
                for entry in dest.iterdir():
                    if entry.name not in owned and not os.path.lexists(tmp / entry.name):
                        _link_tree(entry, tmp / entry.name)
            _fsync_dir(tmp)
            if dest.exists():
                if not _exchange(tmp, dest):  # pragma: no cover - non-Linux: a short window without dest
                    old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=_TMP_DIR, dir=parent))
                    os.rmdir(old)
                    os.rename(dest, old)
                    os.rename(tmp, dest)
                    tmp = old
                shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old folder
            else:
                os.rename(tmp, dest)
            _fsync_dir(parent)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        finally:
            os.close(tfd)


def replace_marked_block(path: str | os.PathLike[str], begin: str, end: str, block: str, *, header: str = "") -> Path:
    """Replace the text from ``begin`` to ``end`` (markers included) in ``path`` by ``block``, atomically.

    Several scripts write their own section into one Markdown page (the benchmark pages); each section sits between
    its markers so that the others survive a rerun. ``block`` must start with ``begin`` and contain ``end``. When
    the file or the markers are missing, the block is appended (a new file starts with ``header``). One blank line
    separates the block from what follows it.

    Args:
        path: The file to edit.
        begin: Opening marker (e.g. ``"<!-- uq:begin -->"``).
        end: Closing marker.
        block: The new section, markers included.
        header: First text of a file that does not exist yet.

    Returns:
        The path written.
    """
    if not block.startswith(begin) or end not in block:
        raise OpgraphError(f"replace_marked_block: the block must start with {begin!r} and contain {end!r}")
    p = Path(path)
    text = p.read_text(encoding="utf-8") if p.exists() else header
    block = block.rstrip("\n") + "\n"
    start = text.find(begin)
    stop = text.find(end, start) if start >= 0 else -1
    if start >= 0 and stop >= 0:
        tail = text[stop + len(end) :].lstrip("\n")
        text = text[:start] + block + ("\n" + tail if tail else "")
    else:
        text = (text.rstrip("\n") + "\n\n" if text.strip() else "") + block
    return atomic_write(p, text)
