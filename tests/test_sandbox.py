"""The sandbox against hostile functions: none may hang the run, harm the machine or crash the caller.

Each hostile function misbehaves on one input only (x == 1), so every test also checks that the good inputs
of the same batch still get their outputs.
"""

import os
import socket
import time

import pytest

from builders.methods.code.sandbox import error_kind, isolation_layers, run_function, run_many

INPUTS = [{"x": 0}, {"x": 1}, {"x": 2}]
ROOT_LAYERS = {"own uid", "read-only mounts, tmpfs working directory"}


def hostile(body: str, imports: str = "import os") -> str:
    """A function that doubles x, except for x == 1, where it runs `body`."""
    indented = "\n".join("        " + line for line in body.strip().splitlines())
    return f"{imports}\n\ndef f(x):\n    if x == 1:\n{indented}\n    return x * 2\n"


def run_hostile(body: str, imports: str = "import os", **kwargs) -> list[dict]:
    began = time.monotonic()
    results = run_function(hostile(body, imports), "f", INPUTS, **kwargs)
    assert time.monotonic() - began < 30
    assert [r["output"] for r in (results[0], results[2])] == ["0", "4"], results
    assert not results[1]["ok"] and results[1]["output"] is None
    return results


@pytest.fixture
def victim(tmp_path):
    """A file and a folder outside the sandbox that must survive."""
    folder = tmp_path / "victim"
    folder.mkdir()
    (folder / "keep.txt").write_text("keep me")
    return folder


def test_outputs_come_back_as_repr_strings_in_input_order():
    source = "import math\n\ndef area(r, scale=1):\n    return {'r': r, 'area': round(math.pi * r * r * scale, 3)}\n"
    results = run_function(source, "area", [{"r": 1}, (2, 10), {"r": "x"}, {"radius": 1}])
    assert results[0] == {"ok": True, "output": "{'r': 1, 'area': 3.142}", "error": None}
    assert results[1] == {"ok": True, "output": "{'r': 2, 'area': 125.664}", "error": None}
    assert results[2]["error"].startswith("exception: TypeError")
    assert results[3]["error"].startswith("exception: TypeError") and "radius" in results[3]["error"]


def test_inputs_that_are_not_literals_fail_without_starting_anything():
    results = run_function("def f(x):\n    return x\n", "f", [[1], {"x": object()}, {"x": float("inf")}, {1: 2}])
    assert [error_kind(r) for r in results] == ["bad_input"] * 4


def test_source_that_does_not_load_fails_every_input():
    assert {error_kind(r) for r in run_function("def f(x) return x", "f", INPUTS)} == {"load_failed"}
    assert {error_kind(r) for r in run_function("def g(x):\n    return x\n", "f", INPUTS)} == {"load_failed"}
    results = run_function("while True:\n    pass\n\ndef f(x):\n    return x\n", "f", INPUTS, timeout_s=1)
    assert {error_kind(r) for r in results} == {"timeout"}


def test_infinite_loop_times_out_and_the_next_input_runs_in_a_new_child():
    results = run_hostile("while True:\n    pass", timeout_s=1.0)
    assert results[1]["error"] == "timeout: no result within 1 s"


def test_skip_after_timeout_gives_up_on_the_rest():
    results = run_function(hostile("while True:\n    pass"), "f", INPUTS, timeout_s=1.0, skip_after_timeout=True)
    assert [error_kind(r) for r in results] == [None, "timeout", "skipped"]


def test_fork_bomb_is_stopped():
    results = run_hostile("while True:\n    os.fork()")
    assert results[1]["error"] == "blocked: os.fork is not allowed in the sandbox"
    results = run_hostile("import subprocess\nreturn subprocess.run(['sh', '-c', ':(){ :|:& };:'])")
    assert error_kind(results[1]) == "blocked" and "subprocess.Popen" in results[1]["error"]


def test_ten_gigabytes_cannot_be_allocated():
    results = run_hostile("return len(bytearray(10 * 2**30))")
    assert error_kind(results[1]) == "memory"


def test_files_outside_the_working_directory_are_not_touched(victim):
    keep = victim / "keep.txt"
    for body in (
        f"os.remove({str(keep)!r})",
        f"import shutil\nshutil.rmtree({str(victim)!r})",
        f"open({str(keep)!r}, 'w').write('gone')",
        f"open({str(victim / 'new.txt')!r}, 'x')",
        f"os.rename({str(keep)!r}, 'stolen.txt')",
        "open('/tmp/builders-sandbox-escape.txt', 'w').write('x')",
    ):
        results = run_hostile(body)
        assert error_kind(results[1]) == "blocked", (body, results[1])
    assert keep.read_text() == "keep me" and sorted(p.name for p in victim.iterdir()) == ["keep.txt"]
    assert not os.path.exists("/tmp/builders-sandbox-escape.txt")


def test_files_inside_the_working_directory_are_fine_and_removed_afterwards():
    source = (
        "import os, tempfile\n\ndef f(x):\n    with open('note.txt', 'w') as fh:\n        fh.write(x)\n"
        "    fd, path = tempfile.mkstemp()\n    os.close(fd)\n    return open('note.txt').read(), os.getcwd()\n"
    )
    [result] = run_function(source, "f", [{"x": "hello"}])
    assert result["ok"], result
    text, cwd = eval(result["output"])  # our own literal; tests only
    assert text == "hello" and "builders-sandbox-" in cwd and not os.path.exists(cwd)


def test_reading_files_outside_is_refused():
    results = run_hostile("return open('/etc/hostname').read()")
    assert error_kind(results[1]) == "blocked"


def test_sockets_cannot_be_opened():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        results = run_hostile(f"socket.socket().connect(('127.0.0.1', {port}))", imports="import socket")
        assert results[1]["error"].startswith("blocked: socket.")


def test_the_parent_cannot_be_killed():
    results = run_hostile("os.kill(os.getppid(), 9)")
    assert results[1]["error"] == "blocked: os.kill is not allowed in the sandbox"
    results = run_hostile("import signal\nos.killpg(os.getpgid(os.getppid()), signal.SIGKILL)")
    assert error_kind(results[1]) == "blocked"


def test_exit_calls_lose_only_their_own_input():
    results = run_hostile("os._exit(3)")
    assert results[1]["error"] == "crashed: the process exited with code 3"
    results = run_hostile("raise SystemExit(0)")
    assert results[1]["error"] == "exception: SystemExit: 0"
    results = run_hostile("os.abort()")
    assert results[1]["error"] == "killed: SIGABRT"


def test_printing_megabytes_goes_nowhere():
    source = "def f(x):\n    print('x' * 20_000_000)\n    print('y' * 20_000_000, file=__import__('sys').stderr)\n    return x\n"
    assert [r["output"] for r in run_function(source, "f", INPUTS)] == ["0", "1", "2"]


def test_a_repr_that_raises_or_is_huge_is_a_failure():
    results = run_hostile(
        "class Bad:\n    def __repr__(self):\n        raise ValueError('no repr')\nreturn Bad()", imports="import os"
    )
    assert results[1]["error"] == "repr_failed: ValueError: no repr"
    results = run_hostile("return 'a' * 1_000_000", max_output_chars=500)
    assert results[1]["error"] == "output_too_long: repr has 1000002 characters (limit 500)"


def test_a_swallowed_refusal_still_fails_the_call():
    results = run_hostile("try:\n    os.fork()\nexcept Exception:\n    pass\nreturn 'fine'")
    assert error_kind(results[1]) == "blocked"


def test_kernel_limits_hold_without_the_audit_hook(victim):
    """The layers below the audit hook stop the same attacks on their own (the uid and mount layers need root)."""
    layers = isolation_layers()
    assert "rlimits" in layers and "dies with parent" in layers
    results = run_hostile("while True:\n    os.fork()", audit_hooks=False)
    assert "BlockingIOError" in results[1]["error"]  # RLIMIT_NPROC = 0: no process, no thread
    results = run_hostile("import threading\nthreading.Thread(target=print).start()", audit_hooks=False)
    assert "can't start new thread" in results[1]["error"]
    assert error_kind(run_hostile("return len(bytearray(10 * 2**30))", audit_hooks=False)[1]) == "memory"
    if os.geteuid() == 0:
        assert ROOT_LAYERS | {"network namespace"} <= set(layers)
    if "network namespace" in layers:
        with socket.socket() as server:
            server.bind(("127.0.0.1", 0))
            server.listen()
            body = f"socket.socket().connect(('127.0.0.1', {server.getsockname()[1]}))"
            results = run_hostile(body, imports="import socket", audit_hooks=False)
            assert "OSError" in results[1]["error"] or "Refused" in results[1]["error"], results[1]
    if "own uid" in layers or "uid nobody" in layers:
        results = run_hostile("os.kill(os.getppid(), 9)", audit_hooks=False)
        assert "PermissionError" in results[1]["error"]
        results = run_hostile(f"os.remove({str(victim / 'keep.txt')!r})", audit_hooks=False)
        assert "PermissionError" in results[1]["error"]
        assert (victim / "keep.txt").read_text() == "keep me"


def test_string_sets_print_the_same_in_every_run():
    source = "def f(words):\n    return set(words)\n"
    first = run_function(source, "f", [{"words": ["pear", "apple", "fig", "kiwi", "plum"]}])
    again = run_function(source, "f", [{"words": ["pear", "apple", "fig", "kiwi", "plum"]}])
    assert first == again and first[0]["ok"]


def test_run_many_keeps_job_order():
    jobs = [(f"def f(x):\n    return x + {k}\n", "f", [{"x": 1}, {"x": 2}]) for k in range(6)]
    outputs = [[r["output"] for r in results] for results in run_many(jobs, workers=2)]
    assert outputs == [[str(1 + k), str(2 + k)] for k in range(6)]


def test_garbage_on_the_result_channel_costs_only_its_own_input():
    results = run_hostile(
        "for fd in range(3, 10):\n    try:\n        os.write(fd, b'{not json\\n')\n    except OSError:\n        pass"
    )
    assert results[1]["error"] == "crashed: the child sent a malformed message"
    results = run_hostile(  # json.loads in the caller would overflow its stack on this
        "for fd in range(3, 10):\n    try:\n        os.write(fd, b'[' * 20000 + b']' * 20000 + b'\\n')\n"
        "    except OSError:\n        pass"
    )
    assert results[1]["error"] == "crashed: the child sent a malformed message"
    results = run_hostile("for fd in range(3, 10):\n    try:\n        os.close(fd)\n    except OSError:\n        pass")
    assert error_kind(results[1]) == "crashed"


def test_a_fooled_audit_hook_still_cannot_write_outside(tmp_path):
    """Patching `posixpath` makes the hook see every path as inside; the read-only mounts still refuse the write.

    /tmp is writable by every uid, so without the mount namespace this would leave a file there.
    """
    assert ROOT_LAYERS <= set(isolation_layers()), "these layers need root, as in the CI"
    escape = f"/tmp/builders-sandbox-escape-{os.getpid()}.txt"
    fool = "import posixpath\nwd = os.getcwd()\nposixpath.abspath = lambda p: wd + '/inside'\n"
    for body in (f"open({escape!r}, 'w').write('x')", f"os.mkfifo({escape!r})"):
        results = run_hostile(fool + body)
        assert "Read-only file system" in results[1]["error"], results[1]
        results = run_hostile(body, audit_hooks=False)
        assert "Read-only file system" in results[1]["error"], results[1]
    assert not os.path.exists(escape)


def test_the_working_directory_is_capped_in_total():
    """Many files each under the file-size limit: the tmpfs (disk_mb) fills up, the disk does not."""
    assert ROOT_LAYERS <= set(isolation_layers()), "these layers need root, as in the CI"
    body = "i = 0\nwhile True:\n    open(f'f{i}', 'wb').write(b'x' * 2**20)\n    i += 1"
    results = run_hostile(body, disk_mb=8, timeout_s=10)
    assert "No space left on device" in results[1]["error"], results[1]


def test_each_child_runs_under_a_uid_of_its_own():
    """Concurrent children cannot signal or write to each other: none shares a uid with another, or is root."""
    assert ROOT_LAYERS <= set(isolation_layers()), "these layers need root, as in the CI"
    jobs = [("import os\n\ndef f(x):\n    return os.getuid(), os.getgid(), os.getgroups()\n", "f", [{"x": 0}])] * 4
    outputs = [results[0]["output"] for results in run_many(jobs, workers=4)]
    uids = [int(output.strip("()").split(",")[0]) for output in outputs]
    assert len(set(uids)) == 4 and 0 not in uids and all(output.endswith("[])") for output in outputs)


def test_standard_modules_that_act_on_import_are_not_run_before_isolation():
    """The child imports the stdlib modules a source names before it drops root; `__main__` ones are never run."""
    source = "from unittest import __main__\n\ndef f(x):\n    return x\n"  # would run unittest's discovery, then exit
    [result] = run_function(source, "f", [{"x": 1}])
    # imported only now, as the child's own uid under the audit hook: it fails to load instead of exiting the child
    assert error_kind(result) == "load_failed", result


def test_the_audit_hook_never_runs_the_untrusted_code():
    """A path object's `__fspath__` would run inside the hook, see its frames and could clear its tables."""
    body = """
class Sneaky:
    def __fspath__(self):
        frame = __import__("sys")._getframe(1)
        while frame is not None:
            for table in [v for v in frame.f_locals.values() if type(v) is dict]:
                table.clear()
            frame = frame.f_back
        return "inside"
try:
    shutil.rmtree(Sneaky())
except Exception:
    pass
return os.listdir("/etc")"""
    results = run_hostile(body, imports="import os, shutil")
    assert results[1]["error"] == "blocked: shutil.rmtree a f.<locals>.Sneaky object is not allowed in the sandbox"
