"""Evol-Instruct: operations drawn per (seed, row, round), the rewriting templates, and the eliminations."""

import json
from collections import Counter

import pytest

from builders.errors import UserError
from builders.filters.checks import apply_checks
from builders.methods.evol_instruct import (
    IN_BREADTH,
    IN_DEPTH,
    OPERATIONS,
    PROMPT_MARKERS,
    adds_nothing,
    check_operations,
    choose_operation,
    clean_evolved,
    copies_prompt,
    evolution_prompt,
    instruction_checks,
    is_refusal,
    response_checks,
)
from conftest import shipped_data


@pytest.fixture(scope="module")
def alpaca():
    return json.loads(shipped_data("alpaca_5000.json").read_text())[:50]


def test_operations_are_drawn_from_seed_row_and_round():
    ops = list(OPERATIONS)
    draws = [choose_operation(ops, 42, row, 1) for row in range(600)]
    assert draws == [choose_operation(ops, 42, row, 1) for row in range(600)]
    assert set(Counter(draws)) == set(OPERATIONS) and min(Counter(draws).values()) > 60
    assert draws != [choose_operation(ops, 42, row, 2) for row in range(600)]
    assert draws != [choose_operation(ops, 7, row, 1) for row in range(600)]
    assert {choose_operation(["deepen"], 42, row, 3) for row in range(20)} == {"deepen"}
    assert set(IN_DEPTH) | set(IN_BREADTH) == set(OPERATIONS) and len(IN_DEPTH) == 5


def test_unknown_operations_are_user_errors():
    assert check_operations(["deepen", "in_breadth"]) == ["deepen", "in_breadth"]
    with pytest.raises(UserError, match="unknown or no operations \\(deepn\\)"):
        check_operations(["deepn"])
    with pytest.raises(UserError, match="empty"):
        check_operations([])


def test_every_template_holds_the_instruction_and_its_own_guidance(alpaca):
    instruction = alpaca[1]["instruction"] + "\n\n" + alpaca[1]["input"]
    prompts = {op: evolution_prompt(instruction, op) for op in OPERATIONS}
    for op, prompt in prompts.items():
        assert f"<original_task>\n{instruction}\n</original_task>" in prompt, op
        assert "same language as the original task" in prompt
    assert len(set(prompts.values())) == len(OPERATIONS)
    assert "only add to it" in prompts["deepen"] and "only add to it" not in prompts["in_breadth"]
    # every marker we eliminate on is a phrase of our own templates
    text = " ".join(prompts.values()).lower()
    assert all(marker in text for marker in PROMPT_MARKERS)


def test_own_template_folder_overrides(tmp_path):
    (tmp_path / "evol_instruct").mkdir()
    (tmp_path / "evol_instruct" / "deepen.jinja").write_text("Go deeper: {{ instruction }}")
    assert evolution_prompt("Explain tides.", "deepen", folder=str(tmp_path)) == "Go deeper: Explain tides."


def test_clean_and_copy_detection():
    assert clean_evolved('  "Write a sonnet about rain in iambic pentameter."  ') == (
        "Write a sonnet about rain in iambic pentameter."
    )
    assert copies_prompt("Task: Write a poem about the sea that never uses the letter e.")
    assert copies_prompt("**New task:** Write a poem about the sea.")
    assert copies_prompt("Here is the rewritten instruction: Write a poem about the sea.")
    assert copies_prompt("Write a poem about the sea. (The original task asked for any poem.)")
    assert copies_prompt("<original_task>Write a poem</original_task>")
    assert not copies_prompt("Write a task list for a team offsite, grouped by day.")
    assert not copies_prompt("Rewrite the following sentence in the passive voice: The cat chased the mouse.")


@pytest.mark.parametrize(
    "parent, child, expected",
    [
        ("Write a short poem about the sea.", "Write a poem about the sea.", True),  # shorter, subset
        ("Write a short poem about the sea.", "Write a short poem about the sea, please.", True),  # too similar
        (
            "Write a short poem about the sea.",
            "Write a short poem about the North Sea in winter, in exactly three rhyming couplets.",
            False,
        ),
        (
            "Give three tips for staying healthy.",
            "Describe how a software tester can stay healthy during long night shifts.",
            False,
        ),
        ("给出三个保持健康的建议。", "给出三个保持健康的建议", True),
        ("给出三个保持健康的建议。", "给出三个适合上夜班的程序员保持健康的建议，并说明每个建议背后的原因。", False),
    ],
)
def test_information_gain(parent, child, expected):
    assert adds_nothing(parent, child, max_similarity=0.9) is expected


def test_refusals():
    assert is_refusal("I'm sorry, but I can't help with creating that content.")
    assert is_refusal("As an AI language model, I do not have personal opinions about music.")
    assert is_refusal("Unfortunately I am sorry to say this question has no answer.")
    assert is_refusal("抱歉，我无法回答这个问题。")
    assert not is_refusal("Here are three tips: sleep eight hours, drink water, and walk every day.")
    long_apology = (
        "To apologise well, say sorry plainly and name what you did. " + "Then explain how you will fix it. " * 15
    )
    assert not is_refusal(long_apology)


def test_instruction_and_response_eliminations_say_why():
    from datasets import Dataset

    parent = "Give three tips for staying healthy."
    evolved = [
        "Give three tips for staying healthy while working night shifts, with one tip about sleep.",  # kept
        "Give three tips for staying healthy.",
        "give three tips for staying healthy!",
        "Task: Give three tips for staying healthy while travelling for work.",
        "Give three tips for staying healthy, please.",
        "",
        "Give three tips for staying healthy while travelling and also",
    ]
    rows = [{"instruction": parent, "evolved": e, "finish_reason": "stop"} for e in evolved]
    rows[-1]["finish_reason"] = "length"
    kept, _, counts = apply_checks(Dataset.from_list(rows), instruction_checks(), desc="checks")
    assert kept["evolved"] == evolved[:1]
    assert dict(counts) == {
        "identical_to_parent": 2,
        "copies_prompt": 1,
        "no_new_information": 1,
        "empty": 1,
        "truncated": 1,
    }

    answers = [
        "1. Keep a fixed sleep window even on days off. 2. Eat a light meal before the shift. 3. Walk in daylight.",
        "I'm sorry, but I cannot provide medical advice.",
        "Sleep well.",
        "",
    ]
    rows = [{"response": a, "finish_reason": "stop"} for a in answers]
    kept, _, counts = apply_checks(Dataset.from_list(rows), response_checks(min_units=10), desc="checks")
    assert kept["response"] == answers[:1]
    assert dict(counts) == {"refusal": 1, "response_too_short": 2}
