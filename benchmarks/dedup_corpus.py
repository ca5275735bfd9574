"""The planted corpus of `benchmarks/dedup.py`: real lines of text, copies with known true Jaccard similarity.

Base documents are made of random lines of real text (Shakespeare, Alpaca instructions and answers, cut to at
most 15 words); a quarter of them get one to three copies (exact, re-cased/re-punctuated, or near copies with a
controlled share of word edits). `evaluate` scores the rows a tool kept against the truth.
"""

from __future__ import annotations

import json
import random
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / "data"
NON_ALPHA = re.compile(r"\W+")


def text_pool(max_words: int = 15) -> list[str]:
    """Lines of real text: Shakespeare's lines and the sentences of 5,000 Alpaca records, cut to 15 words.

    Each line appears once and is short, so two base documents (about ten lines each) share at most a line
    or two by chance, far below any duplicate threshold.
    """
    lines = [line.strip() for line in (DATA / "tinyshakespeare.txt").read_text().splitlines()]
    for record in json.loads((DATA / "alpaca_5000.json").read_text()):
        for field in ("instruction", "input", "output"):
            lines += [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", record[field])]
    pool = []
    for line in lines:
        words = line.split()
        pool += [" ".join(words[i : i + max_words]) for i in range(0, len(words), max_words)]
    return list(dict.fromkeys(p for p in pool if len(p.split()) >= 3))


def words(text: str) -> list[str]:
    return [w for w in NON_ALPHA.split(unicodedata.normalize("NFKC", text).lower()) if w]


def grams(text: str, n: int = 5) -> set[tuple[str, ...]]:
    w = words(text)
    return {tuple(w[i : i + n]) for i in range(len(w) - n + 1)}


def near_copy(text: str, rate: float, rng: random.Random, vocab: list[str]) -> str:
    """Edit about `rate` of the words: substitute, delete, insert or swap; also re-case a few."""
    out = text.split()
    for _ in range(max(1, round(rate * len(out)))):
        i = rng.randrange(len(out))
        op = rng.random()
        if op < 0.4:
            out[i] = rng.choice(vocab)
        elif op < 0.6 and len(out) > 10:
            del out[i]
        elif op < 0.8:
            out.insert(i, rng.choice(vocab))
        elif i + 1 < len(out):
            out[i], out[i + 1] = out[i + 1], out[i]
    for _ in range(3):
        i = rng.randrange(len(out))
        out[i] = out[i].upper()
    return " ".join(out)


@dataclass
class Corpus:
    texts: list[str]  # in corpus order; a document's id is its position
    kinds: list[str]  # base, exact, recased, near
    groups: np.ndarray  # the base document each one comes from
    pairs: np.ndarray  # (id, id) of every two documents of a group
    jaccard: np.ndarray  # their true Jaccard similarity


def build_corpus(size: int, n_words: int, seed: int = 0) -> Corpus:
    """Base documents and their planted copies, shuffled; the true Jaccard of every pair within a group."""
    rng = random.Random(seed)
    pool = text_pool()
    vocab = sorted({w for line in pool[:20000] for w in line.split()})
    members: list[tuple[int, str, str]] = []  # (group, kind, text)
    group = 0
    while len(members) < size:
        lines, count = [], 0
        while count < n_words:
            line = pool[rng.randrange(len(pool))].split()[: n_words - count]
            lines.append(" ".join(line))
            count += len(line)
        base = "\n".join(lines)
        members.append((group, "base", base))
        if rng.random() < 0.25:
            for _ in range(rng.randint(1, 3)):
                kind = rng.random()
                if kind < 0.15:
                    members.append((group, "exact", base))
                elif kind < 0.25:
                    members.append((group, "recased", base.upper().replace(",", " ;").replace(".", "!")))
                else:
                    members.append((group, "near", near_copy(base, rng.uniform(0.0, 0.12), rng, vocab)))
        group += 1
    members = members[:size]
    order = list(range(len(members)))
    rng.shuffle(order)
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))

    pairs, similarity = [], []
    start = 0
    while start < len(members):  # members of a group are consecutive before the shuffle
        stop = start + 1
        while stop < len(members) and members[stop][0] == members[start][0]:
            stop += 1
        sets = [grams(members[i][2]) for i in range(start, stop)] if stop - start > 1 else []
        for x in range(stop - start):
            for y in range(x + 1, stop - start):
                union = len(sets[x] | sets[y])
                pairs.append((position[start + x], position[start + y]))
                similarity.append(len(sets[x] & sets[y]) / union if union else 0.0)
        start = stop
    return Corpus(
        texts=[members[i][2] for i in order],
        kinds=[members[i][1] for i in order],
        groups=np.array([members[i][0] for i in order]),
        pairs=np.array(pairs, dtype=np.int64).reshape(-1, 2),
        jaccard=np.array(similarity),
    )


def ideal_removals(corpus: Corpus, threshold: float) -> int:
    """Documents a perfect dedup removes: all but one of each group connected by Jaccard >= threshold."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(corpus.texts)
    edges = corpus.pairs[corpus.jaccard >= threshold]
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
    return n - connected_components(graph, directed=False)[0]


def evaluate(kept_ids, corpus: Corpus, threshold: float) -> dict:
    kept = np.zeros(len(corpus.texts), dtype=bool)
    kept[np.asarray(kept_ids, dtype=np.int64)] = True
    has_twin = np.zeros(len(corpus.texts), dtype=bool)
    has_twin[corpus.pairs[corpus.jaccard >= threshold].ravel()] = True
    strong = corpus.pairs[corpus.jaccard >= threshold + 0.1]
    found = ~(kept[strong[:, 0]] & kept[strong[:, 1]])
    removed = ~kept
    return {
        "removed": int(removed.sum()),
        "precision": float(has_twin[removed].mean()) if removed.any() else 1.0,
        "recall": float(found.mean()) if len(strong) else 1.0,
    }
