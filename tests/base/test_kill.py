"""Kill tests: SIGKILL multi-file writers at random points; the folder is always the old or the new whole output."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from opgraph._base.fileio import clean_stale

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

REPORT_WRITER = r"""
import sys
from opgraph.report import Figure, Section, write_report

out, start = sys.argv[1], int(sys.argv[2])
PNG = b"\x89PNG\r\n\x1a\n"
print("ready", flush=True)
v = start
while True:
    tag = f"v{v:06d}".encode()
    figs = [Figure(f"f{i}", PNG + tag * 40000, "") for i in range(4)]  # 4 figures of ~280 kB
    write_report([Section("s", "S", summary=f"version {v}", figures=figs, data={"v": v})], out, title=f"T{v}")
    v += 1
"""


def _check_report(out: Path) -> int:
    """The version of the whole report in ``out``; fails on any mix of versions."""
    doc = json.loads((out / "report.json").read_text())
    v = doc["sections"][0]["data"]["v"]
    tag = f"v{v:06d}".encode()
    html = (out / "index.html").read_text()
    assert f"version {v}" in html and f"<title>T{v}" in html.replace("\n", "")
    figs = sorted((out / "figures" / "s").iterdir())
    assert [p.name for p in figs] == [f"f{i}.png" for i in range(4)]
    for p in figs:
        assert p.read_bytes().endswith(tag), f"{p} is from another version than report.json ({v})"
    assert sorted(os.listdir(out)) == ["figures", "index.html", "report.json", "work"]
    assert (out / "work" / "keep.txt").read_text() == "kept"
    return v


def _kill_loop(writer, out, kills, check, seed):
    rng = random.Random(seed)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    seen, start = set(), 1
    for _ in range(kills):
        proc = subprocess.Popen(
            [sys.executable, "-c", writer, str(out), str(start)], stdout=subprocess.PIPE, env=env, text=True
        )
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        v = check(out)
        seen.add(v)
        start += 10_000  # versions of the next writer never repeat this one's
    return seen


def test_report_folder_is_whole_after_random_kills(tmp_path):
    from opgraph.report import Figure, Section, write_report

    out = tmp_path / "rep"
    png = b"\x89PNG\r\n\x1a\n"
    write_report(
        [
            Section(
                "s",
                "S",
                summary="version 0",
                figures=[Figure(f"f{i}", png + b"v000000" * 40000) for i in range(4)],
                data={"v": 0},
            )
        ],
        out,
        title="T0",
    )
    (out / "work").mkdir()
    (out / "work" / "keep.txt").write_text("kept")
    seen = _kill_loop(REPORT_WRITER, out, kills=30, check=_check_report, seed=0)
    assert len(seen) > 3, f"the kills never landed between writes: versions seen {sorted(seen)}"
    # what the killed writers left is removed by the next write once it is stale (here: at once)
    clean_stale(tmp_path, older_than_s=0)
    assert [p.name for p in tmp_path.iterdir() if "opgraph-tmp" in p.name] == []
    write_report([Section("s", "S", summary="version 7", data={"v": 7})], out, title="T7")
    assert not (out / "figures").exists() and (out / "work" / "keep.txt").is_file()


FILE_WRITER = r"""
import sys
from opgraph._base.fileio import atomic_open

out, v = sys.argv[1], int(sys.argv[2])
print("ready", flush=True)
while True:
    tag = f"v{v:06d}".encode()
    with atomic_open(out, "wb") as fh:
        for _ in range(50):
            fh.write(tag * 20000)  # 7 MB in 50 pieces: kills land inside the write
    v += 1
"""


def _check_file(out: Path) -> int:
    data = out.read_bytes()
    assert len(data) == 50 * 20000 * 7, len(data)
    tag = data[:7]
    assert data == tag * (50 * 20000), "a file mixes two writes or is cut off"
    return int(tag[1:])


def test_single_file_is_whole_and_leftovers_are_cleaned(tmp_path):
    out = tmp_path / "big.bin"
    out.write_bytes(b"v000000" * (50 * 20000))
    seen = _kill_loop(FILE_WRITER, out, kills=15, check=_check_file, seed=2)
    assert len(seen) > 2, sorted(seen)
    left = [p for p in tmp_path.iterdir() if p.name.endswith(".opgraph-tmp")]
    assert left, "no kill landed inside a write"
    # killed writers hold no lock any more, so their temporaries go as soon as they are stale
    removed = clean_stale(tmp_path, older_than_s=0)
    assert sorted(removed) == sorted(left)
    assert [p.name for p in tmp_path.iterdir()] == ["big.bin"]
