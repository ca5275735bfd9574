"""An OpenAI-compatible server on 127.0.0.1 whose answers a test writes: for the OpenAI engine's retries and
request bodies (tests/test_openai_engine.py), and for recipes whose rows must reach their later stages with
chosen model outputs (the tiny random model writes noise). A real vLLM server is in tests/vllm_server.py.

    with ScriptedServer(reply=lambda body: "## Solution ...") as server:
        run_recipe("oss_instruct", ..., "--backend", "openai", "--base_url", server.url)

`reply` may return the message's fields instead of its text, e.g. {"content": ..., "reasoning_content": ...}.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def default_reply(body: dict) -> str:
    return f"out:{body.get('seed')}"


def last_user_message(body: dict) -> str:
    """What a chat request asked (the last user message); a raw completion's prompt."""
    if "prompt" in body:
        return body["prompt"]
    return next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")


class ScriptedServer:
    """Answers chat and raw completions with `reply(body)`; `script(body, attempt)` may return (status, headers)
    to fail a request. `/models` lists `models`, each owned by `owned_by` when given (vLLM says "vllm"); with
    `models=None` it answers 404, as servers without a model list do."""

    def __init__(self, script=None, models=("tiny-random",), api_key=None, delay=0.02, reply=None, owned_by=None):
        self.script = script or (lambda body, attempt: None)
        self.reply = reply or default_reply
        self.owned_by = owned_by
        self.models, self.api_key, self.delay = models, api_key, delay
        self.bodies: list[tuple[str, dict]] = []
        self.attempts: Counter = Counter()
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def _handler(self):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, body, headers=None):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if outer.api_key and self.headers.get("Authorization") != f"Bearer {outer.api_key}":
                    return self._send(401, {"error": {"message": "bad key"}})
                if outer.models is None:
                    return self._send(404, {"error": {"message": "no such route"}})
                owner = {"owned_by": outer.owned_by} if outer.owned_by else {}
                data = [{"id": m, "object": "model", **owner} for m in outer.models]
                self._send(200, {"object": "list", "data": data})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                key = json.dumps(body.get("prompt") or body.get("messages")) + str(body.get("seed"))
                with outer.lock:
                    outer.bodies.append((self.path, body))
                    outer.attempts[key] += 1
                    attempt = outer.attempts[key]
                    outer.in_flight += 1
                    outer.max_in_flight = max(outer.max_in_flight, outer.in_flight)
                try:
                    time.sleep(outer.delay)
                    failure = outer.script(body, attempt)
                    if failure:
                        status, headers = failure
                        return self._send(status, {"error": {"message": f"scripted {status}"}}, headers)
                    reply = outer.reply(body)  # the text, or the message's fields (content, reasoning_content, ...)
                    message = dict(reply) if isinstance(reply, dict) else {"content": reply}
                    finish_reason = message.pop("finish_reason", None)
                    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
                    if self.path.endswith("/chat/completions"):
                        choice = {
                            "index": 0,
                            "message": {"role": "assistant", **message},
                            "finish_reason": finish_reason or "stop",
                        }
                        obj = "chat.completion"
                    else:
                        text = message.pop("content")
                        choice = {"index": 0, "text": text, "finish_reason": finish_reason or "length", **message}
                        obj = "text_completion"
                    self._send(
                        200,
                        {
                            "id": "x",
                            "object": obj,
                            "created": 0,
                            "model": body["model"],
                            "choices": [choice],
                            "usage": usage,
                        },
                    )
                finally:
                    with outer.lock:
                        outer.in_flight -= 1

        return Handler
