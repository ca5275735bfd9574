"""Source code as input rows, and the seeded choice of a fragment from each document."""

import pytest

from builders.errors import UserError
from builders.methods.code.sources import extract_snippet, load_code, stdlib_folder
from conftest import write_jsonl

TEXTWRAP = (stdlib_folder() / "textwrap.py").read_text()


def is_run_of_lines(snippet: str, code: str) -> bool:
    lines, part = code.splitlines(), snippet.splitlines()
    return any(lines[i : i + len(part)] == part for i in range(len(lines) - len(part) + 1))


def test_snippets_are_deterministic_per_seed_and_row():
    first = [extract_snippet(TEXTWRAP, seed=42, row_id=r) for r in range(50)]
    again = [extract_snippet(TEXTWRAP, seed=42, row_id=r) for r in range(50)]
    other_seed = [extract_snippet(TEXTWRAP, seed=7, row_id=r) for r in range(50)]
    assert first == again
    assert first != other_seed
    assert len(set(first)) > 40  # rows get different fragments


def test_snippets_are_1_to_15_consecutive_lines_of_the_document():
    sizes = set()
    for row in range(300):
        snippet = extract_snippet(TEXTWRAP, seed=0, row_id=row)
        assert snippet.strip() and is_run_of_lines(snippet, TEXTWRAP)
        assert snippet == snippet.strip("\n") and 1 <= len(snippet.splitlines()) <= 15
        sizes.add(len(snippet.splitlines()))
    assert {1, 15} <= sizes  # both ends of the range occur
    narrow = {len(extract_snippet(TEXTWRAP, 0, r, min_lines=3, max_lines=4).splitlines()) for r in range(100)}
    assert narrow <= {1, 2, 3, 4} and {3, 4} <= narrow  # blank edges may be trimmed, never more lines


def test_empty_documents_give_no_snippet():
    assert extract_snippet("", 1, 1) == "" and extract_snippet("\n\n   \n", 1, 1) == ""
    assert extract_snippet("x = 1", 1, 1) == "x = 1"


def test_stdlib_source_with_include_patterns():
    docs = load_code("stdlib", include=["textwrap.py", "json/*.py"])
    paths = docs["path"]
    assert paths[0] == "stdlib/json/__init__.py" and "stdlib/textwrap.py" in paths
    assert all(p.startswith("stdlib/json/") or p == "stdlib/textwrap.py" for p in paths)
    assert set(docs["lang"]) == {"python"} and docs["_row"] == list(range(len(docs)))
    assert docs[paths.index("stdlib/textwrap.py")]["code"] == TEXTWRAP
    everything = load_code("stdlib")
    assert len(everything) > 300 and not any("/test/" in p or "idlelib" in p for p in everything["path"])


def test_folder_of_files_languages_from_extensions(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.py").write_text("x = 1\n")
    (tmp_path / "src" / "b.rs").write_text("fn main() {}\n")
    (tmp_path / "notes.md").write_text("not code")
    docs = load_code(str(tmp_path))
    assert sorted(zip(docs["path"], docs["lang"])) == [("src/a.py", "python"), ("src/b.rs", "rust")]
    assert load_code(str(tmp_path / "src" / "b.rs"))["lang"] == ["rust"]
    assert load_code(str(tmp_path), include=["**/*.py"])["path"] == ["src/a.py"]
    with pytest.raises(UserError, match="matches `include`"):
        load_code(str(tmp_path), include=["*.go"])


def test_dataset_with_a_code_column(tmp_path):
    rows = [
        {"content": "print('hi')", "lang": "Python", "path": "a.py"},
        {"content": "int main() {}", "lang": "C++", "path": "m.cpp"},
        {"content": "SELECT 1;", "path": "q.sql"},
    ]
    data = write_jsonl(tmp_path / "code.jsonl", rows)
    docs = load_code(str(data))
    assert docs["lang"] == ["python", "cpp", "sql"] and docs["code"][1] == "int main() {}"
    with pytest.raises(UserError, match="has no column 'source'"):
        load_code(str(data), code_column="source")
