"""Sandbox throughput: executions per second on this machine's cores, ours against a process per execution.

Ours: `builders.methods.code.sandbox.run_many`, one fresh isolated interpreter per function that runs all of that function's
inputs one at a time (network namespace, read-only mounts, own uid, rlimits, audit hook), `--workers` at a time.
Peer: the usual harness for generated code (HumanEval's `check_correctness` pattern): one forked
`multiprocessing.Process` per execution with rlimits set in the child, a result sent back through a pipe, and
a wall-clock timeout; the same `--workers` at a time. Both run the same functions on the same inputs:
pure functions harvested from the standard library, each on `--inputs` integer inputs (some raise; that is
an execution too).

    python benchmarks/sandbox.py                      # 40 functions x 10 inputs, 2 workers
    python benchmarks/sandbox.py --functions 200 --inputs 10 --workers 2
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import time
from concurrent.futures import ThreadPoolExecutor

from builders.methods.code.harvest import harvest_functions
from builders.methods.code.sandbox import isolation_layers, run_many
from builders.methods.code.sources import stdlib_folder

FILES = ("operator.py", "colorsys.py", "bisect.py", "string.py", "statistics.py", "fractions.py", "calendar.py")


def workload(num_functions: int, num_inputs: int) -> list[tuple[str, str, list[dict]]]:
    functions = []
    for name in FILES:
        functions += harvest_functions((stdlib_folder() / name).read_text(), name).functions
    functions = (functions * (1 + num_functions // max(1, len(functions))))[:num_functions]
    return [
        (
            f["code"],
            f["name"],
            [{p: k + i for i, p in enumerate(f["required"] or f["params"])} for k in range(num_inputs)],
        )
        for f in functions
    ]


def peer_child(source: str, name: str, kwargs: dict, conn) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
    resource.setrlimit(resource.RLIMIT_CPU, (3, 3))
    try:
        namespace: dict = {}
        exec(source, namespace)
        conn.send(("ok", repr(namespace[name](**kwargs))))
    except BaseException as err:  # noqa: BLE001
        conn.send(("error", f"{type(err).__name__}: {err}"))


def peer_execute(source: str, name: str, kwargs: dict, timeout_s: float) -> tuple[str, str]:
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=peer_child, args=(source, name, kwargs, send))
    process.start()
    send.close()
    result = ("error", "timeout")
    if receive.poll(timeout_s):
        try:
            result = receive.recv()
        except EOFError:
            result = ("error", "crashed")
    process.kill()
    process.join()
    receive.close()
    return result


def run_peer(jobs, workers: int, timeout_s: float) -> list[list[tuple[str, str]]]:
    calls = [(source, name, kwargs) for source, name, inputs in jobs for kwargs in inputs]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        flat = list(pool.map(lambda call: peer_execute(*call, timeout_s), calls))
    out, i = [], 0
    for _, _, inputs in jobs:
        out.append(flat[i : i + len(inputs)])
        i += len(inputs)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--functions", type=int, default=40)
    parser.add_argument("--inputs", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=2.0)
    args = parser.parse_args()

    jobs = workload(args.functions, args.inputs)
    executions = sum(len(inputs) for _, _, inputs in jobs)
    layers = isolation_layers()  # also warms the page cache for the interpreter

    began = time.perf_counter()
    ours = run_many(jobs, workers=args.workers, timeout_s=args.timeout)
    ours_s = time.perf_counter() - began

    began = time.perf_counter()
    peer = run_peer(jobs, args.workers, args.timeout)
    peer_s = time.perf_counter() - began

    agree = sum(
        (o["ok"] and p[0] == "ok" and o["output"] == p[1]) or (not o["ok"] and p[0] == "error")
        for our_results, peer_results in zip(ours, peer)
        for o, p in zip(our_results, peer_results)
    )
    ok = sum(r["ok"] for results in ours for r in results)
    print(
        f"{len(jobs)} functions x {args.inputs} inputs = {executions} executions ({ok} returned a value), "
        f"{args.workers} workers, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"our isolation: {', '.join(layers)}")
    print()
    print("| method | seconds | executions/s |")
    print("|---|---:|---:|")
    print(
        f"| builders.methods.code.sandbox (a fresh isolated interpreter per function) | {ours_s:.2f} | {executions / ours_s:.1f} |"
    )
    print(f"| peer: a forked process per execution (HumanEval style) | {peer_s:.2f} | {executions / peer_s:.1f} |")
    print()
    print(f"ratio (ours / peer, executions/s): {peer_s / ours_s:.2f}x")
    print(f"results that agree (same output, or both failed): {agree}/{executions}")


if __name__ == "__main__":
    main()
