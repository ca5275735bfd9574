"""The OpenAI engine against a scripted OpenAI-compatible server on 127.0.0.1: what it sends, how it retries,
what a request that keeps failing becomes, and what it refuses at start-up. A real vLLM server is used in
tests/test_openai_server.py; this one (tests/scripted_server.py) can answer 429, 503 or 400 on demand."""

import contextlib
import functools
import json
import threading
from collections import Counter
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
from datasets import load_dataset
from scripted_server import ScriptedServer

from builders.errors import UserError
from builders.generation.engines import Sampling
from builders.generation.engines.openai_engine import OpenAIEngine, sample_seed


def engine_for(server, **kw):
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=server.url, api_key=kw.pop("api_key", "EMPTY"), timeout=5, max_retries=0)
    kw = {"max_concurrency": 4, "max_retries": 3, "backoff_base": 0.01, "backoff_cap": 0.05, **kw}
    return OpenAIEngine(client, "tiny-random", base_url=server.url, **kw)


def config(url, **kw):
    fields = dict(base_url=url, api_key_env="BUILDERS_TEST_KEY", max_concurrency=4, request_timeout=5.0, max_retries=2)
    return SimpleNamespace(model="tiny-random", **{**fields, **kw})


def test_chat_and_raw_prompts_go_to_their_endpoints_with_their_seeds():
    with ScriptedServer() as server:
        engine = engine_for(server)
        sampling = Sampling(max_new_tokens=7, temperature=0.5, top_k=20, repetition_penalty=1.2)
        chat = engine.generate(
            [[{"role": "user", "content": "a"}], [{"role": "user", "content": "b"}]], sampling, [11, 12]
        )
        raw = engine.generate(["c"], sampling, [13])
    assert [[c.text for c in cs] for cs in chat] == [["out:11"], ["out:12"]]
    assert raw[0][0].text == "out:13" and raw[0][0].finish_reason == "length"
    assert (chat[0][0].prompt_tokens, chat[0][0].completion_tokens) == (3, 2)
    paths = Counter(path for path, _ in server.bodies)
    assert paths == {"/v1/chat/completions": 2, "/v1/completions": 1}
    body = server.bodies[-1][1]
    assert body["max_tokens"] == 7 and body["temperature"] == 0.5 and body["top_k"] == 20
    assert body["repetition_penalty"] == 1.2 and body["seed"] == 13


def test_prefill_structured_output_and_n_samples():
    with ScriptedServer() as server:
        engine = engine_for(server)
        prefill = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "The answer is"}]
        engine.generate([prefill], Sampling(structured={"choice": ["yes", "no"]}), [5])
        engine.generate([[{"role": "user", "content": "q"}]], Sampling(structured={"json": {"type": "object"}}), [6])
        three = engine.generate(["p"], Sampling(n=3), [7])
    first, second = server.bodies[0][1], server.bodies[1][1]
    assert first["continue_final_message"] is True and first["add_generation_prompt"] is False
    assert first["structured_outputs"] == {"choice": ["yes", "no"]} and "top_k" not in first
    assert second["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": {"type": "object"}},
    }
    assert "continue_final_message" not in second
    assert [c.text for c in three[0]] == [f"out:{sample_seed(7, k)}" for k in range(3)]
    assert len({sample_seed(7, k) for k in range(3)}) == 3 and sample_seed(7, 0) == 7


def test_429_and_5xx_are_retried_and_concurrency_is_bounded():
    def flaky(body, attempt):
        if attempt == 1:
            return (429, {"Retry-After": "0"}) if body["seed"] % 2 else (503, {})
        if attempt == 2 and body["seed"] % 3 == 0:
            return (502, {})
        return None

    with ScriptedServer(flaky) as server:
        engine = engine_for(server, max_concurrency=3)
        out = engine.generate([f"p{i}" for i in range(12)], Sampling(), list(range(12)))
    assert [cs[0].text for cs in out] == [f"out:{i}" for i in range(12)]  # all rows, in order
    assert all(cs[0].finish_reason == "length" for cs in out)
    assert engine.retries == 12 + 4  # every row once, seeds 0, 3, 6, 9 twice
    assert 1 < server.max_in_flight <= 3


def test_a_request_that_keeps_failing_becomes_an_error_row_and_4xx_is_not_retried():
    def script(body, attempt):
        return {"bad": (400, {}), "down": (500, {})}.get(body["prompt"])

    with ScriptedServer(script) as server:
        engine = engine_for(server, max_retries=2)
        out = engine.generate(["down", "ok", "bad"], Sampling(), [1, 2, 3])
    down, ok, bad = (cs[0] for cs in out)
    assert ok.text == "out:2" and ok.error is None
    assert (down.text, down.finish_reason) == ("", "error") and "InternalServerError 500" in down.error
    assert (bad.text, bad.finish_reason) == ("", "error") and "BadRequestError 400" in bad.error
    assert server.attempts['"down"1'] == 3 and server.attempts['"bad"3'] == 1


def test_backoff_doubles_up_to_the_cap_with_seeded_jitter_and_honours_retry_after():
    import random

    import openai
    from httpx import Request, Response

    with ScriptedServer() as server:
        engine = engine_for(server, backoff_base=1.0, backoff_cap=30.0)
    connection = openai.APIConnectionError(request=Request("POST", server.url))
    for attempt, step in enumerate([1, 2, 4, 8, 16, 30, 30]):
        delays = [engine._delay(attempt, connection, random.Random(seed)) for seed in range(200)]
        assert all(step / 2 <= d <= step for d in delays)  # half the step for sure, half at random
        assert max(delays) - min(delays) > step / 4  # jitter spreads concurrent retries
    assert engine._delay(3, connection, random.Random(5)) == engine._delay(3, connection, random.Random(5))

    def rate_limited(retry_after: str):
        response = Response(429, headers={"Retry-After": retry_after}, request=Request("POST", server.url))
        return openai.RateLimitError("slow down", response=response, body=None)

    assert engine._delay(0, rate_limited("12"), random.Random(1)) == 12.0  # the server's wait, not 0.5-1 s
    assert engine._delay(0, rate_limited("999"), random.Random(1)) == 30.0  # capped


def test_start_up_refuses_an_unreachable_server_a_refused_key_and_an_unserved_model(monkeypatch):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    with pytest.raises(UserError, match=r"cannot reach the server at http://127\.0\.0\.1:\d+/v1 \(APIConnectionError"):
        OpenAIEngine.from_config(config(closed))
    with ScriptedServer(models=("other-model",)) as server:
        with pytest.raises(UserError, match="serves other-model, not 'tiny-random'; set model"):
            OpenAIEngine.from_config(config(server.url))
    with ScriptedServer(api_key="right") as server:
        monkeypatch.setenv("BUILDERS_TEST_KEY", "wrong")
        with pytest.raises(UserError, match=r"refused the API key \(401\); put the right key in \$BUILDERS_TEST_KEY"):
            OpenAIEngine.from_config(config(server.url))
        monkeypatch.setenv("BUILDERS_TEST_KEY", "right")
        engine = OpenAIEngine.from_config(config(server.url))
        assert engine.generate(["p"], Sampling(), [4])[0][0].text == "out:4"


def test_the_recipe_refuses_an_unreachable_server_and_a_missing_base_url(tmp_path, capsys):
    import socket

    from conftest import REPO, run_recipe

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    smoke = ["--config", REPO / "configs" / "cosmopedia" / "smoke.yaml", "--output_dir", tmp_path / "o"]
    for extra, expected in [
        (["--base_url", closed], f"error: cannot reach the server at {closed} (APIConnectionError"),
        ([], "error: backend 'openai' needs base_url (e.g. --base_url http://127.0.0.1:8000/v1)"),
    ]:
        with pytest.raises(SystemExit) as exit_:
            run_recipe("cosmopedia", *smoke, "--backend", "openai", *extra)
        assert exit_.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith(expected) and not any("Traceback" in line for line in err)
    with ScriptedServer(models=("other-model",)) as server:
        with pytest.raises(SystemExit) as exit_:
            run_recipe("cosmopedia", *smoke, "--backend", "openai", "--base_url", server.url)
        assert exit_.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1] == (
            f"error: the server at {server.url} serves other-model, not 'tiny-random'; set model to the served name "
            "(vLLM: --served-model-name)"
        )
        assert not server.bodies  # nothing was generated
    assert not (tmp_path / "o").exists()


def test_rows_whose_requests_keep_failing_are_request_failed_drops_kept_as_rejected(tmp_path):
    """The recipe through the engine: two rows fail every retry, the run goes on, and the drops are kept."""
    from conftest import REPO, run_recipe

    failing = set()

    def script(body, attempt):
        seed = body["seed"]
        if len(failing) < 2 and seed not in failing and attempt == 1:
            failing.add(seed)
        return (503, {}) if seed in failing else None

    out = tmp_path / "o"
    with ScriptedServer(script) as server:
        run_recipe(
            "cosmopedia",
            *("--config", REPO / "configs" / "cosmopedia" / "smoke.yaml", "--output_dir", out),
            *("--backend", "openai", "--base_url", server.url, "--max_retries", 2, "--keep_rejected", "true"),
            *("--min_text_tokens", 1, "--quality_language", "null", "--quality_max_non_letters", "null"),
        )
    assert len(failing) == 2 and all(server.attempts[k] in (1, 3) for k in server.attempts)
    stats = json.loads((out / "stats.json").read_text())
    generate, filter_ = stats["stages"][2], stats["stages"][3]
    assert (generate["name"], generate["rows_out"], filter_["name"]) == ("generate", 8, "filter")
    assert filter_["dropped"].get("request_failed") == 2
    assert stats["generation"]["requests_retried"] == 2 * 2
    rejected = load_dataset("parquet", data_files=str(out / "rejected" / "*.parquet"), split="train")
    failed = [json.loads(r["row"]) for r in rejected if r["reason"] == "request_failed"]
    assert len(failed) == 2 and all(r["finish_reason"] == "error" and r["text"] == "" for r in failed)
    kept = load_dataset(str(out), split="train")
    assert len(kept) == 6 and all(t.startswith("out:") for t in kept["text"])  # every other row, no failed one


def test_structured_output_is_known_from_the_owner_the_server_lists():
    with ScriptedServer(owned_by="vllm") as server:
        assert OpenAIEngine.from_config(config(server.url)).structured_output
    for owner in (None, "openai"):  # no owner listed, or another server's
        with ScriptedServer(owned_by=owner) as server:
            assert not OpenAIEngine.from_config(config(server.url)).structured_output


@pytest.mark.parametrize("owner", ["vllm", None])
def test_curate_seeds_labels_are_parsed_as_free_text_when_the_server_is_not_vllm(owner, tmp_path, caplog):
    """`structured_labels` is on by default: a server that is not vLLM gets plain requests, and a one-line note."""
    from builders.methods.curate_seeds.prompts import LABEL_PATTERN
    from conftest import REPO, run_recipe

    out = tmp_path / "o"
    with ScriptedServer(
        reply=lambda body: "Topic: Everyday science\nEducational score: 4/5", owned_by=owner
    ) as server:
        run_recipe(
            "curate_seeds",
            *("--config", REPO / "configs" / "curate_seeds" / "smoke.yaml", "--output_dir", out),
            *("--backend", "openai", "--base_url", server.url),
        )
    assert len(server.bodies) == 4  # one label per cluster
    sent = [body.get("structured_outputs") for _, body in server.bodies]
    notes = [r.getMessage() for r in caplog.records if r.getMessage().startswith("structured_labels:")]
    if owner == "vllm":
        assert sent == [{"regex": LABEL_PATTERN}] * 4 and notes == []
    else:
        assert sent == [None] * 4
        assert notes == [
            f"structured_labels: the server at {server.url} offers no structured output (vLLM's is the one used); "
            "the answers are parsed as free text (set structured_labels: false to skip this note)"
        ]
    kept = load_dataset(str(out), split="train")
    assert len(kept) == 40 and set(zip(kept["topic"], kept["educational_score"])) == {("Everyday science", 4)}


def test_501_and_a_4xx_other_than_408_and_429_are_not_retried():
    def script(body, attempt):
        status = int(body["prompt"])
        return (status, {}) if attempt == 1 or status in (501, 409, 404) else None

    with ScriptedServer(script) as server:
        out = engine_for(server).generate(["501", "409", "404", "408", "429", "503"], Sampling(), list(range(6)))
    reasons = [cs[0].finish_reason for cs in out]
    assert reasons == ["error", "error", "error", "length", "length", "length"]
    tries = {json.loads(key.rstrip("0123456789")): n for key, n in server.attempts.items()}
    assert tries == {"501": 1, "409": 1, "404": 1, "408": 2, "429": 2, "503": 2}


def test_a_server_without_a_model_list_must_answer_one_request_of_one_token():
    with ScriptedServer(models=None) as server:
        engine = OpenAIEngine.from_config(config(server.url))
        assert [body["max_tokens"] for _, body in server.bodies] == [1] and not engine.structured_output
    with ScriptedServer(lambda body, attempt: (404, {}), models=None) as server:
        with pytest.raises(UserError, match=r"answered a one-token request with NotFoundError 404.*set model to the"):
            OpenAIEngine.from_config(config(server.url))


class QuietFiles(SimpleHTTPRequestHandler):
    """`python -m http.server`: GET serves the folder's files, POST is 501 (it has no POST)."""

    def log_message(self, *args):
        pass


class HtmlEverywhere(QuietFiles):
    """A web app that answers every path, GET or POST, with the same HTML page."""

    def do_GET(self):
        page = b"<html><body>Welcome</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    do_POST = do_GET


@contextlib.contextmanager
def web_server(folder, handler):
    """A web server that is not an inference server, on 127.0.0.1; yields the base_url a user would give."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("handler", [QuietFiles, HtmlEverywhere], ids=["http.server", "html-everywhere"])
def test_a_web_server_that_is_not_an_inference_server_is_refused_before_any_output(handler, tmp_path, capsys):
    from conftest import REPO, recipe_error

    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text("<html>hello</html>")
    out = tmp_path / "o"
    smoke = ["--config", REPO / "configs" / "cosmopedia" / "smoke.yaml", "--output_dir", out]
    with web_server(tmp_path / "site", handler) as url:
        message = recipe_error(capsys, "cosmopedia", *smoke, "--backend", "openai", "--base_url", url)
    assert message.startswith(f"error: the server at {url} does not speak the OpenAI API (")
    expected = "GET /models gave " if handler is HtmlEverywhere else "a request gave InternalServerError 501"
    assert expected in message and "set base_url to an OpenAI-compatible server's /v1 URL" in message
    assert not out.exists()


def test_a_run_whose_every_request_fails_is_an_error_not_an_empty_dataset(tmp_path, capsys):
    from conftest import REPO, recipe_error

    out = tmp_path / "o"
    smoke = ["--config", REPO / "configs" / "cosmopedia" / "smoke.yaml", "--output_dir", out]
    with ScriptedServer(lambda body, attempt: (400, {})) as server:
        message = recipe_error(capsys, "cosmopedia", *smoke, "--backend", "openai", "--base_url", server.url)
    assert message.startswith(
        "error: stage 'generate': every request of its first batch failed (8 of 8; the first: BadRequestError 400"
    )
    assert len(server.bodies) == 8  # one try each: a 400 is not retried
    assert not out.exists()  # no empty dataset passes as a result, and the folder it made is gone again


def thinking_server_reply(body):
    """A server with a reasoning parser (vLLM's, DeepSeek's, DashScope's): the trace comes beside the answer."""
    if body.get("seed", 0) % 3 == 0:  # a trace cut by the token limit: no answer at all
        return {"content": None, "reasoning_content": f"trace {body['seed']} ran", "finish_reason": "length"}
    return {"content": f"The answer is {body['seed']}.", "reasoning_content": f"Let me think about {body['seed']}."}


def test_a_trace_in_reasoning_content_becomes_the_think_block():
    with ScriptedServer(reply=thinking_server_reply) as server:
        engine = engine_for(server)
        chat = engine.generate([[{"role": "user", "content": "q"}]] * 2, Sampling(), [7, 9])
        raw = engine.generate(["q"], Sampling(), [8])
    assert chat[0][0].text == "<think>\nLet me think about 7.\n</think>\n\nThe answer is 7."
    assert chat[1][0].text == "<think>\ntrace 9 ran" and chat[1][0].finish_reason == "length"  # left open
    assert raw[0][0].text == "<think>\nLet me think about 8.\n</think>\n\nThe answer is 8."


def test_the_reasoning_recipe_reads_traces_from_reasoning_content(tmp_path):
    from conftest import REPO, run_recipe

    out = tmp_path / "o"
    with ScriptedServer(reply=thinking_server_reply) as server:
        run_recipe(
            "reasoning",
            *("--config", REPO / "configs" / "reasoning" / "smoke.yaml", "--output_dir", out),
            *("--backend", "openai", "--base_url", server.url, "--prefill_think", "false"),
            *("--budget_forcing", "false", "--drop_truncated", "true"),
        )
    rows = load_dataset(str(out), split="train").to_list()
    assert rows
    for row in rows:
        seed = int(row["answer"].removeprefix("The answer is ").rstrip("."))
        assert row["reasoning"] == f"Let me think about {seed}."
        assert (
            row["messages"][1]["content"] == f"<think>\nLet me think about {seed}.\n</think>\n\nThe answer is {seed}."
        )
    stats = json.loads((out / "stats.json").read_text())
    assert stats["stages"][-1]["dropped"] == {"truncated": 8 - len(rows)} and len(rows) < 8
