"""Prompts whose answer is already begun (a prefill), so that small models start in the asked format."""

from __future__ import annotations


def prefilled(prompt: str, start: str | None, chat: bool, system_prompt: str | None = None):
    """`prompt` with the model's answer begun by `start`: a conversation ending with an assistant message (the
    engine continues it) in chat mode, plain text after the prompt otherwise. Without `start`, the prompt."""
    if not start:
        return prompt
    if not chat:
        return f"{prompt}\n\n{start}"
    system = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return [*system, {"role": "user", "content": prompt}, {"role": "assistant", "content": start}]
