"""An OpenAI-compatible server as the engine: vLLM's api_server / `vllm serve`, TGI, or a hosted API.

A batch becomes one request per prompt (and per sample when n > 1), at most `max_concurrency` in flight.
Raw string prompts go to `/v1/completions`, message lists to `/v1/chat/completions` (a final assistant
message is continued: vLLM's `continue_final_message`). Every request carries its row's seed, so a
server that honours seeds (vLLM does) returns the same text for the same row on a rerun.

A server that hiccups does not stop the run: connection errors, timeouts, 408/429 and 5xx (but 501 and 505)
are retried `max_retries` times with exponential backoff and jitter (a 429's Retry-After is honoured); another
4xx says the request itself is wrong and is not retried. At start-up one request decides that the server speaks
the API and serves the model (`check_server`), so a plain web server is refused, not drained row by row. A
request that still fails becomes `Completion(text="", finish_reason="error", error=...)`: the
`request_failed` drop of `generation_checks`, kept in the rejected split when asked. A chunk holding
such a row is generated again on the next run of the same command (see `builders/generation/stage.py`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import threading
import time

from builders.errors import UserError
from builders.generation.engines import Completion, Prompt, Sampling

logger = logging.getLogger("builders")

RETRYABLE_STATUS = {408, 429}  # and every 5xx but 501 and 505, which say the server will never do it
BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 30.0
STARTUP_CHECK_TIMEOUT_S = 10.0


class OpenAIEngine:
    def __init__(
        self,
        client,
        model: str,
        *,
        base_url: str,
        max_concurrency: int = 64,
        max_retries: int = 6,
        backoff_base: float = BACKOFF_BASE_S,
        backoff_cap: float = BACKOFF_CAP_S,
    ):
        self.client = client
        self.model = model
        self.base_url = base_url
        self.max_concurrency = max_concurrency
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.retries = 0  # requests retried so far, for the run's summary
        # Structured output goes as vLLM's `structured_outputs`, which only a vLLM server reads: known at start-up
        self.structured_output = False
        self._last_warning = 0.0
        # One event loop in a background thread serves every call: the client's connections belong to it, and
        # `generate` works the same from a script, a `Dataset.map`, or a notebook that runs its own loop.
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, name="openai-engine", daemon=True).start()

    @classmethod
    def from_config(cls, config) -> OpenAIEngine:
        from openai import AsyncOpenAI

        api_key = os.environ.get(config.api_key_env) or "EMPTY"  # a local vLLM server needs none
        client = AsyncOpenAI(base_url=config.base_url, api_key=api_key, timeout=config.request_timeout, max_retries=0)
        engine = cls(
            client,
            config.model,
            base_url=config.base_url,
            max_concurrency=config.max_concurrency,
            max_retries=config.max_retries,
        )
        engine.check_server(api_key_env=config.api_key_env)
        return engine

    # -- start-up ------------------------------------------------------------------------------------------

    def check_server(self, api_key_env: str = "OPENAI_API_KEY") -> None:
        """Decide with one cheap request that the server speaks the API and serves the model, else a UserError.

        `GET /models` must list the model (an unreachable server, a refused key, a listing that is not the API's
        are refused). A server without `/models` (404) must answer one request of one token instead. A vLLM server
        lists its models as owned by "vllm"; then `structured_output` is True.
        """
        import openai

        try:
            served = self._run(self._list_models())
        except openai.AuthenticationError:
            raise UserError(
                f"the server at {self.base_url} refused the API key (401); put the right key in ${api_key_env} "
                "or set api_key_env to the variable that holds it"
            ) from None
        except openai.NotFoundError:
            return self._check_generation()
        except openai.APIStatusError as err:
            raise UserError(
                f"the server at {self.base_url} answered /models with {_describe(err)}; check that base_url is an "
                "OpenAI-compatible /v1 URL and that the server is healthy"
            ) from None
        except openai.APIConnectionError as err:
            raise UserError(
                f"cannot reach the server at {self.base_url} ({_describe(err)}); start it (e.g. `python -m "
                "vllm.entrypoints.openai.api_server --model MODEL --port 8000`) or fix base_url"
            ) from None
        except Exception as err:  # noqa: BLE001 - a reply that is not the API's model list (HTML, other JSON)
            raise _not_the_api(self.base_url, f"GET /models gave {_describe(err)}") from None
        if not served:  # an empty listing (some proxies): the request decides
            return self._check_generation()
        if self.model not in served:
            raise UserError(
                f"the server at {self.base_url} serves {', '.join(sorted(served))}, not '{self.model}'; set model "
                "to the served name (vLLM: --served-model-name)"
            )
        self.structured_output = served.get(self.model) == "vllm"

    def _check_generation(self) -> None:
        """A server without a model list: one chat request of one token must come back as the API's answer (or as
        the API's own JSON error, which speaks the API too)."""
        import openai

        try:
            response = self._run(self._one_token())
            if not response.choices:
                raise ValueError("a completion without choices")
        except openai.APIConnectionError as err:
            raise UserError(f"cannot reach the server at {self.base_url} ({_describe(err)}); fix base_url") from None
        except openai.APIStatusError as err:
            if not isinstance(err.body, dict):  # HTML, plain text: a web server, not an inference server
                raise _not_the_api(self.base_url, f"no model list; a request gave {_describe(err)}") from None
            if err.status_code in (400, 422):  # the API's own refusal of this tiny request: it speaks the API
                return
            fix = {404: f"set model to the served name, not '{self.model}'", 401: "check the API key (api_key_env)"}
            raise UserError(
                f"the server at {self.base_url} answered a one-token request with {_describe(err)}; "
                f"{fix.get(err.status_code, 'check that the server is healthy')}"
            ) from None
        except Exception as err:  # noqa: BLE001 - whatever it answered, it is not a completion
            raise _not_the_api(self.base_url, f"no model list; a request gave {_describe(err)}") from None

    async def _one_token(self):
        client = self.client.with_options(timeout=STARTUP_CHECK_TIMEOUT_S)
        return await client.chat.completions.create(
            model=self.model, messages=[{"role": "user", "content": "Hi"}], max_tokens=1
        )

    async def _list_models(self) -> dict[str, str | None]:
        """Served model name -> its owner."""
        page = await self.client.with_options(timeout=STARTUP_CHECK_TIMEOUT_S).models.list()
        return {m.id: getattr(m, "owned_by", None) for m in page.data}

    # -- the Engine interface ------------------------------------------------------------------------------

    def generate(self, prompts: list[Prompt], sampling: Sampling, seeds: list[int]) -> list[list[Completion]]:
        if not prompts:
            return []
        return self._run(self._generate(prompts, sampling, seeds))

    def _run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    async def _generate(self, prompts, sampling: Sampling, seeds) -> list[list[Completion]]:
        slots = asyncio.Semaphore(self.max_concurrency)
        tasks = [
            [
                asyncio.ensure_future(self._request(prompt, sampling, sample_seed(seed, k), slots))
                for k in range(sampling.n)
            ]
            for prompt, seed in zip(prompts, seeds)
        ]
        return [[await t for t in row] for row in tasks]

    async def _request(self, prompt: Prompt, sampling: Sampling, seed: int, slots: asyncio.Semaphore) -> Completion:
        """One request with its retries; never raises: a request that keeps failing is a Completion with an error."""
        jitter = random.Random(seed)  # jitter spreads the retries of concurrent requests; seeded, so replayable
        for attempt in range(self.max_retries + 1):
            try:
                async with slots:
                    return await self._call(prompt, sampling, seed)
            except Exception as err:  # noqa: BLE001 - every failure ends as a row's error, never a crash
                if not _retryable(err) or attempt == self.max_retries:
                    return Completion(text="", finish_reason="error", error=_describe(err))
                delay = self._delay(attempt, err, jitter)
                self.retries += 1
                self._warn(err, delay, attempt)
                await asyncio.sleep(delay)  # outside the semaphore: the slot serves another request meanwhile
        raise AssertionError("unreachable")

    def _delay(self, attempt: int, err: Exception, jitter: random.Random) -> float:
        """Exponential backoff with 'equal jitter': half the step for sure, the other half at random."""
        step = min(self.backoff_cap, self.backoff_base * 2**attempt)
        delay = step / 2 + jitter.uniform(0, step / 2)
        retry_after = _retry_after(err)
        return min(self.backoff_cap, max(delay, retry_after)) if retry_after else delay

    def _warn(self, err: Exception, delay: float, attempt: int) -> None:
        now = time.monotonic()
        if now - self._last_warning > 10:  # once per 10 s, not once per request
            self._last_warning = now
            logger.warning(
                "server %s: %s; retrying in %.1fs (attempt %d of %d)",
                self.base_url,
                _describe(err),
                delay,
                attempt + 1,
                self.max_retries,
            )

    async def _call(self, prompt: Prompt, sampling: Sampling, seed: int) -> Completion:
        common = dict(
            model=self.model,
            max_tokens=sampling.max_new_tokens,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            seed=seed,
            stop=list(sampling.stop) or None,
        )
        extra, response_format = request_extras(sampling)
        if isinstance(prompt, str):
            response = await self.client.completions.create(prompt=prompt, extra_body=extra or None, **common)
            choice = response.choices[0]
            text = with_trace(_reasoning(choice), choice.text)
        else:
            if prompt[-1]["role"] == "assistant":  # a prefilled reply is continued, not answered
                extra.update(add_generation_prompt=False, continue_final_message=True)
            if sampling.chat_template_kwargs:
                extra["chat_template_kwargs"] = sampling.chat_template_kwargs
            if response_format:
                common["response_format"] = response_format
            response = await self.client.chat.completions.create(messages=prompt, extra_body=extra or None, **common)
            choice = response.choices[0]
            text = with_trace(_reasoning(choice.message), choice.message.content)
        usage = response.usage
        return Completion(
            text=text,
            finish_reason=choice.finish_reason or "stop",
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
        )


def with_trace(reasoning: str | None, content: str | None) -> str:
    """The output as one text: a server's separate reasoning trace (vLLM's reasoning parsers, DeepSeek, DashScope)
    put back in a `<think>` block before the answer, as a local engine writes it and the reasoning recipe reads it.

    No content after a trace means the trace was cut by the token limit: the block is left open, so the recipe
    sees an unclosed trace (budget forcing), not an empty answer.
    """
    if not reasoning:
        return content or ""
    if content is None:
        return f"<think>\n{reasoning}"
    return f"<think>\n{reasoning}\n</think>\n\n{content}"


def _reasoning(part) -> str | None:
    """The trace a server returned beside the answer: `reasoning_content` (DeepSeek, DashScope, vLLM) or
    `reasoning` (vLLM's newer name); extra fields the OpenAI client keeps on the message or choice."""
    for name in ("reasoning_content", "reasoning"):
        value = getattr(part, name, None)
        if isinstance(value, str) and value:
            return value
    return None


def sample_seed(seed: int, k: int) -> int:
    """The seed of sample k of a row (n > 1 becomes n requests); sample 0 keeps the row's seed."""
    return seed if k == 0 else (seed + k * 0x9E3779B1) & 0x7FFFFFFF


def request_extras(sampling: Sampling) -> tuple[dict, dict | None]:
    """Parameters outside the OpenAI schema (sent as extra body, vLLM reads them) and a response_format.

    Only values that differ from the OpenAI defaults are sent, so a strict server sees no unknown keys for
    plain sampling. JSON schemas go through the standard `response_format`; choice, regex and grammar
    through vLLM's `structured_outputs`.
    """
    extra: dict = {}
    if sampling.top_k not in (-1, 0, None):
        extra["top_k"] = sampling.top_k
    if sampling.repetition_penalty != 1.0:
        extra["repetition_penalty"] = sampling.repetition_penalty
    if not sampling.skip_special_tokens:
        extra["skip_special_tokens"] = False
    response_format = None
    structured = dict(sampling.structured or {})
    if "json" in structured:
        schema = structured.pop("json")
        response_format = {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}
    if structured:
        extra["structured_outputs"] = structured
    return extra, response_format


def _retryable(err: Exception) -> bool:
    import openai

    if isinstance(err, openai.APIConnectionError):  # refused, reset, DNS, and timeouts (APITimeoutError)
        return True
    if isinstance(err, openai.APIStatusError):
        return err.status_code in RETRYABLE_STATUS or (err.status_code >= 500 and err.status_code not in (501, 505))
    return False


def _retry_after(err: Exception) -> float | None:
    response = getattr(err, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _describe(err: Exception) -> str:
    status = getattr(err, "status_code", None)
    first = (str(err).strip().splitlines() or [""])[0][:200]
    return f"{type(err).__name__}{f' {status}' if status else ''}: {first}" if first else type(err).__name__


def _not_the_api(base_url: str, what: str) -> UserError:
    return UserError(
        f"the server at {base_url} does not speak the OpenAI API ({what}); set base_url to an OpenAI-compatible "
        "server's /v1 URL (e.g. http://127.0.0.1:8000/v1 for `vllm serve`)"
    )
