"""Reasoning traces: the think-block parser, final-answer extraction and comparison, loops, and the checks.

The outputs below are written the way Qwen3, DeepSeek-R1 distills and non-thinking chat models write them,
in English and in Chinese.
"""

import pytest

from builders.filters.checks import apply_checks
from builders.filters.repetition import repeated_ngram_fraction, text_units
from builders.methods.reasoning.answer_check import answer_is_right, math_text
from builders.methods.reasoning.math_answers import (
    answers_match,
    extract_final_answer,
    parse_answer,
    parse_number,
    parse_reference,
)
from builders.methods.reasoning.traces import (
    assistant_content,
    forced_answer_prefill,
    needs_forcing,
    parse_thinking,
    question_text,
    reasoning_checks,
    template_opens_think,
    unclosed_trace,
)
from conftest import REPO, load_recipe

QWEN3_OUTPUT = (
    "<think>\nOkay, the user wants 17 times 23. Let me break it down: 17 times 20 is 340, and 17 times 3 is 51. "
    "Adding them gives 340 + 51 = 391. Let me double-check with 23 times 17: 23 times 10 is 230, 23 times 7 "
    "is 161, and 230 + 161 = 391. Both agree.\n</think>\n\n17 multiplied by 23 is **391**."
)
R1_OUTPUT_ZH = (  # the template opened the block: the output starts inside it
    "嗯，用户问小明现在有几个苹果。一开始有 5 个，妈妈又给了 7 个，所以是 5 + 7 = 12 个。"
    "然后他吃掉了 3 个，12 - 3 = 9。所以最后有 9 个苹果。\n</think>\n\n小明现在有 9 个苹果。计算过程：5 + 7 - 3 = 9。"
)
LOOPING_TRACE = "<think>\n" + "Wait, let me recompute the total: 5 plus 7 is 12, then minus 3 gives 9. " * 8


def test_parse_a_trace_the_model_opened_itself():
    parsed = parse_thinking(QWEN3_OUTPUT)
    assert parsed.closed and parsed.opened
    assert parsed.reasoning.startswith("Okay, the user wants 17 times 23.") and parsed.reasoning.endswith("agree.")
    assert parsed.answer == "17 multiplied by 23 is **391**."


def test_parse_an_output_that_starts_inside_the_block():
    parsed = parse_thinking(R1_OUTPUT_ZH)
    assert parsed.closed
    assert parsed.reasoning.startswith("嗯，用户问") and "</think>" not in parsed.reasoning
    assert parsed.answer.startswith("小明现在有 9 个苹果")


def test_unclosed_and_untagged_outputs():
    cut = parse_thinking("<think>\nLet me think about the seasons. The Earth's axis is tilted by")
    assert not cut.closed and cut.opened and cut.reasoning is None and cut.answer == ""
    plain = parse_thinking("The capital of France is Paris.")
    assert not plain.closed and not plain.opened
    prefilled = parse_thinking("The Earth's axis is tilted", started_inside=True)
    assert not prefilled.closed and prefilled.opened


def test_custom_tags_and_second_closing_tag_stays_in_the_answer():
    parsed = parse_thinking("<reasoning>a then b</reasoning>done </reasoning>", "<reasoning>", "</reasoning>")
    assert parsed.reasoning == "a then b" and parsed.answer == "done </reasoning>"


def test_budget_forcing_closes_the_trace_so_far():
    text = "<think>\n" + "The train covers 180 km in 2.5 hours, so"
    assert unclosed_trace(text) == "The train covers 180 km in 2.5 hours, so"
    assert forced_answer_prefill(text) == "<think>\nThe train covers 180 km in 2.5 hours, so\n</think>\n\n"
    assert unclosed_trace("no tag at all ") == "no tag at all"


def test_messages_content_and_question_text():
    assert question_text(" Compute the average. ", "4, 8") == "Compute the average.\n\n4, 8"
    assert question_text("为什么天空是蓝色的？", None) == "为什么天空是蓝色的？"
    content = assistant_content("5 + 7 - 3 = 9", "9 个")
    assert parse_thinking(content).reasoning == "5 + 7 - 3 = 9" and parse_thinking(content).answer == "9 个"


def test_template_that_opens_the_block_is_detected(tiny_model):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    assert not template_opens_think(tokenizer)
    r1_style = tokenizer.chat_template.replace("assistant\n' }}", "assistant\n<think>\n' }}")
    assert r1_style != tokenizer.chat_template
    tokenizer.chat_template = r1_style
    assert template_opens_think(tokenizer)


# --- final answers -------------------------------------------------------------------------------------------


# (answer, reference, whether it is right): benchmarks/math_answers.py compares both checkers on these lists
FINAL_ANSWER_CASES = [
    ("So the final answer is \\boxed{\\frac{3}{4}}.", "3/4", True),
    ("45 minutes is $\\boxed{\\dfrac{3}{4}}$ of an hour.", "0.75", True),
    ("The answer is 0.75 hours.", "3/4", True),
    ("The sale price is $30.00.", "30", True),
    ("15% of 240 is 36.", "36", True),
    ("Natalia sold 48 + 24 = 72 clips.\n#### 72", "#### 72", True),
    ("一本书一共读了 30 + 40 = 70 页。答案是 70 页。", "70", True),
    ("小明现在有 9 个苹果。计算过程：5 + 7 - 3 = 9。", "9个", True),
    ("Solving 3x + 7 = 25 gives x = 6.", "6", True),
    ("The discount is 0.25 of the price.", "25%", True),
    ("About 25% of the price.", "0.25", True),
    ("The company earned 1,200 dollars.", "$1,200", True),
    ("17 × 23 = 381", "391", False),
    ("The answer is \\boxed{72}.", "27", False),
    ("I am not sure how to compute this.", "18", False),
    ("The average speed is 72 km/h.", "72 km/h", True),
]


@pytest.mark.parametrize("answer, reference, expected", FINAL_ANSWER_CASES)
def test_final_answer_against_reference(answer, reference, expected):
    assert answers_match(extract_final_answer(answer), parse_reference(reference)) is expected


def test_extraction_prefers_boxed_then_marked_then_stated_then_last_number():
    assert extract_final_answer("We get \\boxed{\\frac{1}{\\sqrt{2}}} in the end, not 3.") == "\\frac{1}{\\sqrt{2}}"
    assert extract_final_answer("Total: 12 apples.\n#### 12") == "12"
    assert extract_final_answer("The answer is 18. Earlier I said 20.") == "18"
    assert extract_final_answer("First 4, then 8, finally 15.") == "15"
    assert extract_final_answer("No digits here.") is None
    assert extract_final_answer("\\boxed{12") == "12"  # unbalanced box: falls back to the last number


def test_numbers_compare_exactly_or_within_tolerance():
    assert parse_number("\\frac{-3}{4}").value == parse_number("-0.75").value
    assert parse_number("1,234.5").value == parse_number("1234.5").value
    assert not answers_match("3.1416", parse_reference("3.14159"))
    assert answers_match("3.1416", parse_reference("3.14159"), tolerance=1e-4)


CONTAINS_THE_DIGITS_CASES = [
    ("So the answer is $\\boxed{\\frac{1}{\\sqrt{2}}}$.", "1"),
    ("The length is \\boxed{2\\sqrt{3}}.", "2"),
    ("The area is \\boxed{12\\pi}.", "12"),
    ("The area is \\boxed{12\\pi} square units.", "\\boxed{12}"),
    ("Hence \\boxed{x^2 + 1}.", "\\boxed{x^2 + 2}"),  # two expressions that share a digit
    ("The answer is \\boxed{3x}.", "3"),
    ("The diagonal of the square is $2\\sqrt{3}$.", "3"),  # no marker: the last formula, read whole
    ("\\boxed{x + 1}", "\\boxed{y + 1}"),
    ("\\boxed{\\frac{2}{3}\\pi}", "\\frac{2}{3}"),
]


@pytest.mark.parametrize("answer, reference", CONTAINS_THE_DIGITS_CASES)
def test_an_answer_that_merely_contains_the_references_digits_is_wrong(answer, reference):
    assert not answers_match(extract_final_answer(answer), parse_reference(reference))


EQUIVALENT_FORMS_CASES = [
    ("\\boxed{0.5}", "\\frac{1}{2}"),
    ("\\boxed{\\frac{\\sqrt{2}}{2}}", "\\boxed{\\frac{1}{\\sqrt{2}}}"),
    ("The side is \\boxed{2\\sqrt{3}} cm.", "\\sqrt{12}"),
    ("The circumference is $\\boxed{6\\pi}$.", "\\boxed{2 \\cdot 3\\pi}"),
    ("The population is \\boxed{1 000}.", "1,000"),  # a space as the thousands separator
    ("The answer is 50 percent.", "0.5"),  # a percentage matches its fraction (and its number)
    ("\\boxed{2^{10}}", "1024"),
    ("\\boxed{3 \\times 4 \\div 2}", "6"),
    ("\\boxed{\\dfrac{\\pi}{2}}", "1.5707963267948966"),
    ("\\boxed{\\sqrt[3]{8}}", "2"),
    ("so $x = \\tfrac{3}{2}$.", "1.5"),
    ("\\boxed{\\dfrac{a}{b}}", "\\boxed{\\frac{a}{b}}"),  # not numbers: the normalised strings are compared
]


@pytest.mark.parametrize("answer, reference", EQUIVALENT_FORMS_CASES)
def test_equivalent_forms_of_one_answer_match(answer, reference):
    assert answers_match(extract_final_answer(answer), parse_reference(reference))


def test_the_evaluator_does_arithmetic_only():
    assert parse_number("10^{10^{10}}") is None  # too large to be an answer; refused at once, never computed
    assert parse_number("\\sqrt{-4}") is None and parse_number("\\frac{1}{0}") is None
    assert parse_number("2 3") is None  # two numbers side by side are not one number
    assert parse_answer("__import__('os').getcwd()").value is None
    assert parse_answer("(1, 2)").value is None and parse_answer("2\\pi r").value is None


def test_only_numeric_references_are_checked():
    assert parse_reference("Paris") is None
    assert parse_reference("3 apples and 4 pears") is None
    assert parse_reference("") is None and parse_reference(None) is None
    assert parse_reference(18).value == 18
    assert parse_reference("The average is \\boxed{18}").value == 18


# --- the recipe's answer check: math-verify, and ours where a case shows it misses ------------------------------

ALL_CASES = (
    FINAL_ANSWER_CASES
    + [(answer, reference, False) for answer, reference in CONTAINS_THE_DIGITS_CASES]
    + [(answer, reference, True) for answer, reference in EQUIVALENT_FORMS_CASES]
)


@pytest.mark.parametrize("answer, reference, expected", ALL_CASES)
def test_the_answer_check_on_every_case(answer, reference, expected):
    assert answer_is_right(answer, reference) is expected


def math_verify_alone(answer, reference) -> bool:
    """math-verify as open-r1 calls it, the reference read as LaTeX math when it is a bare formula."""
    from math_verify import parse, verify

    return verify(parse(math_text(reference)), parse(answer))


@pytest.mark.parametrize(
    "answer, reference, expected",
    [
        ("一本书一共读了 30 + 40 = 70 页。答案是 70 页。验算：70 - 30 = 40。", "70", True),  # its last number: 40
        ("答案是 70 页，因为第一天读了 30 页，第二天读了 40 页。", "70", True),
        ("所以最终答案为 12 个，比原来多 3 个。", "12", True),
        ("答案是 40 页。验算：30 + 40 = 70。", "70", False),  # its last number: 70
        ("The population is \\boxed{1 000}.", "1,000", True),  # math-verify: 1 * 0
        ("The population is \\boxed{1\\,000}.", "1000", True),
    ],
)
def test_where_math_verify_misses_our_code_decides(answer, reference, expected):
    assert math_verify_alone(answer, reference) is not expected
    assert answer_is_right(answer, reference) is expected


def test_a_bare_latex_reference_is_read_as_math():
    from math_verify import parse

    assert parse("16\\pi") == [16, "16"] and parse("\\sqrt{12}") == []  # unwrapped: 16, and nothing
    assert answer_is_right("The circumference is 50.26548245743669 cm.", "16\\pi")  # text-davinci-003's answer
    assert answer_is_right("The side is \\boxed{2\\sqrt{3}} cm.", "\\sqrt{12}")
    assert not answer_is_right("The circumference is 16 cm.", "16\\pi")


def test_a_reference_that_is_not_a_math_answer_is_not_checked():
    assert math_verify_alone("I would buy 4 pears.", "3 apples and 4 pears")  # math-verify reads the reference as 4
    assert answer_is_right("I would buy 4 pears.", "3 apples and 4 pears") is None
    assert answer_is_right("The capital is Lyon.", "Paris") is None and answer_is_right("12", None) is None


@pytest.mark.parametrize(
    "answer, reference",
    [
        ("The final answer is 3/4 of an hour, i.e. 45 minutes.", "3/4"),
        ("The answer is 70 pages, since 30 + 40 = 70.", "70"),
    ],
)
def test_math_verify_reads_answers_our_extraction_missed(answer, reference):
    assert not answers_match(extract_final_answer(answer), parse_reference(reference))
    assert answer_is_right(answer, reference)


def test_answer_tolerance_is_decimal_places():
    assert answer_is_right("The answer is 3.1416.", "3.14159") is False
    assert answer_is_right("The answer is 3.1416.", "3.14159", tolerance=1e-4) is True


# --- loops ---------------------------------------------------------------------------------------------------


def test_repeated_ngrams_separate_loops_from_ordinary_traces():
    assert repeated_ngram_fraction(QWEN3_OUTPUT) < 0.05
    assert repeated_ngram_fraction(R1_OUTPUT_ZH) < 0.05
    assert repeated_ngram_fraction(LOOPING_TRACE) > 0.6
    zh_loop = "我们再检查一遍：五加七等于十二，减去三等于九。" * 6
    assert repeated_ngram_fraction(zh_loop) > 0.6
    assert text_units(zh_loop)[1] and not text_units(QWEN3_OUTPUT)[1]
    assert repeated_ngram_fraction("too short") == 0.0


# --- the checks on parsed rows -------------------------------------------------------------------------------


def parsed_row(question, output, finish_reason="stop", reference=None, started_inside=False):
    parsed = parse_thinking(output, started_inside=started_inside)
    return {
        "question": question,
        "reasoning": parsed.reasoning or "",
        "answer": parsed.answer,
        "think_closed": parsed.closed,
        "finish_reason": finish_reason,
        "reference_answer": reference,
    }


def test_checks_drop_each_failure_with_its_reason():
    from datasets import Dataset

    rows = [
        parsed_row("What is 17 multiplied by 23?", QWEN3_OUTPUT, reference="391"),  # kept
        parsed_row("小明有几个苹果？", R1_OUTPUT_ZH, reference="9"),  # kept
        parsed_row("Why do we have seasons?", "<think>\nThe axis is tilted and", finish_reason="length"),
        parsed_row("Name three primary colors.", "Red, yellow and blue."),
        parsed_row("Name three primary colors.", "<think>\nRed, yellow, blue.\n</think>\n\n"),
        parsed_row(
            "为什么天空是蓝色的？",
            "<think>\nRayleigh scattering.\n</think>\n\nThe sky looks blue because air scatters blue light more.",
        ),
        parsed_row("小明有几个苹果？", LOOPING_TRACE + "</think>\n\n小明有 9 个苹果。"),
        parsed_row("What is 17 multiplied by 23?", QWEN3_OUTPUT.replace("**391**", "**381**"), reference="391"),
        parsed_row(
            "为什么天空是蓝色的？", "<think>\n瑞利散射。\n</think>\n\n因为空气对蓝光的散射更强。", reference="n/a"
        ),
        parsed_row("Name three primary colors.", "", finish_reason="error"),
        parsed_row(  # SmolLM2 with a prefilled tag: it opened more blocks inside the first one
            "Solve for x: 3x + 7 = 25.",
            "<think>\n<think>\n</think>\n<think>\n</think>\n\nThe answer is 3x + 7 = 25.",
            reference="6",
            started_inside=True,
        ),
    ]
    kept, rejected, counts = apply_checks(
        Dataset.from_list(rows), reasoning_checks(reference_column="reference_answer"), desc="checks"
    )
    assert kept["answer"] == [
        "17 multiplied by 23 is **391**.",
        "小明现在有 9 个苹果。计算过程：5 + 7 - 3 = 9。",
        "因为空气对蓝光的散射更强。",
    ]
    assert dict(counts) == {
        "truncated": 1,
        "no_closed_think_block": 1,
        "empty_answer": 1,
        "answer_language_differs": 1,
        "reasoning_loops": 1,
        "wrong_answer": 1,
        "request_failed": 1,
        "malformed_think_block": 1,
    }


def test_checks_can_be_relaxed():
    truncated = parsed_row("Why?", "<think>\nBecause\n</think>\n\nIt is so.", finish_reason="length")
    zh_en = parsed_row("为什么？", "<think>\nok\n</think>\n\nBecause the air scatters blue light.")
    relaxed = reasoning_checks(drop_truncated=False, check_language=False, max_repeated_ngrams=None)
    assert all(check(truncated)[0] and check(zh_en)[0] for check in relaxed)
    strict = reasoning_checks()
    assert [check(zh_en)[1] for check in strict if not check(zh_en)[0]] == ["answer_language_differs"]


ZH_CODE_ANSWER = (  # the way alpaca-gpt4-data-zh answers a coding question: Chinese prose around Python
    "下面是一个用Python实现的快速排序：\n\n```python\ndef quick_sort(items):\n    if len(items) <= 1:\n        return items\n"
    "    pivot = items[len(items) // 2]\n    smaller = [item for item in items if item < pivot]\n"
    "    equal = [item for item in items if item == pivot]\n    larger = [item for item in items if item > pivot]\n"
    "    return quick_sort(smaller) + equal + quick_sort(larger)\n\n\nprint(quick_sort([3, 6, 1, 8, 2]))\n```\n\n"
    "它选择中间的元素作为基准 `pivot`，把列表分成三部分，再递归地排序。"
)


def test_language_check_reads_the_prose_not_the_code_or_the_math():
    from builders.filters.language import detect_language
    from builders.methods.reasoning.traces import prose

    assert detect_language(ZH_CODE_ANSWER) == "en"  # by letters, the code outweighs the Chinese prose
    assert detect_language(prose(ZH_CODE_ANSWER)) == "zh"
    assert prose("移项得 $$2x^{2} = 8$$，所以 $x = 2$ 或 \\(x = -2\\)。").split() == ["移项得", "，所以", "或", "。"]
    checks = reasoning_checks()
    question = "用Python写一个快速排序函数。"
    zh_code = parsed_row(question, f"<think>\n先选基准，再分区。\n</think>\n\n{ZH_CODE_ANSWER}")
    en_code = parsed_row(
        question, "<think>\nok\n</think>\n\nHere is a quick sort in Python:\n```python\nprint(sorted(items))\n```"
    )
    assert [check(zh_code)[1] for check in checks if not check(zh_code)[0]] == []
    assert [check(en_code)[1] for check in checks if not check(en_code)[0]] == ["answer_language_differs"]


# --- budget forcing of traces the model left open (force_unclosed) ---------------------------------------------

# SmolLM2-135M with `<think>` prefilled: it answers inside the block and stops, never writing `</think>`.
ANSWERED_INSIDE = "Alice has 3 apples and buys 2 more. 3 + 2 = 5, so she has 5 apples."


def test_force_unclosed_decides_which_open_traces_are_closed():
    parsed = parse_thinking(ANSWERED_INSIDE, started_inside=True)
    assert not parsed.closed and parsed.opened
    # by default only a trace cut by the token limit is closed; one the model ended itself is dropped
    assert needs_forcing(parsed.closed, "length") and not needs_forcing(parsed.closed, "stop")
    row = parsed_row("How many apples does Alice have?", ANSWERED_INSIDE, reference="5", started_inside=True)
    checks = reasoning_checks(reference_column="reference_answer")
    assert next(reason for keep, reason in (check(row) for check in checks) if not keep) == "no_closed_think_block"
    # with force_unclosed it is closed too; closed traces and failed requests never are
    assert needs_forcing(parsed.closed, "stop", force_unclosed=True)
    assert not needs_forcing(True, "stop", force_unclosed=True) and not needs_forcing(True, "length")
    assert not needs_forcing(False, "error", force_unclosed=True)


class AnsweringRun:
    """Stands in for `Run` in `force_answers`: the model answers every closed trace with the same sentence."""

    answer = "Alice has 5 apples."

    def __init__(self):
        self.prompts = []

    def sampling(self, **overrides):
        return overrides

    def generate(self, ds, *, prompt_column, output_column, stage, sampling):
        self.prompts += ds[prompt_column]
        return ds.map(lambda row: {output_column: self.answer, "finish_reason": "stop", "completion_tokens": 5})


@pytest.mark.parametrize("force_unclosed", [False, True])
def test_force_unclosed_in_the_recipe(force_unclosed):
    """Without the option an output that stopped inside the block is dropped as `no_closed_think_block`; with it
    the trace is closed, the model answers after it, and the row is kept."""
    from datasets import Dataset

    from builders.config import parse_config
    from builders.data import ROW_ID

    recipe = load_recipe("reasoning")
    smoke = str(REPO / "configs" / "reasoning" / "smoke.yaml")
    config = parse_config(recipe.ReasoningConfig, ["--config", smoke, "--force_unclosed", str(force_unclosed)])
    question = "How many apples does Alice have? She has 3 and buys 2 more."
    prefill = "<think>\n"
    outputs = [  # (output, finish_reason): stopped inside the block, cut by the token limit, closed by the model
        (ANSWERED_INSIDE, "stop"),
        ("Alice starts with 3 apples. She buys", "length"),
        ("3 + 2 = 5.\n</think>\n\nAlice has 5 apples.", "stop"),
    ]
    rows = [
        {
            ROW_ID: i,
            "question": question,
            "prompt": [{"role": "user", "content": question}, {"role": "assistant", "content": prefill}],
            "output": output,
            "finish_reason": finish_reason,
            "completion_tokens": 20,
            "reference_answer": "5",
        }
        for i, (output, finish_reason) in enumerate(outputs)
    ]
    parsed = Dataset.from_list(rows).map(
        recipe.split_outputs, batched=True, fn_kwargs={"config": config, "started_inside": True}
    )
    run = AnsweringRun()
    forced = recipe.force_answers(run, parsed, config, prefill)

    assert len(run.prompts) == (2 if force_unclosed else 1)  # the cut trace is closed either way
    if force_unclosed:
        assert run.prompts[0][-1] == {"role": "assistant", "content": f"<think>\n{ANSWERED_INSIDE}\n</think>\n\n"}
    first = forced[0]
    assert first["think_closed"] is force_unclosed
    kept, _, counts = apply_checks(forced, reasoning_checks(reference_column="reference_answer"), desc="checks")
    if force_unclosed:
        assert (first["reasoning"], first["answer"]) == (ANSWERED_INSIDE, AnsweringRun.answer)
        assert kept[ROW_ID] == [0, 1, 2] and not counts
    else:
        assert kept[ROW_ID] == [1, 2] and dict(counts) == {"no_closed_think_block": 1}
