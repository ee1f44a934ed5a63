"""A run folder appears whole or is refused: manifest of SHA-256 written last, checked by every loader; one writer.

The kill test runs a tiny training in a subprocess over an older run and SIGKILLs it at chosen points between
(and around) the file writes of a save, plus at a random moment; every outcome must be the old run whole, the new
run whole, or a refusal naming the file, never a folder that loads as a mix.
"""

import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from opgraph import ffa
from opgraph._base.fileio import ConcurrentWriteError
from opgraph.ffa.analysis import compare_runs
from opgraph.ffa.errors import FFAError
from opgraph.ffa.training import CHECKPOINT, CONFIG, HISTORY, MANIFEST, RUN_FILES, verify_run

SRC = str(Path(ffa.__file__).resolve().parents[2])
WRITES_PER_EPOCH = len(RUN_FILES) + 1  # config, history, checkpoint, then the manifest

_CHILD = r"""
import os, signal, sys
import torch
torch.set_num_threads(1)
from opgraph import ffa
import opgraph.ffa.training as T

run_dir, kill_at, when = sys.argv[1], int(sys.argv[2]), sys.argv[3]
real = T.atomic_write
count = [0]

def write(path, data):
    count[0] += 1
    if count[0] == kill_at and when == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    out = real(path, data)
    if count[0] == kill_at and when == "after":
        os.kill(os.getpid(), signal.SIGKILL)
    return out

T.atomic_write = write
torch.manual_seed(2)
ds = ffa.data.load("digits").subset(64, 32)
pair = ffa.mirror(ffa.models.mlp(64, hidden=(8,), n_classes=10))
ffa.train(pair, ds, method="ffa", epochs=2, seed=2, batch_size=32, run_dir=run_dir)
print("finished", flush=True)
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    return env


def _train(run_dir: Path, seed: int, epochs: int = 1, **kw) -> ffa.TrainResult:
    torch.manual_seed(seed)
    ds = ffa.data.load("digits").subset(64, 32)
    pair = ffa.mirror(ffa.models.mlp(64, hidden=(8,), n_classes=10))
    return ffa.train(pair, ds, method="ffa", epochs=epochs, seed=seed, batch_size=32, run_dir=run_dir, **kw)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("runs")
    _train(base / "a", seed=1)
    _train(base / "b", seed=2)
    return base / "a", base / "b"


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _one_line_refusal(exc: pytest.ExceptionInfo, name: str) -> None:
    msg = str(exc.value)
    assert "\n" not in msg and name in msg, msg


def test_whole_run_loads_and_manifest_lists_every_file(two_runs):
    a, _ = two_runs
    manifest = verify_run(a)
    assert set(manifest["files"]) == set(RUN_FILES) and manifest["epoch"] == 1
    assert ffa.load_run(a).config["seed"] == 1


@pytest.mark.parametrize("name", RUN_FILES)
def test_file_from_another_run_is_refused_naming_it(two_runs, tmp_path, name):
    a, b = two_runs
    mixed = _copy(a, tmp_path / "mixed")
    shutil.copy2(b / name, mixed / name)
    with pytest.raises(FFAError, match="does not match") as exc:
        ffa.load_run(mixed)
    _one_line_refusal(exc, name)
    with pytest.raises(FFAError, match="does not match"):
        compare_runs([mixed])
    with pytest.raises(FFAError, match="does not match"):  # nor can it be resumed into a mix
        _train(mixed, seed=1, epochs=2, resume=True)


def test_missing_file_is_refused(two_runs, tmp_path):
    a, _ = two_runs
    part = _copy(a, tmp_path / "part")
    (part / HISTORY).unlink()
    with pytest.raises(FFAError, match="missing") as exc:
        ffa.load_run(part)
    _one_line_refusal(exc, HISTORY)


def test_folder_without_manifest_is_refused_unless_allowed(two_runs, tmp_path, caplog):
    a, _ = two_runs
    old = _copy(a, tmp_path / "old")
    (old / MANIFEST).unlink()  # as written by opgraph before run manifests
    with pytest.raises(FFAError, match="allow_unverified") as exc:
        ffa.load_run(old)
    _one_line_refusal(exc, MANIFEST)
    with pytest.raises(FFAError, match="allow_unverified"):
        _train(old, seed=1, epochs=2, resume=True)
    with caplog.at_level(logging.WARNING, logger="opgraph.ffa.training"):
        res = ffa.load_run(old, allow_unverified=True)
    assert res.config["seed"] == 1
    assert any(MANIFEST in r.getMessage() for r in caplog.records)
    rows, _, _ = compare_runs([old])  # compare only reads JSON; an older folder is still read
    assert rows[0]["seed"] == 1


def test_second_concurrent_writer_refuses(tmp_path):
    run = tmp_path / "r"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys\nfrom opgraph._base.fileio import folder_lock\n"
            f"with folder_lock({str(run)!r}):\n    print('locked', flush=True)\n    sys.stdin.read()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(ConcurrentWriteError, match="another process"):
            _train(run, seed=1)
        assert not (run / MANIFEST).exists() and not (run / CHECKPOINT).exists()
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    _train(run, seed=1)  # the lock is released with its holder
    assert verify_run(run)["epoch"] == 1


def _outcome(run: Path, old: Path) -> tuple[str, int]:
    """('old' | 'new' | 'refused', epoch), checking that a folder that loads is one save, whole."""
    try:
        res = ffa.load_run(run)
    except FFAError as exc:
        msg = str(exc)
        assert "\n" not in msg and ("does not match" in msg or "missing" in msg), msg
        return "refused", -1
    cfg = json.loads((run / CONFIG).read_text())
    hist = json.loads((run / HISTORY).read_text())
    assert cfg == res.config and hist == res.history  # the checkpoint, config and history agree
    if cfg["seed"] == 1:
        for name in RUN_FILES:
            assert (run / name).read_bytes() == (old / name).read_bytes(), name
        return "old", len(hist)
    assert cfg["seed"] == 2 and len(hist) == verify_run(run)["epoch"]
    return "new", len(hist)


def _expected(done: int) -> tuple[str, int]:
    """The outcome after ``done`` completed writes of the 2-epoch training over the old 1-epoch run."""
    if done == 0:
        return "old", 1
    epoch, within = divmod(done, WRITES_PER_EPOCH)
    if epoch >= 1 and within <= 1:  # within 1: the next save's config.json has the same bytes as the last one
        return "new", epoch
    return "refused", -1


def test_sigkill_during_training_leaves_old_or_new_run_whole(two_runs, tmp_path):
    a, _ = two_runs
    rng = random.Random(20261205)
    n_writes = 2 * WRITES_PER_EPOCH
    points = {(1, "before"), (2, "after"), (4, "after"), (7, "after")}  # old / refused / new e1 / refused
    while len(points) < 6:
        points.add((rng.randint(1, n_writes), rng.choice(["before", "after"])))
    seen = set()
    for i, (k, when) in enumerate(sorted(points)):
        run = _copy(a, tmp_path / f"k{i}")
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, str(run), str(k), when],
            capture_output=True,
            text=True,
            env=_env(),
            timeout=300,
        )
        assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
        got = _outcome(run, a)
        assert got == _expected(k - 1 if when == "before" else k), (k, when, got)
        seen.add(got[0])
    assert seen >= {"old", "new", "refused"}


def test_sigkill_at_a_random_moment_never_leaves_a_mix(two_runs, tmp_path):
    a, _ = two_runs
    rng = random.Random()
    for i in range(2):
        run = _copy(a, tmp_path / f"t{i}")
        proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(run), "0", "never"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=_env(),
        )
        time.sleep(rng.uniform(1.0, 6.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        assert _outcome(run, a)[0] in ("old", "new", "refused")
