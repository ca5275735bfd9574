"""Magpie: the pre-query prefix derived from different chat templates, and the query filters.

The query examples marked "SmolLM2" were written by SmolLM2-135M-Instruct from its own prefix.
"""

import pytest
from transformers import AutoTokenizer

from builders.errors import UserError
from builders.filters.checks import apply_checks
from builders.generation.models import resolve_model
from builders.methods.magpie import clean_query, is_request, prequery, query_checks, strip_bos

# Llama-3 style, written for this test: header tokens around the role, <|eot_id|> after each message.
LLAMA3_STYLE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)
# Gemma style: no system role at all.
NO_SYSTEM_ROLE = (
    "{% for message in messages %}{% if message['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
    "{{ '<start_of_turn>' + message['role'] + '\\n' + message['content'] + '<end_of_turn>\\n' }}{% endfor %}"
)


@pytest.fixture(scope="module")
def tiny_tokenizer():
    return AutoTokenizer.from_pretrained(resolve_model("tiny-random"))


@pytest.fixture(scope="module")
def smollm2_tokenizer():
    return AutoTokenizer.from_pretrained(resolve_model("smollm2-135m-instruct"))


def test_chatml_prefix_of_the_tiny_model(tiny_tokenizer):
    q = prequery(tiny_tokenizer)
    assert q.prefix == "<|im_start|>user\n"
    assert q.end_of_turn == "<|im_end|>" and q.stop == ("<|im_end|>",)
    assert q.default_system_prompt is None


def test_smollm2_prefix_keeps_its_default_system_prompt(smollm2_tokenizer):
    q = prequery(smollm2_tokenizer)
    default = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
    assert q.default_system_prompt == default
    assert q.prefix == f"<|im_start|>system\n{default}<|im_end|>\n<|im_start|>user\n"
    assert q.end_of_turn == "<|im_end|>"


def test_a_system_prompt_replaces_the_default(smollm2_tokenizer):
    q = prequery(smollm2_tokenizer, system_prompt="You are a patient maths tutor.")
    assert q.prefix == "<|im_start|>system\nYou are a patient maths tutor.<|im_end|>\n<|im_start|>user\n"
    assert q.default_system_prompt is None


def test_llama3_style_prefix(tiny_tokenizer):
    q = prequery(tiny_tokenizer, chat_template=LLAMA3_STYLE)
    # the tiny tokenizer adds no BOS on its own, so the template's BOS stays in the prefix
    assert q.prefix == tiny_tokenizer.bos_token + "<|start_header_id|>user<|end_header_id|>\n\n"
    assert q.end_of_turn == "<|eot_id|>"
    assert q.stop == ("<|eot_id|>", tiny_tokenizer.eos_token)
    with_system = prequery(tiny_tokenizer, system_prompt="Answer in French.", chat_template=LLAMA3_STYLE)
    assert with_system.prefix.endswith(
        "<|start_header_id|>system<|end_header_id|>\n\nAnswer in French.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
    )


def test_prefix_plus_query_is_what_the_template_renders(smollm2_tokenizer, tiny_tokenizer):
    for tokenizer, template in [(smollm2_tokenizer, None), (tiny_tokenizer, LLAMA3_STYLE)]:
        q = prequery(tokenizer, chat_template=template)
        query = "How do I keep basil alive indoors?"
        rendered = tokenizer.apply_chat_template(
            [{"role": "user", "content": query}], tokenize=False, chat_template=template
        )
        assert rendered.startswith(q.prefix + query + q.end_of_turn)


def test_follow_up_prefix_continues_the_conversation(tiny_tokenizer):
    history = [{"role": "user", "content": "What is a prime number?"}, {"role": "assistant", "content": "A number..."}]
    q = prequery(tiny_tokenizer, history)
    assert q.prefix == (
        "<|im_start|>user\nWhat is a prime number?<|im_end|>\n<|im_start|>assistant\nA number...<|im_end|>\n"
        "<|im_start|>user\n"
    )


def test_templates_that_cannot_give_a_prefix_are_user_errors(tiny_tokenizer):
    with pytest.raises(UserError, match="refused the conversation"):
        prequery(tiny_tokenizer, system_prompt="Be brief.", chat_template=NO_SYSTEM_ROLE)
    gemma = prequery(tiny_tokenizer, chat_template=NO_SYSTEM_ROLE)
    assert gemma.prefix == "<start_of_turn>user\n" and gemma.end_of_turn == "<end_of_turn>"
    assert gemma.default_system_prompt is None


def test_bos_is_dropped_only_when_the_tokenizer_adds_it():
    class AddsBos:
        bos_token, bos_token_id = "<|begin_of_text|>", 7

        def __call__(self, text):
            return {"input_ids": [7, 99]}

    class NoBos(AddsBos):
        def __call__(self, text):
            return {"input_ids": [99]}

    prefix = "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"
    assert strip_bos(prefix, AddsBos()) == "<|start_header_id|>user<|end_header_id|>\n\n"
    assert strip_bos(prefix, NoBos()) == prefix


def test_clean_query_cuts_at_special_tokens():
    markers = ["<|im_end|>", "<|im_start|>"]
    assert clean_query('"How do I sort a list in Python?"<|im_end|>\n', markers) == "How do I sort a list in Python?"
    assert clean_query("Explain tides.<|im_start|>assistant\nTides are", markers) == "Explain tides."
    assert clean_query("   \n", markers) == ""


@pytest.mark.parametrize(
    "query",
    [
        "Can you provide me with some advice on building a personal resilience that will help make me a better "
        "leader in my team?",  # SmolLM2
        "I'm in need of assistance with CV. Could you provide a sample template or guide on these steps?",  # SmolLM2
        "Could you explain to me the difference between a fail-through dataset and a count-through dataset?",
        "Write a haiku about autumn rain.",
        "I need a packing list for a three-day hiking trip",
        "I'm considering making a lifestyle change to reduce our energy consumption by aiming to reduce waste paper",
        "I'm having a difficult time with my early launch of a sci-fi film franchise.",  # SmolLM2, both
        "请帮我写一首关于秋天的短诗",
        "如何提高英语口语水平",
        "Python里列表和元组有什么区别",
    ],
)
def test_requests(query):
    assert is_request(query)


@pytest.mark.parametrize(
    "query",
    [
        "Last night a group of prostitutes attacked a Filipina.com employee about a robbery and were jailed for "
        "19 years.",  # SmolLM2: a news-like fragment, not a request
        "Sure! Here is a short poem about the sea: The waves roll in.",
        "Hello! How can I assist you today?",
        "I'm sorry, but I can't help with that.",
        "The weather was lovely in Lisbon this spring.",
        "今天天气很好，我们去了公园。",
        "好的，下面是一首关于秋天的诗。",
    ],
)
def test_not_requests(query):
    assert not is_request(query)


def test_query_checks_drop_with_reasons():
    from datasets import Dataset

    rows = [
        {"query": "How do I make sourdough starter at home?", "finish_reason": "stop"},
        {"query": "Write a limerick about", "finish_reason": "length"},
        {"query": "", "finish_reason": "stop"},
        {"query": "Hi", "finish_reason": "stop"},
        {"query": "Certainly! Here is the recipe you asked for.", "finish_reason": "stop"},
        {"query": "", "finish_reason": "error"},
    ]
    kept, _, counts = apply_checks(Dataset.from_list(rows), query_checks("query"), desc="checks")
    assert kept["query"] == ["How do I make sourdough starter at home?"]
    assert dict(counts) == {
        "query_truncated": 1,
        "empty_query": 1,
        "query_too_short": 1,
        "not_a_request": 1,
        "request_failed": 1,
    }
