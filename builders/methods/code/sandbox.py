"""Run untrusted Python functions in a separate, limited process and get their outputs back as text.

    from builders.methods.code.sandbox import run_function
    run_function("def add(a, b):\\n    return a + b", "add", [{"a": 1, "b": 2}, {"a": "x", "b": 1}])
    # [{"ok": True, "output": "3", "error": None},
    #  {"ok": False, "output": None, "error": "exception: TypeError: can only concatenate str (not \\"int\\") to str"}]

Each call starts a fresh child (`sandbox_child.py`, standard library only) in its own session and process
group, in a fresh temporary working directory, with a clean environment. The child isolates itself (network
namespace; as root, read-only mounts with a small tmpfs as its working directory and a uid of its own; resource
limits, death with its parent, an audit hook) before it
compiles the source, then runs the inputs one at a time and reports each result as it finishes. The parent
gives every input `timeout_s` seconds of wall-clock time; on a timeout or a crash it kills the whole process
group, records the failure for that input, and starts a new child for the inputs after it, so one hostile
input never costs the good ones their outputs. Only JSON of strings comes back; nothing is unpickled.

An input is a dict of keyword arguments or a tuple of positional ones, made of Python literals (it crosses
the process boundary as its `repr` and is rebuilt with `ast.literal_eval`). A result is
`{"ok": bool, "output": repr string or None, "error": "kind: detail" or None}`; `error_kind` gives the kind:

    exception, blocked, memory, timeout, killed, crashed, output_too_long, repr_failed, load_failed,
    bad_input, skipped, sandbox_error

What it guarantees and what it does not: docs/code.md.
"""

from __future__ import annotations

import ast
import json
import math
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from builders.parallel import resolve_num_proc

CHILD = Path(__file__).with_name("sandbox_child.py")
STARTUP_TIMEOUT_S = 60.0  # the interpreter's own start-up, before any untrusted code: generous on a loaded host


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 2.0  # wall clock per input, and for loading the source
    memory_mb: int = 1024  # address space of the child (RLIMIT_AS)
    file_size_mb: int = 16  # largest file the child may write (RLIMIT_FSIZE)
    disk_mb: int = 64  # all the files of its working directory together (the tmpfs's size; as root)
    max_output_chars: int = 10_000  # longer reprs are failures (output_too_long), never sent back


def run_function(
    source: str,
    func_name: str,
    inputs: list,
    timeout_s: float = 2.0,
    *,
    memory_mb: int = 1024,
    file_size_mb: int = 16,
    disk_mb: int = 64,
    max_output_chars: int = 10_000,
    skip_after_timeout: bool = False,
    audit_hooks: bool = True,
) -> list[dict]:
    """Call `func_name` (defined by `source`) on each input in a sandboxed child; one result per input.

    `skip_after_timeout` gives up on the remaining inputs once one has timed out (they fail as `skipped`): for
    callers that drop a function that times out anyway. `audit_hooks=False` leaves out the in-process audit
    hook, to test that the kernel-level limits hold alone.
    """
    limits = Limits(timeout_s, memory_mb, file_size_mb, disk_mb, max_output_chars)
    results: list[dict | None] = [None] * len(inputs)
    todo = []
    for index, value in enumerate(inputs):
        text, problem = _encode(value)
        if problem:
            results[index] = _failure(f"bad_input: {problem}")
        else:
            todo.append((index, text))
    while todo:
        done = _run_child(source, func_name, todo, limits, audit_hooks)
        for index, result in done.items():
            results[index] = result
        todo = [(i, t) for i, t in todo if i not in done]
        if skip_after_timeout and any(error_kind(r) == "timeout" for r in done.values()):
            for index, _ in todo:
                results[index] = _failure("skipped: an earlier input timed out")
            break
    return results


def run_many(jobs: list[tuple[str, str, list]], workers: int | None = None, **limits) -> list[list[dict]]:
    """`run_function` on many (source, func_name, inputs) jobs, `workers` children at a time (None: one per core this
    process may use); the results come back in the order of `jobs`."""
    workers = max(1, min(resolve_num_proc(workers), len(jobs)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda job: run_function(*job, **limits), jobs))


def error_kind(result: dict) -> str | None:
    """The kind of a failed result (`timeout`, `exception`, ...); None for a success."""
    return None if result["ok"] else (result["error"] or "unknown").partition(":")[0]


@cache
def isolation_layers() -> tuple[str, ...]:
    """The layers the kernel granted a child here (network namespace, read-only mounts, own uid, rlimits, ...)."""
    layers: list[str] = []
    _run_child("def f():\n    return 0\n", "f", [(0, "()")], Limits(), True, layers_out=layers)
    return tuple(layers)


# ---------------------------------------------------------------------------------------------------------------


def _encode(value) -> tuple[str | None, str | None]:
    """An input as the literal text the child rebuilds it from, or the reason it cannot cross."""
    if not isinstance(value, (dict, tuple)):
        return None, f"expected a dict of keyword arguments or a tuple of positional ones, got {type(value).__name__}"
    if isinstance(value, dict) and not all(isinstance(k, str) and k.isidentifier() for k in value):
        return None, "keyword argument names must be identifiers"
    text = repr(value)
    try:
        if ast.literal_eval(text) != value:
            return None, "the value does not survive repr -> literal_eval"
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None, "not made of Python literals"
    return text, None


def _failure(error: str) -> dict:
    return {"ok": False, "output": None, "error": error[:500]}


def _run_child(
    source: str,
    func_name: str,
    todo: list[tuple[int, str]],
    limits: Limits,
    audit_hooks: bool,
    layers_out: list | None = None,
) -> dict[int, dict]:
    """Run one child over `todo` until it finishes, fails to load, or loses an input; return what it settled.

    Always settles at least the first input of `todo`, so the caller's loop ends.
    """
    first = todo[0][0]
    workdir = tempfile.mkdtemp(prefix="builders-sandbox-")
    job = {
        "source": source,
        "func": func_name,
        "inputs": todo,
        "workdir": workdir,
        "audit": audit_hooks,
        "limits": {
            "memory_mb": limits.memory_mb,
            "file_size_mb": limits.file_size_mb,
            "disk_mb": limits.disk_mb,
            "max_output_chars": limits.max_output_chars,
            "cpu_s": math.ceil(limits.timeout_s * (len(todo) + 1)) + 1,
            "parent_pid": os.getpid(),
        },
    }
    env = {
        "PATH": os.defpath,
        "HOME": workdir,
        "TMPDIR": workdir,
        "LANG": "C.UTF-8",
        "PYTHONHASHSEED": "0",  # set and dict reprs of strings come out the same in every run
        "PYTHONDONTWRITEBYTECODE": "1",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
    }
    settled: dict[int, dict] = {}
    proc = None
    try:
        proc = subprocess.Popen(
            # not -I: it implies -E, which would ignore PYTHONHASHSEED; the environment is ours anyway
            [sys.executable, "-s", "-P", "-B", str(CHILD)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=workdir,
            env=env,
            start_new_session=True,  # its own process group, killed as a whole
            close_fds=True,
        )
        reader = _Lines(proc.stdout.fileno(), max_line=4 * limits.max_output_chars + 4096)
        try:
            proc.stdin.write((json.dumps(job) + "\n").encode())
            proc.stdin.close()
        except BrokenPipeError:
            pass  # it died at once: the reads below say how

        started = reader.next(STARTUP_TIMEOUT_S)
        if not isinstance(started, dict) or "started" not in started:
            return {i: _failure(f"sandbox_error: the child did not start ({_status(started, proc)})") for i, _ in todo}
        if layers_out is not None:
            layers_out.extend(started["started"])

        loaded = reader.next(limits.timeout_s)
        if loaded == _TIMEOUT:
            error = f"timeout: loading the source took more than {limits.timeout_s:g} s"
            return {i: _failure(error) for i, _ in todo}
        if isinstance(loaded, dict) and "load_error" in loaded:
            return {i: _failure(f"load_failed: {loaded['load_error']}") for i, _ in todo}
        if not (isinstance(loaded, dict) and loaded.get("ready")):
            return {i: _failure(f"load_failed: {_status(loaded, proc)}") for i, _ in todo}

        for index, _ in todo:
            message = reader.next(limits.timeout_s)
            if message == _TIMEOUT:
                settled[index] = _failure(f"timeout: no result within {limits.timeout_s:g} s")
                return settled
            result = _result(message, index)
            if result is None:
                settled[index] = _failure(_status(message, proc))
                return settled
            settled[index] = result
        return settled
    except OSError as err:  # could not start or talk to the child (no processes left, no disk, ...)
        settled.setdefault(first, _failure(f"sandbox_error: {type(err).__name__}: {err}"))
        return settled
    finally:
        if proc is not None:
            _kill(proc)
        shutil.rmtree(workdir, ignore_errors=True)


def _result(message, index: int) -> dict | None:
    """A well-formed result for input `index`, or None (then the child is treated as lost)."""
    if not isinstance(message, dict) or message.get("i") != index or not isinstance(message.get("ok"), bool):
        return None
    output, error = message.get("output"), message.get("error")
    if message["ok"] and isinstance(output, str) and error is None:
        return {"ok": True, "output": output, "error": None}
    if not message["ok"] and output is None and isinstance(error, str):
        return _failure(error)
    return None


def _status(message, proc: subprocess.Popen) -> str:
    """Why the child gave no usable answer, as an error string."""
    if message == _TOO_LONG:
        return "crashed: the child sent an over-long message"
    if isinstance(message, dict) or message == _GARBLED:
        return "crashed: the child sent a malformed message"
    if message == _TIMEOUT:
        return "no answer"
    try:
        code = proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        return "crashed: the child closed its output"
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        if -code == signal.SIGXCPU:
            return "killed: SIGXCPU (the CPU time limit was reached)"
        return f"killed: {name}"
    return f"crashed: the process exited with code {code}"


def _kill(proc: subprocess.Popen) -> None:
    for kill in (lambda: os.killpg(proc.pid, signal.SIGKILL), proc.kill):
        try:
            kill()
        except (ProcessLookupError, PermissionError):
            pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # a process in uninterruptible sleep: the kernel finishes it later
        pass
    for stream in (proc.stdin, proc.stdout):
        if stream and not stream.closed:
            stream.close()


_TIMEOUT, _EOF, _TOO_LONG, _GARBLED = "timeout", "eof", "too_long", "garbled"


class _Lines:
    """JSON lines from a pipe, each awaited with a deadline; never holds more than `max_line` bytes."""

    def __init__(self, fd: int, max_line: int):
        self.fd, self.max_line, self.buffer = fd, max_line, b""

    def next(self, timeout: float):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            if len(self.buffer) > self.max_line:
                return _TOO_LONG
            left = deadline - time.monotonic()
            if left <= 0:
                return _TIMEOUT
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                return _TIMEOUT
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                return _EOF
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        if len(line) > self.max_line:
            return _TOO_LONG
        try:
            return json.loads(line)
        except (ValueError, RecursionError):  # a forged line nested thousands deep must not crash the caller
            return _GARBLED
