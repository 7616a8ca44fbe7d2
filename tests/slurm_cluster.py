"""A throw-away single-node SLURM cluster on localhost, for tests/test_slurm.py.

It starts ``munged``, ``slurmctld`` and ``slurmd`` (Debian's ``slurm-wlm`` and ``munge``
packages) as root, with every config, key, socket, state and log file under one
directory, and stops them again by their pids. Clients (sbatch, squeue, scancel, and
snakemake's SLURM plugin) find this cluster through ``SLURM_CONF``; see :attr:`env`.

No accounting database: ``AccountingStorageType=accounting_storage/none``, so job
states come from ``squeue``, which keeps finished jobs for ``MinJobAge`` seconds.
Processes are tracked with ``proctrack/linuxproc`` and ``task/none`` so that no cgroup
setup is needed (containers, CI runners). The node has one count-only GPU GRES
(``gres.conf``: ``Name=gpu Count=1 Flags=CountOnly``, ``File=/dev/null``; node ``Gres=gpu:1``):
slurmctld schedules and accounts a ``--gpus=1`` job on it although the machine may have no
GPU at all.

    with SlurmCluster(tmp_path / "slurm") as cluster:
        subprocess.run(["sbatch", "--wrap", "true"], env=cluster.env)
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "srun", "squeue", "scancel",
           "sinfo", "scontrol")


class ClusterUnavailable(RuntimeError):
    """The daemons cannot run here at all: not root, or the binaries are missing."""


class ClusterStartError(RuntimeError):
    """The daemons could run here but did not come up (a configuration problem)."""


def missing_binaries() -> list[str]:
    return [b for b in DAEMONS if shutil.which(b) is None
            and not Path("/usr/sbin", b).exists()]


def _which(name: str) -> str:
    path = shutil.which(name) or str(Path("/usr/sbin", name))
    if not Path(path).exists():
        raise ClusterUnavailable(f"{name} not found (apt-get install -y slurm-wlm munge)")
    return path


# snakemake-executor-plugin-slurm-jobstep (0.6) starts each job's command with a nested
# `srun` whose environment it strips of every SLURM_* variable, SLURM_CONF included. A
# real cluster's srun then reads /etc/slurm/slurm.conf (or finds slurmctld via DNS); this
# test cluster keeps its slurm.conf in a temporary directory instead, so jobs get an
# `srun` shim, first on PATH, that puts SLURM_CONF back.
SRUN_SHIM = """#!/bin/sh
SLURM_CONF={conf}
export SLURM_CONF
exec {srun} "$@"
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _node_hardware() -> dict[str, str]:
    """This machine's CPU topology and memory as slurmd itself reports them (``slurmd -C``)."""
    out = subprocess.run([_which("slurmd"), "-C"], capture_output=True, text=True,
                         timeout=30).stdout
    first = out.splitlines()[0] if out else ""
    fields = dict(kv.split("=", 1) for kv in first.split() if "=" in kv)
    if "CPUs" not in fields:
        cpus = os.cpu_count() or 1
        fields = {"CPUs": str(cpus), "RealMemory": "1000"}
    return fields


class SlurmCluster:
    """Single-node cluster: one partition (``partition``) with this machine as its node."""

    def __init__(self, root: Path, partition: str = "debug", min_job_age: int = 600):
        self.root = Path(root)
        self.partition = partition
        self.min_job_age = min_job_age
        self.node = socket.gethostname().split(".")[0]
        self.conf = self.root / "slurm.conf"
        self.procs: dict[str, subprocess.Popen] = {}
        self.bin = self.root / "bin"
        self.env = dict(os.environ, SLURM_CONF=str(self.conf),
                        PATH=f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}")
        for var in [v for v in self.env if v.startswith("SLURM_") and v != "SLURM_CONF"]:
            del self.env[var]  # never inherit an enclosing allocation

    # -- setup -----------------------------------------------------------------------
    def _write_config(self) -> None:
        r = self.root
        for d in ("state", "spool", "log", "munge", "bin"):
            (r / d).mkdir(parents=True, exist_ok=True)
        shim = self.bin / "srun"
        shim.write_text(SRUN_SHIM.format(conf=self.conf, srun=_which("srun")))
        shim.chmod(0o755)
        os.chmod(r / "munge", 0o700)
        hw = _node_hardware()
        # Leave headroom so that slurmd never finds less memory than declared.
        real_mem = max(500, int(int(hw.get("RealMemory", "1000")) * 0.9))
        topology = " ".join(f"{k}={hw[k]}" for k in
                            ("CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket",
                             "ThreadsPerCore") if k in hw)
        self.cpus = int(hw["CPUs"])
        self.real_memory = real_mem
        # One GPU GRES that slurmd only counts (Flags=CountOnly: no GPU, no NVML, nothing
        # bound; task/none confines no device). slurmd 22.05 drops a gpu GRES without File=
        # ("Removing file-less GPU"), so File= names /dev/null, which every machine has.
        (r / "gres.conf").write_text(
            f"NodeName={self.node} Name=gpu Count=1 File=/dev/null Flags=CountOnly\n")
        self.conf.write_text(f"""\
# Generated by tests/slurm_cluster.py: a single-node test cluster.
ClusterName=repalign-test
SlurmctldHost={self.node}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={r / 'munge' / 'munge.socket'}
StateSaveLocation={r / 'state'}
SlurmdSpoolDir={r / 'spool'}
SlurmctldPidFile={r / 'slurmctld.pid'}
SlurmdPidFile={r / 'slurmd.pid'}
SlurmctldLogFile={r / 'log' / 'slurmctld.log'}
SlurmdLogFile={r / 'log' / 'slurmd.log'}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
# Without an accounting database finished jobs are only visible to squeue/scontrol
# for MinJobAge seconds; snakemake's status checks (--slurm-status-command squeue)
# must see them.
MinJobAge={self.min_job_age}
ReturnToService=2
SchedulerParameters=sched_interval=1
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
NodeName={self.node} NodeAddr=127.0.0.1 {topology} RealMemory={real_mem} Gres=gpu:1 State=UNKNOWN
PartitionName={self.partition} Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
""")

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.root / "log" / f"{name}.stdout", "wb")
        self.procs[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                            env=self.env, start_new_session=True)
        log.close()

    def _check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise ClusterStartError(
                    f"{name} exited with status {proc.returncode}:\n{self.logs(name)}")

    def logs(self, name: str | None = None) -> str:
        files = sorted((self.root / "log").glob(f"{name or ''}*"))
        return "\n".join(f"--- {f.name}\n{f.read_text(errors='replace')[-3000:]}"
                         for f in files if f.is_file())

    # -- lifecycle -------------------------------------------------------------------
    def start(self, timeout: float = 60) -> "SlurmCluster":
        """Start munged, slurmctld and slurmd; return once the node is idle."""
        if os.geteuid() != 0:
            raise ClusterUnavailable("the test SLURM daemons must run as root")
        missing = missing_binaries()
        if missing:
            raise ClusterUnavailable(
                f"missing {', '.join(missing)} (apt-get install -y slurm-wlm munge)")
        try:
            self._start(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, timeout: float) -> None:
        self._write_config()
        munge = self.root / "munge"
        key = munge / "munge.key"
        subprocess.run([_which("mungekey"), "--create", "--force", f"--keyfile={key}"],
                       check=True, capture_output=True)
        # --force: munged refuses to run as root otherwise.
        self._spawn("munged", [
            _which("munged"), "--foreground", "--force",
            f"--socket={munge / 'munge.socket'}", f"--key-file={key}",
            f"--pid-file={munge / 'munged.pid'}", f"--seed-file={munge / 'munged.seed'}",
            f"--log-file={self.root / 'log' / 'munged.log'}",
        ])
        self._wait(lambda: (munge / "munge.socket").exists(), timeout, "munged's socket")
        # -D: stay in the foreground (so the pid is ours); -i: ignore saved state.
        self._spawn("slurmctld", [_which("slurmctld"), "-D", "-i", "-f", str(self.conf)])
        self._wait(lambda: "UP" in self._out(["scontrol", "ping"]), timeout, "slurmctld")
        self._spawn("slurmd", [_which("slurmd"), "-D", "-f", str(self.conf), "-N", self.node])
        self._wait(lambda: "idle" in self._out(["sinfo", "-h", "-N", "-o", "%T"]),
                   timeout, "slurmd to register an idle node")

    def _out(self, argv: list[str]) -> str:
        try:
            return subprocess.run(argv, env=self.env, capture_output=True, text=True,
                                  timeout=10).stdout
        except subprocess.TimeoutExpired:
            return ""

    def _wait(self, ready, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            if ready():
                return
            time.sleep(0.3)
        raise ClusterStartError(f"timed out waiting for {what}:\n{self.logs()}")

    def stop(self) -> None:
        """Cancel every job of this cluster, then stop the daemons by their pids."""
        ctld = self.procs.get("slurmctld")
        if ctld is not None and ctld.poll() is None:
            subprocess.run(["scancel", "--partition", self.partition], env=self.env,
                           capture_output=True, timeout=30)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and self._out(
                    ["squeue", "-h", "-t", "PENDING,RUNNING,COMPLETING", "-o", "%i"]).strip():
                time.sleep(0.5)
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)

    def __enter__(self) -> "SlurmCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- queries ---------------------------------------------------------------------
    def squeue(self, fmt: str = "%i|%T|%k") -> list[list[str]]:
        """Rows of every job slurmctld still knows (finished ones for MinJobAge s)."""
        out = subprocess.run(["squeue", "-h", "-t", "all", "-o", fmt], env=self.env,
                             capture_output=True, text=True, timeout=10).stdout
        return [line.split("|") for line in out.splitlines() if line.strip()]
