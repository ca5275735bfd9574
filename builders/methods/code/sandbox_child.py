"""The sandbox's child process: runs one function on a list of inputs, one at a time, and reports each result.

Started by `builders.methods.code.sandbox` as `python -s -P -B sandbox_child.py` with a clean environment; it imports only
the standard library. The parent writes one JSON line on stdin:

    {"source": ..., "func": ..., "inputs": [[index, repr string], ...], "workdir": ..., "limits": {...}, "audit": true}

and reads JSON lines back on the child's stdout: {"started": [layers]} once isolated, {"ready": true} once the
source is loaded (or {"load_error": ...}), then one {"i": index, "ok": ..., "output": ..., "error": ...} per
input, as each finishes. Nothing but JSON of strings
crosses the boundary. Before the untrusted source is compiled the child, in this order:

1. points stdin, stdout and stderr at /dev/null (results go out on a private copy of the stdout pipe);
2. enters a fresh network namespace (as root; else a user + network namespace where the kernel allows it);
3. as root: enters a fresh mount namespace in which every mount is read-only and the working directory is a
   fresh tmpfs of `disk_mb` (so no file can be written anywhere else, not even in /tmp or /dev/shm);
4. as root: drops to a uid/gid of its own (no other process has it; `nobody` where the uid map is too narrow),
   with no supplementary groups, so it cannot signal or write to the caller or to the other sandboxes;
5. sets resource limits: address space, CPU seconds, file size, no new processes or threads, open files, no cores;
6. asks the kernel to kill it when its parent dies;
7. installs an audit hook (cannot be removed) that refuses process creation, signals, sockets, ctypes, resource
   changes, writes outside the working directory and reads outside it and Python's own folders.
"""

import ast
import builtins
import json
import os
import re
import resource
import signal
import sys
from types import MappingProxyType

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
CLONE_NEWNS = 0x00020000
PR_SET_PDEATHSIG = 1
NOBODY = 65534
OWN_UID_BASE = 1_000_000_000  # + the child's pid: a uid no account or other process has
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = (
    1,
    2,
    4,
    8,
    32,
    4096,
    16384,
    1 << 18,
)
KEPT_MOUNT_FLAGS = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC}

# Audit events refused outright: by exact name, or every event of a module.
DENIED_EVENTS = frozenset(
    {
        "os.system",
        "os.exec",
        "os.fork",
        "os.forkpty",
        "os.posix_spawn",
        "os.spawn",
        "os.kill",
        "os.killpg",
        "os.chmod",
        "os.chown",
        "os.lockf",
        "os.setxattr",
        "os.removexattr",
        "os.chflags",
        "os.lchflags",
        "signal.pthread_kill",
        "gc.get_objects",
        "gc.get_referrers",
        "gc.get_referents",
        "sys._current_frames",
        "builtins.input",
        "builtins.breakpoint",
        "fcntl.ioctl",
        "shutil.chown",
    }
)
DENIED_MODULES = frozenset(
    {
        "subprocess",
        "pty",
        "socket",
        "ctypes",
        "resource",
        "webbrowser",
        "http",
        "urllib",
        "ftplib",
        "smtplib",
        "imaplib",
        "poplib",
        "nntplib",
        "telnetlib",
        "ensurepip",
        "pdb",
        "syslog",
        "winreg",
    }
)
DENIED_IMPORTS = frozenset({"ctypes", "_ctypes", "_posixsubprocess"})
# Standard-library modules never imported ahead of the untrusted code: ctypes, and those that act on import
# (besides every `__main__` submodule: `unittest.__main__` runs tests, `ensurepip.__main__` installs pip).
NOT_PRELOADED = frozenset(
    {
        "ctypes",
        "_ctypes",
        "antigravity",
        "this",
        "turtle",
        "turtledemo",
        "tkinter",
        "idlelib",
        "site",
        "pdb",
        "test",
        "ensurepip",
        "venv",
        "lib2to3",
        "__hello__",
        "__phello__",
    }
)
# Events that write: the positions of their path arguments, and of the matching dir_fd argument (or None).
WRITE_PATHS = {
    "os.remove": ((0, 1),),
    "os.rmdir": ((0, 1),),
    "os.mkdir": ((0, 2),),
    "os.rename": ((0, 2), (1, 3)),
    "os.symlink": ((1, 2),),
    "os.link": ((1, 3),),
    "os.utime": ((0, 3),),
    "os.truncate": ((0, None),),
    "shutil.rmtree": ((0, 1),),
    "shutil.copyfile": ((1, None),),
    "shutil.copytree": ((1, None),),
    "shutil.copymode": ((1, None),),
    "shutil.copystat": ((1, None),),
    "shutil.move": ((0, None), (1, None)),
    "shutil.make_archive": ((0, None),),
    "shutil.unpack_archive": ((1, None),),
    "tempfile.mkdtemp": ((0, None),),
    "tempfile.mkstemp": ((0, None),),
}
READ_PATHS = {
    "os.listdir": ((0, None),),
    "os.scandir": ((0, None),),
    "os.walk": ((0, None),),
    "os.fwalk": ((0, None),),
    "os.listxattr": ((0, None),),
    "os.getxattr": ((0, None),),
    "glob.glob": ((1, None),),
    "glob.glob/2": ((1, 2),),
}
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC


class SandboxViolation(PermissionError):
    """Raised by the audit hook; the call's result is then a failure whose error starts with `blocked:`."""


def main() -> None:
    job = json.loads(sys.stdin.readline())
    out = _private_result_channel()
    limits = job["limits"]
    os.chdir(job["workdir"])
    layers = _isolate(job["workdir"], limits, job["source"])
    if job["audit"]:
        violations = _install_audit_hook(job["workdir"])
    else:
        violations = []

    def send(message: dict) -> None:
        data = (json.dumps(message) + "\n").encode()
        while data:
            data = data[os.write(out, data) :]

    send({"started": layers})
    namespace = {"__name__": "__sandbox__", "__builtins__": builtins}
    try:
        exec(compile(job["source"], "<sandbox>", "exec"), namespace)
        func = namespace[job["func"]]
        if not callable(func):
            raise TypeError(f"{job['func']!r} is not callable")
    except BaseException as err:  # noqa: BLE001 - anything the untrusted source raises is a result
        send({"load_error": _describe(err, violations)})
        return
    send({"ready": True})

    max_chars = limits["max_output_chars"]
    for index, text in job["inputs"]:
        violations.clear()
        ok, output, error = _call(func, text, max_chars, violations)
        send({"i": index, "ok": ok, "output": output, "error": error})


def _private_result_channel() -> int:
    """Keep a private copy of the stdout pipe for results; the untrusted code's stdio goes to /dev/null."""
    out = os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an over-long write raises OSError instead of killing us
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # the parent went away: die quietly
    return out


def _isolate(workdir: str, limits: dict, source: str) -> list[str]:
    """Kernel-level isolation; returns the layers that took effect (the parent reports them)."""
    layers = []
    libc = _libc()
    is_root = os.geteuid() == 0
    if libc is not None:
        flags = CLONE_NEWNET if is_root else CLONE_NEWUSER | CLONE_NEWNET
        if libc.unshare(flags) == 0:
            layers.append("network namespace")
    if is_root:
        uid = _own_uid()
        if libc is not None and _private_filesystem(libc, workdir, limits["disk_mb"], uid):
            layers.append("read-only mounts, tmpfs working directory")
        _preload(source)  # as root, so after the mounts turned read-only
        os.chown(workdir, uid, uid)
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        layers.append("uid nobody" if uid == NOBODY else "own uid")
    memory = limits["memory_mb"] * 1024 * 1024
    cpu = limits["cpu_s"]
    fsize = limits["file_size_mb"] * 1024 * 1024
    for name, value in (
        (resource.RLIMIT_AS, memory),
        (resource.RLIMIT_CPU, cpu),
        (resource.RLIMIT_FSIZE, fsize),
        (resource.RLIMIT_NPROC, 0),  # no fork, no threads (ignored for root, hence the uid drop)
        (resource.RLIMIT_NOFILE, 64),
        (resource.RLIMIT_CORE, 0),
    ):
        resource.setrlimit(name, (value, value))
    layers.append("rlimits")
    if libc is not None and libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:  # after the uid change
        if os.getppid() != limits["parent_pid"]:  # the parent died before the request took effect
            os._exit(1)
        layers.append("dies with parent")
    for name in [m for m in sys.modules if m.partition(".")[0] in ("ctypes", "_ctypes")]:
        del sys.modules[name]  # the untrusted code must import it again, and the hook refuses that
    return layers


def _own_uid() -> int:
    """A uid for this child alone (base + pid), if the uid map has it; else `nobody`, shared by all children."""
    uid = OWN_UID_BASE + os.getpid()
    try:
        with open("/proc/self/uid_map") as fh:
            ranges = [tuple(map(int, line.split())) for line in fh if line.strip()]
    except (OSError, ValueError):
        return NOBODY
    return uid if any(inside <= uid < inside + count for inside, _, count in ranges) else NOBODY


def _private_filesystem(libc, workdir: str, disk_mb: int, uid: int) -> bool:
    """A mount namespace where every mount is read-only and `workdir` a fresh tmpfs of `disk_mb` MB; as root.

    Returns False (and the layer is not reported) when any step fails; the audit hook and the uid still apply.
    """
    import ctypes

    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    if libc.unshare(CLONE_NEWNS) != 0 or libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        return False
    with open("/proc/self/mountinfo") as fh:
        mounts = [line.split() for line in fh if line.strip()]
    ok = True
    for fields in reversed(mounts):  # a mount point listed twice: the later mount is the visible one
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])  # \040 is a space
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY
        flags |= sum(flag for name, flag in KEPT_MOUNT_FLAGS.items() if name in fields[5].split(","))
        if libc.mount(None, os.fsencode(point), None, flags, None) != 0:
            ok = False
    options = f"size={disk_mb}m,nr_inodes=4096,mode=0700,uid={uid},gid={uid}".encode()
    if libc.mount(b"tmpfs", os.fsencode(workdir), b"tmpfs", MS_NOSUID | MS_NODEV, options) != 0:
        return False
    os.chdir(workdir)  # the working directory is now the tmpfs over it
    return ok


def _preload(source: str) -> None:
    """Import the standard-library modules the source names, while they can still be read.

    Once the child runs as its own uid it may not be able to read the Python installation (e.g. under /root);
    modules already in `sys.modules` need no file access. This runs as root (without root nothing needs it),
    in the network namespace and after the mounts turned read-only, but before the audit hook and the limits:
    only standard-library modules are loaded, none that act on import and no `__main__`; the source itself is
    parsed, never run.
    """
    import importlib

    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return  # the load step reports it
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)  # submodules, if any
    for name in sorted(names):
        top = name.partition(".")[0]
        if top in sys.stdlib_module_names and top not in NOT_PRELOADED and "__main__" not in name.split("."):
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - `from x import function`, or a module missing here
                pass


def _libc():
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True)
    except Exception:  # noqa: BLE001 - no ctypes: no namespaces, the other layers still apply
        return None


def _install_audit_hook(workdir: str) -> list[str]:
    """Install the hook; returns the list it appends a description of each refused event to.

    Everything the hook consults is bound as a local of this closure and immutable, so untrusted code cannot
    change it by rebinding module attributes of this file, nor through the frames of a hook it got to run its
    own code in (it can still patch `os` itself: see docs/code.md). The hook never calls the untrusted code:
    a path that is not a str, bytes or an int (a path object, whose `__fspath__` could answer one path to the
    hook and another to the call) counts as outside, and refusals name its type, not its `repr`.
    """
    violations: list[str] = []
    root = os.path.realpath(workdir)
    readable = tuple(
        sorted(
            {os.path.realpath(p) for p in (*sys.path, sys.prefix, sys.base_prefix, sys.exec_prefix) if p}
            | {root, os.devnull, "/dev/urandom"}
        )
    )
    denied_events, denied_modules, denied_imports = DENIED_EVENTS, DENIED_MODULES, DENIED_IMPORTS
    write_paths, read_paths = MappingProxyType(dict(WRITE_PATHS)), MappingProxyType(dict(READ_PATHS))
    write_flags = WRITE_FLAGS
    realpath, readlink, isdir, isabs, join, fsdecode = (
        os.path.realpath,
        os.readlink,
        os.path.isdir,
        os.path.isabs,
        os.path.join,
        os.fsdecode,
    )
    violation = SandboxViolation

    def resolve(path, dir_fd=None):
        """The real absolute path an event's path argument names; None when it cannot be told."""
        try:
            if type(path) is int:
                return readlink(f"/proc/self/fd/{path}")
            if type(path) not in (str, bytes) or (dir_fd is not None and type(dir_fd) is not int):
                return None
            path = fsdecode(path)
            if dir_fd is not None and dir_fd != -1 and not isabs(path):
                path = join(readlink(f"/proc/self/fd/{dir_fd}"), path)
            return realpath(path)
        except Exception:  # noqa: BLE001 - an argument that cannot be resolved counts as outside
            return None

    def shown(value) -> str:
        return repr(value) if type(value) in (str, bytes, int) else f"a {type(value).__qualname__} object"

    def inside(real, roots) -> bool:
        return real is not None and any(real == r or real.startswith(r.rstrip("/") + "/") for r in roots)

    def check(event, args, table, roots) -> None:
        for position, dir_position in table[event]:
            if position < len(args):
                dir_fd = args[dir_position] if dir_position is not None and dir_position < len(args) else None
                if not inside(resolve(args[position], dir_fd), roots):
                    refuse(f"{event} {shown(args[position])}")

    def refuse(what: str) -> None:
        violations.append(what)
        raise violation(f"{what} is not allowed in the sandbox")

    def hook(event: str, args: tuple) -> None:
        if event in denied_events or event.partition(".")[0] in denied_modules:
            refuse(event)
        elif event == "open":
            path, mode, flags = args
            real = resolve(path)
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool((flags or 0) & write_flags)
            if writes and not inside(real, (root,)):
                refuse(f"writing {shown(path)}")
            # a directory outside the working directory may not be opened: its fd would allow relative writes
            if not writes and (not inside(real, readable) or (isdir(real) and not inside(real, (root,)))):
                refuse(f"reading {shown(path)}")
        elif event == "import":
            if str.partition(args[0], ".")[0] in denied_imports:  # str.partition: a str subclass runs no code
                refuse(f"import {args[0]}")
        elif event in write_paths:
            check(event, args, write_paths, (root,))
        elif event in read_paths:
            check(event, args, read_paths, readable)
        elif event == "sqlite3.connect":
            memory = type(args[0]) in (str, bytes) and args[0] in (":memory:", b":memory:", "")
            if not memory and not inside(resolve(args[0]), (root,)):
                refuse(f"sqlite3.connect {shown(args[0])}")
        elif event == "object.__setattr__" and str.__str__(args[1]) in ("__code__", "__closure__", "__defaults__"):
            refuse(f"setting {args[1]}")

    sys.addaudithook(hook)
    return violations


def _call(func, text: str, max_chars: int, violations: list) -> tuple[bool, str | None, str | None]:
    try:
        args = ast.literal_eval(text)
    except Exception as err:  # noqa: BLE001
        return False, None, f"bad_input: not a Python literal ({type(err).__name__})"
    try:
        if isinstance(args, dict):
            value = func(**args)
        elif isinstance(args, tuple):
            value = func(*args)
        else:
            return False, None, "bad_input: an input is a dict of keyword arguments or a tuple of positional ones"
    except BaseException as err:  # noqa: BLE001 - SystemExit, KeyboardInterrupt included: all are results
        return False, None, _describe(err, violations)
    if violations:  # the code caught the refusal and went on: still a failure
        return False, None, f"blocked: {violations[0]} is not allowed in the sandbox"
    try:
        output = repr(value)
    except BaseException as err:  # noqa: BLE001
        return False, None, f"repr_failed: {_short(err)}"
    if not isinstance(output, str):
        return False, None, "repr_failed: __repr__ did not return a string"
    if len(output) > max_chars:
        return False, None, f"output_too_long: repr has {len(output)} characters (limit {max_chars})"
    return True, output, None


def _describe(err: BaseException, violations: list) -> str:
    if isinstance(err, SandboxViolation) or violations:
        return f"blocked: {violations[0] if violations else err} is not allowed in the sandbox"
    if isinstance(err, MemoryError):
        return "memory: MemoryError (the memory limit was reached)"
    return f"exception: {_short(err)}"


def _short(err: BaseException) -> str:
    try:
        text = str(err)
    except BaseException:  # noqa: BLE001 - an exception whose __str__ raises
        text = "?"
    return f"{type(err).__name__}: {text}"[:300] if text else type(err).__name__


if __name__ == "__main__":
    main()
