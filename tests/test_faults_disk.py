"""Out of disk and an unwritable output directory (issue 16): a clear error, no corrupt result.

The disk-full case needs a tiny tmpfs, so root (skipped otherwise, with the reason); the
read-only case uses a read-only tmpfs as root (root ignores file modes) and ``chmod`` otherwise.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from repalign.errors import RepalignError
from repalign.results import read_result, write_result

SRC = Path(__file__).resolve().parents[1] / "src"


def _mount_tmpfs(path: Path, options: str) -> None:
    path.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode().strip()}")


@pytest.fixture
def full_dir(tmp_path):
    """A directory on a 64 KiB file system."""
    if os.geteuid() != 0:
        pytest.skip("simulating a full disk needs a tiny tmpfs, i.e. root")
    path = tmp_path / "full"
    _mount_tmpfs(path, "size=64k")
    yield path
    subprocess.run(["umount", str(path)], check=True)


@pytest.fixture
def readonly_dir(tmp_path):
    """A directory this process cannot write to, holding an old result ``old.json``."""
    path = tmp_path / "ro"
    if os.geteuid() == 0:
        _mount_tmpfs(path, "size=1m")
    else:
        path.mkdir()
    write_result(path / "old.json", {"paper": "p", "artifact": "old", "status": "ok", "tier": "smoke"}, {})
    if os.geteuid() == 0:
        subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)
    else:
        path.chmod(0o500)
    yield path
    if os.geteuid() == 0:
        subprocess.run(["umount", str(path)], check=True)
    else:
        path.chmod(0o700)


def test_a_full_disk_gives_a_clear_error_and_leaves_no_partial_result(full_dir):
    record = {"paper": "p", "artifact": "a", "status": "ok", "tier": "smoke"}
    write_result(full_dir / "a.json", record, {})                      # an older, complete result
    noise = np.random.default_rng(0).random((200, 200))                # ~300 KB compressed: too big
    with pytest.raises(RepalignError, match=r"could not write .*a\.npz: No space left on device\. Free disk space"):
        write_result(full_dir / "a.json", {**record, "status": "changed"}, {"x": noise})
    assert sorted(p.name for p in full_dir.iterdir()) == ["a.json", "a.npz"]   # no temp file left
    assert read_result(full_dir / "a.json")["status"] == "ok"                  # the old result, intact


def test_an_unwritable_output_dir_fails_the_job_with_the_fix_and_writes_nothing(readonly_dir):
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    out = readonly_dir / "peaks_h1.pt"
    proc = subprocess.run([sys.executable, "-m", "repalign", "train", "imani2022", "peaks_h1", "--tier", "smoke",
                           "--device", "cpu", "--n-seeds", "1", "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert f"could not write {out}" in last and f"make {readonly_dir} writable" in last, last
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in readonly_dir.iterdir()) == ["old.json", "old.npz"]
