"""The ROUGE-L novelty filter of Self-Instruct and Alpaca, exact and fast.

Self-Instruct keeps a new instruction only when its ROUGE-L F-measure against every instruction already in
the task pool is at most 0.7, and Stanford Alpaca records, for each kept one, the 10 most similar pool
instructions and the mean similarity over the whole pool. Alpaca computes this with `rouge_score` in pure
Python and a new process pool per candidate: about 5 candidates/s against a pool of 10,000 on 2 cores.

`RougeLNovelty` gives the same numbers, bit for bit:

- the same tokens: `rouge_score.tokenize.tokenize` itself (lowercase, every run of characters outside
  `[a-z0-9]` is a separator, no stemming), each token mapped once to an integer id;
- the same LCS length, computed bit-parallel (Hyyrö 2004, "Bit-parallel LCS-length computation revisited"):
  a pool entry of m tokens is a bit vector of m bits; for each token of the candidate, in order,
  `U = V & match(token)` and `V = (V + U) | (V - U)`; the LCS length is the number of zero bits left in V.
  Only entries that contain the token change (`U = 0` leaves V as it is), so each step touches that token's
  postings and nothing else, vectorised with numpy over them. The rare entries longer than 64 tokens run
  the same recurrence on a Python integer of m bits. `V - U` is computed as `V ^ U`: U's bits are a subset
  of V's, so nothing borrows;
- the same F-measure in the same floating-point operations: `2 * P * R / (P + R)` with P = LCS / pool-entry
  length and R = LCS / candidate length, in float64, so every score equals rouge_score's exactly;
- the same `most_similar` (`np.argsort` of the scores in pool order, last 10, reversed, through a dict
  keyed by instruction, as Alpaca builds it) and the same average (`np.mean` over the whole pool).

No pool entry is skipped: the average needs every score, and each exact score costs only the entry's share
of the candidate's postings.
"""

from __future__ import annotations

import numpy as np
from rouge_score.tokenize import tokenize as rouge_tokenize

WORD_BITS = 64
ALL_ONES = np.uint64(0xFFFF_FFFF_FFFF_FFFF)


def rouge_tokens(text: str) -> list[str]:
    """rouge_score's tokens for `text` (RougeScorer(["rougeL"], use_stemmer=False))."""
    return rouge_tokenize(text, None)


class _Rows:
    """A growable numpy array of rows (appended one at a time, capacity doubled when full); `.view` is current."""

    def __init__(self, shape: tuple[int, ...], dtype):
        self._data = np.zeros((8, *shape), dtype=dtype)
        self.view = self._data[:0]

    def __len__(self) -> int:
        return len(self.view)

    def append(self, row) -> None:
        n = len(self.view)
        if n == len(self._data):
            self._data = np.concatenate([self._data, np.zeros_like(self._data)])
        self._data[n] = row
        self.view = self._data[: n + 1]


class _ShortEntries:
    """Pool entries of 1 to 64 tokens: one 64-bit word per entry, and postings per token id.

    `rows[token]` lists the entries that hold the token (their index here) and `bits[token]` the token's
    positions in each of them, as bit masks.
    """

    def __init__(self):
        self.positions = _Rows((), np.int64)  # where each entry sits in the pool
        self.low_bits = _Rows((), np.uint64)  # an entry of m tokens: its m low bits set
        self.rows: dict[int, _Rows] = {}
        self.bits: dict[int, _Rows] = {}

    def insert(self, position: int, token_ids: list[int]) -> None:
        local = len(self.positions)
        self.positions.append(position)
        self.low_bits.append((1 << len(token_ids)) - 1)
        for token, mask in _position_masks(token_ids).items():
            if token not in self.rows:
                self.rows[token] = _Rows((), np.int64)
                self.bits[token] = _Rows((), np.uint64)
            self.rows[token].append(local)
            self.bits[token].append(mask)

    def lcs_lengths(self, candidate_ids: list[int]) -> np.ndarray:
        """LCS length of the candidate with every entry: bit-parallel, vectorised over each token's postings."""
        v = np.full(len(self.positions), ALL_ONES)
        for token in candidate_ids:
            rows = self.rows.get(token)
            if rows is None:
                continue
            rows = rows.view
            old = v[rows]
            u = old & self.bits[token].view
            v[rows] = (old + u) | (old ^ u)  # V - U == V ^ U: U's bits are a subset of V's, nothing borrows
        return np.bitwise_count(~v & self.low_bits.view).astype(np.int64)


class _LongEntry:
    """A pool entry of more than 64 tokens (rare): the same recurrence on a Python integer of m bits."""

    def __init__(self, position: int, token_ids: list[int]):
        self.position = position
        self.full = (1 << len(token_ids)) - 1
        self.masks = _position_masks(token_ids)

    def lcs_length(self, candidate_ids: list[int]) -> int:
        v = self.full
        for token in candidate_ids:
            mask = self.masks.get(token)
            if mask:
                u = v & mask
                v = ((v + u) | (v ^ u)) & self.full
        return self.full.bit_count() - v.bit_count()


def _position_masks(token_ids: list[int]) -> dict[int, int]:
    """For each distinct token, the bit mask of the positions where it occurs."""
    masks: dict[int, int] = {}
    for i, token in enumerate(token_ids):
        masks[token] = masks.get(token, 0) | (1 << i)
    return masks


class RougeLNovelty:
    """A task pool that accepts an instruction when its ROUGE-L F against every pool entry is <= threshold.

        novelty = RougeLNovelty(threshold=0.7, top_k=10)
        novelty.extend(seed_instructions)
        accepted, most_similar, avg_similarity = novelty.add("Name three uses of vinegar in cooking.")

    `most_similar` is a list of (pool instruction, score), most similar first; `avg_similarity` is the mean
    score over the whole pool. Both equal what Stanford Alpaca's `generate_instruction.py` records, and the
    scores equal `rouge_score.rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)`'s F-measures.
    """

    def __init__(self, threshold: float = 0.7, top_k: int = 10):
        self.threshold = threshold
        self.top_k = top_k
        self.instructions: list[str] = []
        self._vocab: dict[str, int] = {}
        self._lengths = _Rows((), np.float64)
        self._short = _ShortEntries()
        self._long: list[_LongEntry] = []

    def __len__(self) -> int:
        return len(self.instructions)

    def extend(self, instructions) -> None:
        """Add instructions to the pool without testing them (the seed tasks)."""
        for instruction in instructions:
            self._insert(instruction, rouge_tokens(instruction))

    def scores(self, instruction: str) -> np.ndarray:
        """ROUGE-L F-measure of `instruction` against every pool entry, in pool order (float64)."""
        return self._scores(rouge_tokens(instruction))

    def add(self, instruction: str) -> tuple[bool, list[tuple[str, float]], float]:
        """Score `instruction` against the pool; add it when no score exceeds the threshold."""
        tokens = rouge_tokens(instruction)
        scores = self._scores(tokens)
        if len(scores) == 0:
            self._insert(instruction, tokens)
            return True, [], 0.0
        accepted = bool(scores.max() <= self.threshold)
        # Alpaca hands np.argsort a list of rouge_score's fmeasures; when none of them is a float (an empty
        # candidate, or a pool of empty entries) numpy sorts int64 zeros, whose ties it may order otherwise.
        all_int = not tokens or not self._lengths.view.any()
        order = np.argsort(np.zeros(len(scores), dtype=np.int64) if all_int else scores)
        similar: dict[str, float] = {}
        for i in order[-self.top_k :][::-1]:
            similar[self.instructions[i]] = float(scores[i])
        if accepted:
            self._insert(instruction, tokens)
        return accepted, list(similar.items()), float(np.mean(scores))

    # -- internals -------------------------------------------------------------------------------------------

    def _ids(self, tokens: list[str], grow: bool) -> list[int]:
        if grow:
            return [self._vocab.setdefault(t, len(self._vocab)) for t in tokens]
        return [i for i in map(self._vocab.get, tokens) if i is not None]  # unseen tokens match nothing

    def _insert(self, instruction: str, tokens: list[str]) -> None:
        position = len(self.instructions)
        self.instructions.append(instruction)
        self._lengths.append(len(tokens))
        if len(tokens) > WORD_BITS:
            self._long.append(_LongEntry(position, self._ids(tokens, grow=True)))
        elif tokens:
            self._short.insert(position, self._ids(tokens, grow=True))

    def _scores(self, tokens: list[str]) -> np.ndarray:
        n = len(self.instructions)
        lcs = np.zeros(n, dtype=np.int64)
        ids = self._ids(tokens, grow=False)
        if ids:
            lcs[self._short.positions.view] = self._short.lcs_lengths(ids)
            for entry in self._long:
                lcs[entry.position] = entry.lcs_length(ids)
        scores = np.zeros(n, dtype=np.float64)
        hit = np.flatnonzero(lcs)
        if len(hit):
            common = lcs[hit].astype(np.float64)
            precision = common / self._lengths.view[hit]  # rouge_score: LCS / len(prediction = pool entry)
            recall = common / len(tokens)  # LCS / len(target = candidate)
            scores[hit] = 2 * precision * recall / (precision + recall)  # rouge_score.scoring.fmeasure
        return scores
