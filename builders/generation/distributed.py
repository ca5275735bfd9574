"""Which process am I, and waiting for the others: data-parallel runs under `accelerate launch` (or torchrun).

    accelerate launch --num_processes 8 recipes/cosmopedia.py --config ...   # one engine per GPU

Every process runs the whole recipe script. Generation stages split their chunks between processes, each
process with its own engine on its own GPUs (`place_engine`); the other stages are deterministic and
cheap, so every process computes them; only the main process writes the final output and pushes to the Hub.

The launcher describes each process in environment variables (RANK, WORLD_SIZE, LOCAL_RANK,
LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), read once here. No torch.distributed process group is made:
- an in-process vLLM engine adopts an existing process group as its own world (`init_distributed_environment`
  skips its own when one is initialized), so each engine would span every process of the launch;
- a gloo or NCCL barrier gives up after the group's timeout (30 minutes by default, measured), while one
  process may finish its shard hours after another.
Processes wait for each other through the launcher's key-value store (a TCPStore at MASTER_ADDR:MASTER_PORT),
polling without a deadline. A process that dies is noticed by the launcher, which stops the others.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import logging
import os
import time
from dataclasses import dataclass
from datetime import timedelta

from builders.errors import UserError

logger = logging.getLogger("builders")

# Each store request must answer within this; a wait for the other processes has no deadline.
STORE_TIMEOUT = timedelta(minutes=5)
POLL_SECONDS = 2.0
LOG_EVERY_SECONDS = 600.0
# What torchrun tells its workers; hidden from the engine while it starts, so that vLLM and the processes it
# spawns see a one-process world of their own (a known source of hangs: vllm-project/vllm issues 1865, 7939).
LAUNCHER_VARIABLES = (
    "RANK",
    "WORLD_SIZE",
    "LOCAL_RANK",
    "LOCAL_WORLD_SIZE",
    "GROUP_RANK",
    "GROUP_WORLD_SIZE",
    "ROLE_RANK",
    "ROLE_WORLD_SIZE",
    "MASTER_ADDR",
    "MASTER_PORT",
    "TORCHELASTIC_USE_AGENT_STORE",
)


@dataclass(frozen=True)
class Topology:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    master_addr: str | None = None
    master_port: int | None = None
    agent_store: bool = False  # torchrun's agent hosts the store; otherwise process 0 does


@functools.lru_cache(maxsize=1)
def topology() -> Topology:
    """This process's place in the launch, read once (vLLM's CPU platform later rewrites LOCAL_WORLD_SIZE)."""
    env = os.environ
    world_size = int(env.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Topology()
    if "RANK" not in env:
        raise UserError(f"WORLD_SIZE is {world_size} but RANK is not set; start the run with accelerate launch")
    return Topology(
        rank=int(env["RANK"]),
        world_size=world_size,
        local_rank=int(env.get("LOCAL_RANK", env["RANK"])),
        local_world_size=int(env.get("LOCAL_WORLD_SIZE", world_size)),
        master_addr=env.get("MASTER_ADDR"),
        master_port=int(env["MASTER_PORT"]) if env.get("MASTER_PORT") else None,
        agent_store=env.get("TORCHELASTIC_USE_AGENT_STORE") == "True",
    )


def process_index() -> int:
    return topology().rank


def num_processes() -> int:
    return topology().world_size


def is_main_process() -> bool:
    return process_index() == 0


def my_chunks(num_chunks: int) -> range:
    """The contiguous run of chunk indices this process generates (all of them in a one-process run)."""
    index, count = process_index(), num_processes()
    return range(num_chunks * index // count, num_chunks * (index + 1) // count)


# -- waiting for the others ------------------------------------------------------------------------------------

_sync_points = itertools.count()


@functools.lru_cache(maxsize=1)
def _store():
    from torch.distributed import TCPStore

    t = topology()
    if t.master_addr is None or t.master_port is None:
        raise UserError("MASTER_ADDR and MASTER_PORT are not set; start the run with accelerate launch or torchrun")
    host = not t.agent_store and t.rank == 0
    return TCPStore(t.master_addr, t.master_port, is_master=host, timeout=STORE_TIMEOUT, wait_for_workers=False)


def wait_for_everyone(name: str) -> None:
    """Return once every process got here; `name` says where in the logs. Every process must call it in turn."""
    t = topology()
    if t.world_size == 1:
        return
    key = f"builders/{next(_sync_points)}/{name}"
    store = _store()
    store.add(key, 1)
    began = time.monotonic()
    delay, next_log = 0.01, began + LOG_EVERY_SECONDS
    while (arrived := store.add(key, 0)) < t.world_size:
        if time.monotonic() >= next_log:
            minutes = (time.monotonic() - began) / 60
            logger.info("%s: %d of %d processes done; waiting %.0f min so far", name, arrived, t.world_size, minutes)
            next_log += LOG_EVERY_SECONDS
        time.sleep(delay)
        delay = min(delay * 2, POLL_SECONDS)


def gather(name: str, value) -> list:
    """Every process's `value` (JSON-able), in process order; a wait for everyone."""
    t = topology()
    if t.world_size == 1:
        return [value]
    key = f"builders/{next(_sync_points)}/{name}"
    _store().set(f"{key}/{t.rank}", json.dumps(value))
    wait_for_everyone(name)
    return [json.loads(_store().get(f"{key}/{rank}")) for rank in range(t.world_size)]


# -- one engine per process --------------------------------------------------------------------------------------


_placed = False
_cores_placed = False  # place_engine narrowed this process's CPU affinity to its share of the node


def process_cores() -> int:
    """How many CPU cores this process may use: its affinity, and in a launch of several processes on a node its
    equal share of them (on the CPU `place_engine` has already narrowed the affinity to that share)."""
    cores = len(os.sched_getaffinity(0))
    t = topology()
    if t.local_world_size > 1 and not _cores_placed:
        cores //= t.local_world_size
    return max(1, cores)


def place_engine(devices_per_process: int) -> None:
    """Give this process's engine its own share of the node, before CUDA or the engine starts.

    GPUs: CUDA_VISIBLE_DEVICES becomes this process's `devices_per_process` GPUs (tensor x pipeline parallel)
    out of the node's visible ones. CPU: this process's share of the cores (VLLM_CPU_OMP_THREADS_BIND, the
    process's affinity and torch's threads). A VLLM_CPU_OMP_THREADS_BIND the user set is kept. The first call
    places the process; later ones change nothing.
    """
    global _placed, _cores_placed
    t = topology()
    if t.world_size == 1 or _placed:
        return
    _placed = True
    gpus = _visible_gpus()
    if gpus:
        mine = gpu_share(gpus, t.local_rank, t.local_world_size, devices_per_process)
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(mine)
        logger.info("process %d of %d: engine on GPUs %s", t.rank, t.world_size, ",".join(mine))
    elif "VLLM_CPU_OMP_THREADS_BIND" not in os.environ:
        import torch

        mine = core_share(sorted(os.sched_getaffinity(0)), t.local_rank, t.local_world_size)
        os.environ["VLLM_CPU_OMP_THREADS_BIND"] = cpu_bind_spec(mine, devices_per_process)
        # The in-process engine (VLLM_ENABLE_V1_MULTIPROCESSING=0) computes on this thread with torch's threads,
        # which the launcher set to one per process (OMP_NUM_THREADS=1): give it this process's cores instead.
        os.sched_setaffinity(0, mine)
        _cores_placed = True
        os.environ["OMP_NUM_THREADS"] = str(len(mine))
        torch.set_num_threads(len(mine))
        logger.info("process %d of %d: engine on CPU cores %s", t.rank, t.world_size, mine)


def gpu_share(gpus: list[str], local_rank: int, local_world_size: int, per_process: int) -> list[str]:
    """This process's contiguous block of `per_process` GPUs out of the node's.

    A list of exactly `per_process` GPUs was already narrowed to this process (e.g. Slurm's --gpus-per-task).
    """
    if len(gpus) == per_process:
        return gpus
    if len(gpus) < per_process * local_world_size:
        raise UserError(
            f"{local_world_size} processes on this node with {per_process} GPUs each need "
            f"{per_process * local_world_size} GPUs, but {len(gpus)} are visible; launch "
            f"{max(1, len(gpus) // per_process)} processes per node (--num_processes) or lower tensor_parallel_size"
        )
    return gpus[local_rank * per_process : (local_rank + 1) * per_process]


def core_share(cores: list[int], local_rank: int, local_world_size: int) -> list[int]:
    """This process's contiguous block of the node's CPU cores (an equal split)."""
    if local_world_size > len(cores):
        raise UserError(
            f"{local_world_size} processes on this node but only {len(cores)} CPU cores; "
            f"launch at most {len(cores)} processes per node"
        )
    return cores[local_rank * len(cores) // local_world_size : (local_rank + 1) * len(cores) // local_world_size]


def cpu_bind_spec(cores: list[int], workers: int) -> str:
    """VLLM_CPU_OMP_THREADS_BIND for an engine of `workers` (tensor x pipeline) workers: "0,1|2,3"."""
    groups = [cores[i * len(cores) // workers : (i + 1) * len(cores) // workers] for i in range(workers)]
    if not all(groups):
        raise UserError(f"an engine with {workers} workers needs as many CPU cores; this process has {len(cores)}")
    return "|".join(",".join(map(str, group)) for group in groups)


def _visible_gpus() -> list[str]:
    """The node's GPUs this process may use, without starting CUDA (NVML counts them)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [d for d in visible.split(",") if d.strip()]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


@contextlib.contextmanager
def outside_the_launch():
    """While an engine starts: hide the launcher's variables, so vLLM builds a world of its own."""
    saved = {name: os.environ.pop(name) for name in LAUNCHER_VARIABLES if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)
