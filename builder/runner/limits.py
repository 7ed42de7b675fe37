"""Production limits of Numerai's pickle runs, applied to a local child process.

Numerai documents 1 CPU, 4 GB of RAM, up to 10 minutes and no internet for a model upload run
(docs: numerai-tournament/submissions/model-uploads.md; docs/readme/test.md, "Limits"). The
container enforces them with cgroups; here we use what an unprivileged-or-root Linux process
can do without touching cgroups:

* CPU: ``sched_setaffinity`` to ``cpus`` cores, done by the child itself before numpy loads
  (``child_env``; the container uses a CFS quota instead, so a multi-threaded library sees
  the host's core count there but only one core here).
* Memory: the runner samples the child's resident set (and its descendants') and kills it
  past ``memory_mb`` ("Out of memory", like the cgroup OOM killer); RLIMIT_AS is set to
  ``memory_mb + address_space_headroom_mb`` (by the child, like the affinity) as a backstop
  against allocations too fast to sample. The headroom exists because numpy/pandas/pyarrow reserve ~0.5 GB of address space
  they never touch (measured: Python 3.12 + pandas 2.3 + a 6720 x 2748 int8 parquet: VmSize
  790 MB, RSS 230 MB).
* Wall time: SIGKILL to the whole process group after ``timeout_s`` ("Timeout").
* Network: the child starts in an empty network namespace (``unshare -n``, no interfaces but
  a down loopback) when that works; otherwise predict.py's emulation replaces socket
  connect/getaddrinfo before the pickle is loaded (NMR_BLOCK_NETWORK=1).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Run limits; the defaults are Numerai's production values."""

    cpus: int | None = 1  # None: no CPU pinning
    memory_mb: int | None = 4096  # None: unlimited
    timeout_s: float | None = 600.0  # None: no wall-time limit
    network: bool = False  # True: allow network access (not what production does)
    address_space_headroom_mb: int = 1024
    sample_interval_s: float = 0.02


def network_isolation() -> str:
    """How the child will be cut off the network: "namespace" or "socket-block"."""
    return "namespace" if _unshare_works() else "socket-block"


def wrap_command(argv: list[str], limits: Limits) -> tuple[list[str], dict[str, str]]:
    """The argv (maybe prefixed by ``unshare -n``) and extra environment for the child."""
    if limits.network:
        return argv, {}
    if _unshare_works():
        # unshare execs the program in place (no --fork), so the pid we wait on is python's
        return [shutil.which("unshare") or "unshare", "--net", "--", *argv], {}
    return argv, {"NMR_BLOCK_NETWORK": "1"}


def child_env(limits: Limits) -> dict[str, str]:
    """Environment telling predict_child.py which cores and address space to allow itself.

    The child applies them first thing, before numpy loads (see predict_child.py).
    """
    env: dict[str, str] = {}
    if limits.cpus is not None and hasattr(os, "sched_getaffinity"):
        available = sorted(os.sched_getaffinity(0))
        env["NMR_CPU_LIST"] = ",".join(str(c) for c in available[: max(1, limits.cpus)])
    if limits.memory_mb is not None:
        address_space = (limits.memory_mb + limits.address_space_headroom_mb) * MIB
        env["NMR_ADDRESS_SPACE_BYTES"] = str(address_space)
    return env


def tree_rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` and all its descendants, 0 once it is gone."""
    total = 0
    stack = [pid]
    seen: set[int] = set()
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        total += _rss_bytes(current)
        stack.extend(_children(current))
    return total


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as handle:
            resident_pages = int(handle.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def _children(pid: int) -> list[int]:
    children: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return children
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as handle:
                children.extend(int(c) for c in handle.read().split())
        except (OSError, ValueError):
            continue
    return children


@functools.lru_cache(maxsize=1)
def _unshare_works() -> bool:
    unshare = shutil.which("unshare")
    if unshare is None:
        return False
    try:
        done = subprocess.run(
            [unshare, "--net", "--", "true"], capture_output=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0
