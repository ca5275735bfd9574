"""One run per output folder: an OS lock on `output_dir/.lock`, held by the run's main process while it lives.

`fcntl.flock` belongs to the open file, so the kernel drops it when the process ends, however it ends (`kill -9`
included): a lock is never stale, and the lock file is never deleted (deleting it would let two runs lock two
different files). The file names its holder (pid, host, start, command) for the message a second run gets.

Under `accelerate launch` only the main process locks: the other processes write nothing before the main one has
claimed the folder (they wait for it), so its lock covers the whole launch, on every node.

Network filesystems: an NFS client turns flock into the server's byte-range locks, which every client sees; a mount
with `nolock` or `local_lock` keeps locks on this machine (a warning says so); a filesystem with no locks at all
(Lustre mounted without `-o flock`, some FUSE mounts) is refused with the fix.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import socket
import sys
import time
from pathlib import Path

from builders.errors import UserError

logger = logging.getLogger("builders")

LOCK_NAME = ".lock"
_held: dict[str, int] = {}  # real path of a folder -> the open lock file this process holds on it
_NO_LOCKS = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


def probe(output_dir: Path) -> None:
    """Refuse now if another process holds the folder's lock, or if its filesystem has no locks (tried on the
    folder, or the nearest one above it that exists). Reads only: creates nothing."""
    output_dir = Path(output_dir)
    if os.path.realpath(output_dir) in _held:
        return
    existing = output_dir.absolute()
    while not existing.is_dir():
        existing = existing.parent
    path = output_dir / LOCK_NAME
    fd = os.open(path if path.is_file() else existing, os.O_RDONLY)
    try:
        _lock(fd, output_dir, fcntl.LOCK_SH)  # shared: probes never keep each other, or a run, out
    finally:
        os.close(fd)  # closing releases the probe's own lock


def acquire(output_dir: Path) -> None:
    """Hold the folder's lock until `release` or the end of the process; a second call is a no-op."""
    output_dir = Path(output_dir)
    key = os.path.realpath(output_dir)
    if key in _held and _same_file(_held[key], output_dir / LOCK_NAME):
        return
    release(output_dir)  # held on a lock file that was deleted with its folder: lock the one there now
    try:
        fd = os.open(output_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except PermissionError:  # made by another user's run: a read-only descriptor locks it as well
        fd = os.open(output_dir / LOCK_NAME, os.O_RDONLY)
    try:
        _lock(fd, output_dir, fcntl.LOCK_EX, patience_s=1.0)  # a probe's shared lock lasts microseconds
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "command": " ".join(sys.argv)[:300],
        }
        if os.access(output_dir / LOCK_NAME, os.W_OK):
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(holder).encode(), 0)
    except BaseException:
        os.close(fd)
        raise
    _held[key] = fd
    _warn_if_local_only(output_dir)


def release(output_dir: Path) -> None:
    fd = _held.pop(os.path.realpath(output_dir), None)
    if fd is not None:
        os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except OSError:
        return False


def _lock(fd: int, output_dir: Path, operation: int, patience_s: float = 0.0) -> None:
    deadline = time.monotonic() + patience_s
    while True:
        try:
            fcntl.flock(fd, operation | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() < deadline:
                time.sleep(0.05)
                continue
            raise UserError(
                f"output_dir '{output_dir}' is in use by another run ({_holder(fd)}); wait for it to end, or choose "
                "another output_dir"
            ) from None
        except OSError as err:
            _refuse_without_locks(err, output_dir)
            raise


def _refuse_without_locks(err: OSError, output_dir: Path) -> None:
    if err.errno in _NO_LOCKS:
        fstype, _ = mount_of(output_dir)
        raise UserError(
            f"output_dir '{output_dir}' is on a filesystem without file locks ({fstype or 'unknown'}: {err.strerror}), "
            "so two runs could write it at once; choose an output_dir on a filesystem with locks (a local disk, NFS "
            "with its lock manager, Lustre mounted with -o flock)"
        ) from None


def _holder(fd: int) -> str:
    try:
        holder = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except ValueError:
        holder = {}
    if not holder:
        return "a process that is starting"
    return f"pid {holder.get('pid')} on {holder.get('host')}, since {holder.get('started')}: {holder.get('command')}"


def mount_of(path: Path) -> tuple[str | None, set[str]]:
    """The filesystem type and mount options of the mount that holds `path` (Linux), or (None, set())."""
    real, best = os.path.realpath(path), ("", None, set())
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return None, set()
    for line in lines:
        fields = line.split()
        if len(fields) < 4:
            continue
        point = fields[1].encode().decode("unicode_escape")  # spaces come as \040
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best[0]):
            best = (point, fields[2], set(fields[3].split(",")))
    return best[1], best[2]


def _warn_if_local_only(output_dir: Path) -> None:
    fstype, options = mount_of(output_dir)
    if fstype and fstype.startswith("nfs") and ({"nolock", "local_lock=all", "local_lock=flock"} & options):
        logger.warning(
            "output_dir %s is on NFS mounted with %s: its lock is seen by this machine only, so a run on another "
            "machine would not be kept out of it",
            output_dir,
            ",".join(sorted({"nolock", "local_lock=all", "local_lock=flock"} & options)),
        )
