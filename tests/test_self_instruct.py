"""Self-Instruct building blocks: seed files, the list parsers, the rule and instance filters, the task pool."""

import json

import pytest
from datasets import Dataset
from rouge_score import rouge_scorer

from builders.config import parse_config
from builders.errors import UserError
from builders.methods.self_instruct.bootstrap import ResponseReader, TaskPool
from builders.methods.self_instruct.parsing import (
    filter_instances,
    instruction_rule,
    parse_classification_instances,
    parse_generation_instances,
    parse_instruction_list,
    parse_task_list,
    parse_yes_no,
)
from builders.methods.self_instruct.prompts import opening
from builders.methods.self_instruct.seeds import read_seed_tasks
from conftest import load_recipe, shipped_data, write_jsonl

# A response in Alpaca's format, as text-davinci-003 wrote them: labels numbered, `###` between tasks.
ALPACA_RESPONSE = """###
4. Instruction: Rewrite the following sentence in the passive voice.
4. Input:
The committee approved the new budget on Friday.
4. Output:
The new budget was approved by the committee on Friday.
###
5. Instruction: Give three tips for staying focused while studying.
5. Input:
<noinput>
5. Output:
1. Put your phone in another room.
2. Work in 25-minute blocks with short breaks.
3. Write down one goal for each session.
###
6. Instruction: Classify the following animal as a mammal, bird, or reptile.
6. Input: Penguin
6. Output: Bird
###
7. Instruction: Summarize the plot of a famous novel in two sentences.
7. Input:
<noinput>
7. Output:
In Pride and Prejudice, Elizabeth Bennet"""


def test_alpaca_list_with_inputs_noinput_multiline_outputs_and_a_truncated_last_item():
    tasks, dropped = parse_task_list(ALPACA_RESPONSE, finish_reason="length", max_tasks=20)
    assert [t["instruction"] for t in tasks] == [
        "Rewrite the following sentence in the passive voice.",
        "Give three tips for staying focused while studying.",
        "Classify the following animal as a mammal, bird, or reptile.",
    ]
    assert tasks[0]["input"] == "The committee approved the new budget on Friday."
    assert tasks[1]["input"] == ""  # <noinput>
    assert tasks[1]["output"].splitlines() == [
        "1. Put your phone in another room.",
        "2. Work in 25-minute blocks with short breaks.",
        "3. Write down one goal for each session.",
    ]  # a numbered list inside an output stays in the output
    assert tasks[2] == {
        "instruction": "Classify the following animal as a mammal, bird, or reptile.",
        "input": "Penguin",
        "output": "Bird",
    }
    assert dropped == {"truncated": 1}  # the generation hit its limit: the last task is cut, as Alpaca drops it


def test_alpaca_list_that_ended_on_its_own_keeps_the_last_item():
    tasks, dropped = parse_task_list(ALPACA_RESPONSE, finish_reason="stop", max_tasks=20)
    assert len(tasks) == 4 and tasks[-1]["output"] == "In Pride and Prejudice, Elizabeth Bennet" and not dropped


def test_chat_style_list_with_preamble_bold_labels_and_no_numbers():
    text = """Sure! Here are some new tasks:

**Instruction:** Translate the phrase into French.
**Input:** Good morning, everyone.
**Output:** Bonjour à tous.

---

**Instruction:** Explain why the sky looks blue during the day.
**Input:** <noinput>
**Output:** Sunlight is scattered by air molecules, and blue light is scattered the most.

Task 3 Instruction: List two renewable energy sources.
Task 3 Output: Solar and wind.

Instruction: Write a haiku about winter.
Input: <noinput>
"""
    tasks, dropped = parse_task_list(text, finish_reason="stop", max_tasks=20)
    assert [(t["instruction"], t["input"], t["output"]) for t in tasks] == [
        ("Translate the phrase into French.", "Good morning, everyone.", "Bonjour à tous."),
        (
            "Explain why the sky looks blue during the day.",
            "",
            "Sunlight is scattered by air molecules, and blue light is scattered the most.",
        ),
        ("List two renewable energy sources.", "", "Solar and wind."),
    ]
    assert dropped == {"incomplete": 1}  # the haiku has no output


def test_raw_completion_is_read_with_the_prompt_opening_and_items_past_the_limit_are_counted():
    response = " Name a famous painter.\n4. Input:\n<noinput>\n4. Output:\nClaude Monet\n###\n" + "\n###\n".join(
        f"{n}. Instruction: Give an example of a prime number above {n}0.\n{n}. Input:\n<noinput>\n{n}. Output:\n{n}1"
        for n in range(5, 9)
    )
    tasks, dropped = parse_task_list(opening("alpaca", 3) + response, "stop", max_tasks=3)
    assert tasks[0] == {"instruction": "Name a famous painter.", "input": "", "output": "Claude Monet"}
    assert len(tasks) == 3 and dropped == {"beyond_tasks_per_request": 2}


def test_noise_is_unparseable_and_counted():
    reader = ResponseReader("alpaca", max_tasks=20)
    assert reader.read("useramearnings],ptionalxtenatorly glob[: non*week support", "length") == []
    assert reader.read("", "stop") == []
    assert reader.read("anything", "error") == []
    assert (reader.responses, reader.unparseable, reader.failed, reader.tasks) == (3, 2, 1, 0)


def test_self_instruct_numbered_instructions():
    text = """Here are eight more tasks:

9. Suggest a name for a bakery that sells only vegan pastries.
10. **Given a list of numbers, find the two that add up to the largest sum below 100.**
   For example, for [40, 50, 70] the answer is 40 and 50.
11) Tell me whether the following statement is a fact or an opinion.

12. Write a short apology email to a customer whose order arrived"""
    instructions, dropped = parse_instruction_list(text, finish_reason="length", max_tasks=8)
    assert instructions == [
        "Suggest a name for a bakery that sells only vegan pastries.",
        "Given a list of numbers, find the two that add up to the largest sum below 100.",  # its example is not
        "Tell me whether the following statement is a fact or an opinion.",
    ]
    assert dropped == {"truncated": 1}
    reader = ResponseReader("self_instruct", max_tasks=8, opening=opening("self_instruct", 8))
    assert reader.read(" Plan a three-day trip to Kyoto.\n10. Explain photosynthesis to a child.", "stop") == [
        {"instruction": "Plan a three-day trip to Kyoto."},
        {"instruction": "Explain photosynthesis to a child."},
    ]


@pytest.mark.parametrize(
    "instruction, reason",
    [
        ("List three fruits.", "too_short"),  # 3 words
        ("List three red fruits.", None),  # 4 words: kept
        ("word " * 150, None),
        ("word " * 151, "too_long"),
        ("Describe the image below in detail.", "blacklisted_word"),
        ("Describe these Pictures in detail please.", "blacklisted_word"),
        ("Construct plumbing diagrams for a two-story house", "blacklisted_word"),  # plural; Alpaca's list missed it
        ("Tell me how to go to the airport.", "blacklisted_word"),
        ("Explain how a mapping between two sets works.", None),  # whole words only
        ("Write a program that prints the first ten primes.", "starts_with_write_a_program"),
        ("Write a poem about programs and programmers.", None),
        ('"Quote" the following sentence in your answer.', "starts_with_punctuation"),
        ("Écris une phrase sur la mer, s'il te plaît.", "starts_with_non_ascii"),
    ],
)
def test_each_rule(instruction, reason):
    assert instruction_rule(" ".join(instruction.split())) == reason


def test_rules_keep_real_alpaca_instructions():
    records = json.loads(shipped_data("alpaca_5000.json").read_text())
    dropped = [r["instruction"] for r in records if instruction_rule(r["instruction"])]
    assert dropped == ["Construct plumbing diagrams for a two-story house"]


def test_generation_instances_input_first():
    text = """Example 1
Input: The movie was long, but the ending made it worth it.
Output: The film is long but has a rewarding ending.
Example 2
Input: <noinput>
Output: A sentence with nothing to shorten.
Example 3
Input: It rained."""
    instances, dropped = parse_generation_instances(text, finish_reason="length")
    assert instances == [
        {
            "input": "The movie was long, but the ending made it worth it.",
            "output": "The film is long but has a rewarding ending.",
        },
        {"input": "", "output": "A sentence with nothing to shorten."},
    ]
    assert dropped == {"truncated": 1}
    assert parse_generation_instances("Output: Paris is the capital of France.", "stop")[0] == [
        {"input": "", "output": "Paris is the capital of France."}
    ]


def test_classification_instances_output_first():
    text = (
        opening("instances_classification")
        + """ Positive
Input: I loved every minute of this concert.
Class label: Negative
Input: The food was cold and the waiter was rude.
Class label: Neutral
Input: The store opens at nine."""
    )
    instances, dropped = parse_classification_instances(text, finish_reason="stop")
    assert instances == [
        {"input": "I loved every minute of this concert.", "output": "Positive"},
        {"input": "The food was cold and the waiter was rude.", "output": "Negative"},
        {"input": "The store opens at nine.", "output": "Neutral"},
    ]
    assert not dropped


def test_instance_filters():
    kept, dropped = filter_instances(
        [
            {"input": "2 + 2", "output": "4"},
            {"input": "2 + 2", "output": "4"},  # exact duplicate
            {"input": "3 + 3", "output": ""},  # empty output
            {"input": "echo", "output": "echo"},  # output copies the input
            {"input": "", "output": "Any prime: 7"},
            {"input": "5 + 5", "output": "10"},
            {"input": "6 + 6", "output": "12"},
        ],
        max_instances=3,
    )
    assert kept == [
        {"input": "2 + 2", "output": "4"},
        {"input": "", "output": "Any prime: 7"},
        {"input": "5 + 5", "output": "10"},
    ]
    assert dropped == {"duplicate_instance": 1, "empty_output": 1, "output_copies_input": 1, "beyond_max_instances": 1}
    ambiguous = [{"input": "Is 9 prime?", "output": "No"}, {"input": "Is 9 prime?", "output": "Yes"}]
    assert filter_instances(ambiguous, 5) == ([], {"same_input_different_output": 2})


def test_yes_no():
    assert [parse_yes_no(a) for a in ("Yes", " no.", "**YES**", "maybe", "")] == [True, False, True, None, None]


def test_seed_file_reads_the_175_real_tasks():
    seeds = read_seed_tasks(str(shipped_data("seed_tasks.jsonl")))
    assert len(seeds) == 175 and sum(s["is_classification"] for s in seeds) == 26
    assert seeds[1] == {
        "instruction": "What is the relation between the given pairs?",
        "instances": [
            {
                "input": "Night : Day :: Right : Left",
                "output": "The relation between the given pairs is that they are opposites.",
            }
        ],
        "is_classification": False,
    }
    assert len(read_seed_tasks(str(shipped_data("seed_tasks.jsonl")), num_samples=10)) == 10


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ('{"instruction": "Say hi.", "instances": [{"input": "", "output": "hi"}]', "line 3 is not valid JSON"),
        ('{"name": "x", "instances": [{"input": "", "output": "hi"}]}', "line 3 has no 'instruction'"),
        ('{"instruction": "Say hi.", "instances": []}', "line 3 needs 'instances'"),
        ('{"instruction": "Say hi.", "instances": [{"input": "a"}]}', "line 3 needs 'instances'"),
        ('{"instruction": "Say hi.", "instances": [{"output": "hi"}], "is_classification": "no"}', "line 3 has 'is_c"),
        ('["Say hi."]', "line 3 is not a JSON object"),
    ],
)
def test_malformed_seed_file_names_the_line(tmp_path, bad_line, message):
    good = shipped_data("seed_tasks.jsonl").read_text().splitlines()[:2]
    path = tmp_path / "seeds.jsonl"
    path.write_text("\n".join([good[0], "", bad_line, good[1]]) + "\n")  # a blank line still counts
    with pytest.raises(UserError, match=message.replace("[", r"\[")):
        read_seed_tasks(str(path))


def test_seed_rows_from_a_json_file_name_the_row(tmp_path):
    rows = [{"instruction": "Say hi.", "instances": [{"input": "", "output": "hi"}], "is_classification": False}]
    (tmp_path / "seeds.json").write_text(json.dumps(rows + [{**rows[0], "instruction": ""}]))
    with pytest.raises(UserError, match="row 2 has no 'instruction'"):
        read_seed_tasks(str(tmp_path / "seeds.json"))
    write_jsonl(tmp_path / "ok.jsonl", rows)
    assert read_seed_tasks(str(tmp_path / "ok.jsonl"))[0]["instruction"] == "Say hi."


def test_task_pool_accepts_in_order_and_says_why_not():
    seeds = read_seed_tasks(str(shipped_data("seed_tasks.jsonl")))
    pool = TaskPool(seeds, target=2, keep_rejected=True)
    offers = [
        {"instruction": "Name three countries in South America and their capitals."},
        {"instruction": "Name three countries in South America and their capital cities."},  # near copy of the first
        {"instruction": seeds[7]["instruction"]},  # a seed
        {"instruction": "Draw a map."},  # 3 words
        {"instruction": "Suggest a good title for a blog post about saving money."},
        {"instruction": "Explain the rules of chess to a ten-year-old child."},  # the pool is full
    ]
    assert [pool.offer(t) for t in offers] == [None, "too_similar", "too_similar", "too_short", None, "target_reached"]
    assert [t["instruction"] for t in pool.accepted] == [offers[0]["instruction"], offers[4]["instruction"]]
    first = pool.accepted[0]
    assert len(first["most_similar_instructions"]) == 10 and 0 < first["avg_similarity_score"] < 0.2
    closest = pool.rejected[0]["most_similar_instructions"][0]
    expected = rouge_scorer.RougeScorer(["rougeL"]).score(offers[0]["instruction"], offers[1]["instruction"])
    assert closest == {"instruction": offers[0]["instruction"], "score": expected["rougeL"].fmeasure}
    assert [r["_drop_reason"] for r in pool.rejected] == ["too_similar", "too_similar", "too_short", "target_reached"]


def test_rejected_tasks_keep_their_similarity_columns_whatever_was_dropped_first():
    """The recipe writes `Dataset.from_list(pool.rejected)`: a rule drop first must not cost the later
    `too_similar` rows their `most_similar_instructions` and `avg_similarity_score`."""
    seeds = read_seed_tasks(str(shipped_data("seed_tasks.jsonl")))
    pool = TaskPool(seeds, target=5, keep_rejected=True)
    offers = [
        {"instruction": "Draw a map.", "input": "", "output": "A map."},  # a rule drop (too short) comes first
        {"instruction": seeds[7]["instruction"], "input": "", "output": "..."},  # a seed: too similar
    ]
    assert [pool.offer(t) for t in offers] == ["too_short", "too_similar"]
    rejected = Dataset.from_list(pool.rejected)
    assert rejected.column_names == [
        "instruction",
        "input",
        "output",
        "most_similar_instructions",
        "avg_similarity_score",
        "_drop_reason",
    ]
    rule_drop, too_similar = rejected
    assert rule_drop["most_similar_instructions"] is None and rule_drop["avg_similarity_score"] is None
    assert too_similar["most_similar_instructions"][0] == {"instruction": seeds[7]["instruction"], "score": 1.0}
    assert 0 < too_similar["avg_similarity_score"] < 1


def test_regex_flags_are_read_as_text():
    config_class = load_recipe("self_instruct").SelfInstructConfig
    regex = r"(\d\. Instruction: [A-Z][a-z]+\n){1,3}"  # not YAML: a mapping key and a flow sequence
    config = parse_config(config_class, ["--list_regex", regex, "--instance_regex", "[a-z]+", "--top_k", "5"])
    assert config.list_regex == regex and config.instance_regex == "[a-z]+" and config.top_k == 5
    assert parse_config(config_class, ["--list_regex", "null"]).list_regex is None
    assert (config.num_prompt_instructions, config.tasks_per_request) == (3, 20)  # alpaca's
    config = parse_config(config_class, ["--mode", "self_instruct"])
    assert (config.num_prompt_instructions, config.tasks_per_request) == (8, 8)  # the paper's
