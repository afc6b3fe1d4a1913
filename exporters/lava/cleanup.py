"""Process-group and /dev/shm housekeeping after a Lava run (Linux /proc; degrades to no-ops
elsewhere): the watchdog (:mod:`.watchdog`) kills the worker's whole process group and
unlinks the shared-memory segments the run left behind. Imports neither Lava nor torch."""
from __future__ import annotations

import os
import signal
import subprocess
import time

SHM_DIR = "/dev/shm"
# Names Python's multiprocessing gives shared memory (psm_), semaphores (sem.mp-).
SHM_PREFIXES = ("psm_", "wnsm_", "sem.mp-")
TERM_GRACE = 3.0     # seconds between SIGTERM and SIGKILL
KILL_WAIT = 5.0      # seconds to wait for the group to vanish after SIGKILL


def _proc_stat(pid: str) -> tuple[str, int] | None:
    """(state, pgid) of a process, or None if it is gone/unreadable."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            text = fh.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()
    try:
        return fields[0], int(fields[2])
    except (IndexError, ValueError):
        return None


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group."""
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return []
    members = []
    for pid in pids:
        st = _proc_stat(pid)
        if st and st[1] == pgid and st[0] not in ("Z", "X"):
            members.append(int(pid))
    return members


def shm_mapped_by(pids) -> set[str]:
    """Names of /dev/shm files mapped or held open by the given processes."""
    names: set[str] = set()
    prefix = SHM_DIR + "/"
    for pid in pids:
        try:
            with open(f"/proc/{pid}/maps", "rb") as fh:
                for line in fh:
                    idx = line.find(prefix.encode())
                    if idx >= 0:
                        path = line[idx:].decode("utf-8", "replace").strip()
                        names.add(path[len(prefix):].split(" (deleted)")[0])
        except OSError:
            pass
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if target.startswith(prefix):
                    names.add(target[len(prefix):].split(" (deleted)")[0])
        except OSError:
            pass
    return names


def _shm_in_use() -> set[str]:
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()]
    except OSError:
        return set()
    return shm_mapped_by(pids)


def shm_snapshot() -> set[str]:
    try:
        return set(os.listdir(SHM_DIR))
    except OSError:
        return set()


def cleanup_shm(before: set[str], group_mapped: set[str]) -> list[str]:
    """Unlink segments that this run left behind: new since ``before`` with a
    multiprocessing name, or mapped by the killed group; ours (uid) and not in use by any
    live process (another Lava run, for one)."""
    new = {n for n in shm_snapshot() - before if n.startswith(SHM_PREFIXES)}
    candidates = (new | group_mapped) & shm_snapshot()
    if not candidates:
        return []
    in_use = _shm_in_use()
    removed = []
    for name in sorted(candidates - in_use):
        path = os.path.join(SHM_DIR, name)
        try:
            if os.lstat(path).st_uid != os.getuid():
                continue
            os.unlink(path)
            removed.append(name)
        except OSError:
            pass
    return removed


def _group_gone(proc: subprocess.Popen) -> bool:
    proc.poll()  # reap the worker itself, or it stays a (zombie) member of its group
    try:
        os.killpg(proc.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    # Orphaned zombies count as gone (an init that does not reap would keep them).
    return not group_members(proc.pid)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGTERM the worker's process group, then SIGKILL what is left; wait for it."""
    for sig, wait in ((signal.SIGTERM, TERM_GRACE), (signal.SIGKILL, KILL_WAIT)):
        if _group_gone(proc):
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            proc.poll()
            return
        except PermissionError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if _group_gone(proc):
                return
            time.sleep(0.05)
    try:
        proc.wait(timeout=1.0)
    except subprocess.TimeoutExpired:
        pass
