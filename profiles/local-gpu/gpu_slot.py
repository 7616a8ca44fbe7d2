#!/usr/bin/env python3
"""Run a command pinned to free GPUs of this machine: ``gpu_slot.py [--enable E] N -- CMD...``.

Snakemake's local executor can limit how many GPUs the running jobs ask for together
(``--resources gpu=4``) but does not tell a job *which* GPU is its own. This wrapper does:
it takes an exclusive lock on N of the machine's GPUs (one lock file per GPU, ``flock``),
sets ``CUDA_VISIBLE_DEVICES`` to them and ``exec``s CMD, which inherits the locks; they are
released when CMD (and every child still holding the file descriptors) exits, also on a
crash or kill -9. With snakemake's ``gpu`` limit no job ever waits here; a job that finds
no free GPU (another snakemake on the same machine) waits until one frees up.

* N = 0: ``CUDA_VISIBLE_DEVICES`` is set to the empty string, so the job runs on the CPU
  and cannot crowd a GPU that another job holds.
* ``--enable 0``, a SLURM job (``SLURM_JOB_ID`` set: SLURM assigns the GPUs), or a machine
  without GPUs: CMD runs unchanged.

The GPUs to share are ``$CUDA_VISIBLE_DEVICES`` of the caller (so
``CUDA_VISIBLE_DEVICES=2,3 snakemake ...`` shares GPUs 2 and 3), else every GPU that
``nvidia-smi`` lists. Lock files live in ``$REPALIGN_GPU_LOCK_DIR`` (default
``/tmp/repalign-gpu-locks``), shared by every user of the machine.

Standard library only, so that it runs in any environment the job runs in.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import subprocess
import sys
import time


def available_gpus() -> list[str]:
    """The GPUs this job may choose from, as CUDA_VISIBLE_DEVICES entries."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [d.strip() for d in visible.split(",") if d.strip() and d.strip() != "-1"]
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def _lock_dir() -> str:
    path = os.environ.get("REPALIGN_GPU_LOCK_DIR", "/tmp/repalign-gpu-locks")
    try:
        os.makedirs(path, exist_ok=True)
        os.chmod(path, 0o1777)  # shared by every user of the machine, like /tmp
    except PermissionError:
        pass  # made by another user: already 1777
    return path


def acquire(gpus: list[str], n: int, poll_s: float = 2.0,
            log=sys.stderr) -> tuple[list[str], list[int]]:
    """Lock n of gpus (waiting while fewer are free); return their ids and the lock fds."""
    if n > len(gpus):
        raise SystemExit(f"gpu_slot: the job needs {n} GPUs, this machine offers {len(gpus)} "
                         f"({','.join(gpus) or 'none'})")
    lock_dir = _lock_dir()
    waited = False
    while True:
        held: list[tuple[str, int]] = []
        for gpu in gpus:
            path = os.path.join(lock_dir, f"gpu{gpu}.lock")
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                os.fchmod(fd, 0o666)
            except PermissionError:
                pass
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            held.append((gpu, fd))
            if len(held) == n:
                return [g for g, _ in held], [f for _, f in held]
        for _, fd in held:  # not enough free: release and retry, so jobs never deadlock
            os.close(fd)
        if not waited:
            print(f"gpu_slot: waiting for {n} free GPU(s) of {','.join(gpus)}", file=log)
            waited = True
        time.sleep(poll_s)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--enable", type=int, default=1,
                        help="0: run CMD unchanged (how the rules call it outside local-gpu)")
    parser.add_argument("gpus", type=int, help="GPUs the job needs (its resources gpu)")
    parser.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD ARGS...")
    args = parser.parse_args(argv)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        parser.error("no command given (gpu_slot.py N -- CMD ...)")

    if args.enable and "SLURM_JOB_ID" not in os.environ:
        if args.gpus == 0:
            os.environ["CUDA_VISIBLE_DEVICES"] = ""  # a CPU job keeps off every GPU
        else:
            gpus = available_gpus()
            if gpus:  # else no GPU here: the job decides (--device auto runs on the CPU)
                mine, fds = acquire(gpus, args.gpus)
                for fd in fds:
                    os.set_inheritable(fd, True)
                os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(mine)
                print(f"gpu_slot: CUDA_VISIBLE_DEVICES={os.environ['CUDA_VISIBLE_DEVICES']}",
                      file=sys.stderr)
    os.execvp(cmd[0], cmd)


if __name__ == "__main__":
    main()
