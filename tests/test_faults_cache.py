"""Two runs (different work directories) sharing one ``cache_dir`` (issue 16, concurrency).

The decode cache (``repalign.data.cache``) writes every file under a unique temp name and
moves it into place, marker last, so concurrent decoders of the same entry each write a
complete copy and a reader sees either no entry or a whole one. These tests run real
processes at once: two loaders decoding the same dataset from an empty cache, and two
writers racing on one entry while a third process keeps reading it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from conftest import ROOT
from test_data_formats import _ct_csv

ENV = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
       "OMP_NUM_THREADS": "1"}


def spawn(code: str, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *map(str, args)], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen) -> str:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    return out


WAIT = """
import sys, time
from pathlib import Path
go = Path(sys.argv[1])
while not go.exists():
    time.sleep(0.01)
"""


def test_two_processes_decoding_into_one_empty_cache_both_get_the_data_and_leave_one_entry(tmp_path):
    root, cache, go = tmp_path / "data", tmp_path / "cache", tmp_path / "go"
    _ct_csv(root / "ct_slice" / "slice_localization_data.csv", n=400)
    loader = WAIT + """
import hashlib
from repalign.data import load_dataset
split = load_dataset("ct_slice", root=sys.argv[2], cache_dir=sys.argv[3])
print(hashlib.sha1(split.x.numpy().tobytes() + split.y.numpy().tobytes()).hexdigest())
"""
    procs = [spawn(loader, go, root, cache) for _ in range(2)]
    go.touch()
    digests = {finish(p).strip() for p in procs}
    assert len(digests) == 1
    third = spawn(loader.replace("print(", "print(split.source, "), go, root, cache)
    source, digest = finish(third).rsplit(" ", 1)
    assert "from cache" in source and digest.strip() in digests
    names = sorted(p.name for p in (cache / "ct_slice").iterdir())
    assert len(names) == 3 and not [n for n in names if n.endswith(".tmp")], names   # x, y, marker


def test_racing_cache_writers_never_expose_a_partial_entry_to_a_reader(tmp_path):
    cache, go = tmp_path / "cache", tmp_path / "go"
    entry = """
import numpy as np
from repalign.data.cache import ArrayCache
cache = ArrayCache(sys.argv[2], "race", "train", [sys.argv[1]])
x = np.arange(2_000_000, dtype=np.float32).reshape(1000, 2000)
"""
    writer = WAIT + entry + """
for _ in range(30):
    assert cache.save({"x": x, "y": x[:, 0].copy()}, {"source": "test"})
"""
    reader = WAIT + entry + """
seen, deadline = 0, time.monotonic() + 120
while seen < 50 and time.monotonic() < deadline:   # reads while the writers are still writing
    hit = cache.load()
    if hit is None:
        assert not seen, "a complete entry was there, then a read of it failed: a partial file"
        continue
    seen += 1
    assert np.array_equal(hit[0]["x"], x) and np.array_equal(hit[0]["y"], x[:, 0])
print(seen)
"""
    writers = [spawn(writer, go, cache) for _ in range(2)]
    reading = spawn(reader, go, cache)
    go.touch()
    for w in writers:
        finish(w)
    assert int(finish(reading)) == 50
    assert not [p for p in (cache / "race").iterdir() if p.name.endswith(".tmp")]
