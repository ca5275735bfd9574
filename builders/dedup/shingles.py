"""Words and n-grams of many documents at once, hashed to 64-bit integers with numpy (no per-row Python).

The text of a document is normalised the same way everywhere in builders (exact dedup, MinHash, decontamination):
Unicode NFKC, lower case, and every run of characters that are not word characters (a letter, digit or
underscore: Python's `\\W`) separates words. A document's *units* are its words, or, for text written without
spaces (Chinese, Japanese), its word characters one by one. An n-gram is n consecutive units of one document.

Everything is vectorised over a batch: the UTF-8 bytes of the batch are decoded into code points with numpy
(ASCII is classified and lower-cased by arithmetic, other characters through lookup tables built from Python's
own `str.isalnum` and `str.lower`), a unit's hash is a polynomial hash of its code points modulo 2^64 (all
units at once with `np.add.reduceat`), and an n-gram's hash is a polynomial hash of its units' hashes, mixed
by murmur3's finaliser. Equal n-grams get equal hashes; different ones collide with probability about 2^-64.
Only texts that are not already NFKC (a quick check on the texts with a non-ASCII byte) are rewritten.

    units = text_units(pa.array(texts), char_mode)      # one hash per word (or character), per document
    grams = units.ngrams(5)                             # one hash per 5-gram; grams.counts[i] per document
"""

from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

U64 = np.uint64
_UNIT_BASE = U64(0x9E3779B97F4A7C15)  # odd constants: bases of the two polynomial hashes
_GRAM_BASE = U64(0xC2B2AE3D27D4EB4F)
_DOC_BASE = U64(0x165667B19E3779F9)
_FMIX1 = U64(0xFF51AFD7ED558CCD)
_FMIX2 = U64(0xC4CEB9FE1A85EC53)
SPACE = 32
# A document is written without spaces (shingled by characters in "auto" mode) when it has fewer spaces
# than one per 20 word characters; English has about one per 5.
UNSPACED_CHARS_PER_SPACE = 20


@dataclass
class Units:
    """The units (words or characters) of a batch of documents: one hash each, document after document."""

    hashes: np.ndarray  # uint64, one per unit
    offsets: np.ndarray  # int64, len(docs) + 1: the units of document i are hashes[offsets[i]:offsets[i + 1]]
    char_mode: np.ndarray | None = None  # bool per document: its units are characters

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)

    def ngrams(self, n: int) -> Grams:
        """Hashes of every n consecutive units of a document; a document with fewer than n units has none."""
        h = self.hashes
        if n < 1:
            raise ValueError(f"n-gram size must be >= 1, got {n}")
        counts = np.maximum(self.counts - (n - 1), 0)
        if len(h) < n or not counts.any():
            return Grams(np.empty(0, U64), _offsets(counts))
        m = len(h) - (n - 1)
        g = h[:m].copy()
        for j in range(1, n):  # Horner: g = (((h0 * B) + h1) * B + h2) ...
            g *= _GRAM_BASE
            g += h[j : j + m]
        # keep the windows that start in a document and end in the same one
        keep = _ranges(self.offsets[:-1], counts)
        return Grams(fmix64(g[keep]), _offsets(counts))

    def doc_hashes(self) -> np.ndarray:
        """Two independent 64-bit hashes of each document's whole unit sequence, shape (docs, 2)."""
        out = np.empty((len(self.offsets) - 1, 2), dtype=U64)
        for col, base in enumerate((_DOC_BASE, _GRAM_BASE)):
            out[:, col] = _segment_poly(self.hashes, self.offsets, base) ^ (self.counts.astype(U64) * _FMIX1)
        return out


@dataclass
class Grams:
    hashes: np.ndarray  # uint64, one per n-gram, document after document
    offsets: np.ndarray  # int64, len(docs) + 1

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)


def text_units(texts: pa.Array | pa.ChunkedArray | list, char_mode: bool | np.ndarray | str = False) -> Units:
    """Normalise and split a batch of texts; `char_mode` is per document (array), for all (bool), or "auto"."""
    cps, doc_off = code_points(texts)
    n_docs = len(doc_off) - 1
    if len(cps) == 0:
        return Units(np.empty(0, U64), np.zeros(n_docs + 1, dtype=np.int64), np.zeros(n_docs, dtype=bool))
    is_word, cps = _classify(cps)

    if isinstance(char_mode, str):
        if char_mode != "auto":
            raise ValueError(f"unknown char_mode {char_mode!r}")
        char_mode = unspaced(cps, is_word, doc_off)
    per_doc = np.broadcast_to(np.asarray(char_mode, dtype=bool), (n_docs,))
    if per_doc.all() != per_doc.any():  # mixed: per code point
        char_mode = np.repeat(per_doc, np.diff(doc_off))
    else:
        char_mode = bool(per_doc.any())

    # A unit starts at a word character whose predecessor is not a word character of the same document (in
    # character mode: at every word character).
    previous = np.empty_like(is_word)
    previous[0], previous[1:] = False, is_word[:-1]
    previous[doc_off[:-1][doc_off[:-1] < doc_off[1:]]] = False
    starts = np.flatnonzero(is_word & (~previous | char_mode))
    counts = np.diff(np.searchsorted(starts, doc_off))

    # A unit's hash: sum of c_j * B^j over its code points, divided by B^start. Non-word characters count 0,
    # so the sum may run on to the next unit's start (np.add.reduceat) without changing.
    power, inverse = _powers(len(cps))
    values = np.multiply(cps * is_word, power[: len(cps)], dtype=U64)
    hashes = np.add.reduceat(values, starts) if len(starts) else np.empty(0, U64)
    hashes = _mix(hashes * inverse[starts])
    return Units(hashes, _offsets(counts), per_doc)


def code_points(texts) -> tuple[np.ndarray, np.ndarray]:
    """NFKC-normalised code points of all texts, concatenated, and each text's offsets into them.

    The narrowest of uint8 (ASCII text: the bytes themselves, no copy), uint16 and uint32 that holds them.
    """
    arr = _string_array(texts)
    data, offsets = _utf8(arr)
    if len(data) == 0 or data.max() < 0x80:  # ASCII: already NFKC, and bytes are code points
        return data, offsets
    data, offsets = _nfkc(data, offsets)
    # Decode UTF-8: drop continuation bytes, then rebuild the code points of multi-byte sequences.
    continuation = np.flatnonzero((data & 0xC0) == 0x80)
    keep = np.ones(len(data), dtype=bool)
    keep[continuation] = False
    leads = np.flatnonzero(data >= 0xC0)
    first_bytes = data[leads]
    values = first_bytes.astype(np.uint32)
    padded = np.concatenate((data, np.zeros(3, np.uint8)))
    for low, high, mask, nbytes in ((0xC0, 0xE0, 0x1F, 2), (0xE0, 0xF0, 0x0F, 3), (0xF0, 0x100, 0x07, 4)):
        sel = (first_bytes >= low) & (first_bytes < high)
        value = values[sel] & mask
        for k in range(1, nbytes):
            value = (value << 6) | (padded[leads[sel] + k] & 0x3F)
        values[sel] = value
    top = int(values.max()) if len(values) else 0
    cps = data[keep].astype(np.uint8 if top < 0x100 else np.uint16 if top < 0x10000 else np.uint32)
    cps[leads - np.searchsorted(continuation, leads)] = values
    return cps, offsets - np.searchsorted(continuation, offsets)


def _nfkc(data: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NFKC of the texts in a UTF-8 buffer: only texts with a non-ASCII byte are checked, few are rewritten."""
    docs = np.unique(np.searchsorted(offsets, np.flatnonzero(data >= 0x80), side="right") - 1)
    fixed, view, bounds = {}, memoryview(data), offsets.tolist()
    for d in docs.tolist():
        text = str(view[bounds[d] : bounds[d + 1]], "utf-8", "replace")
        if not unicodedata.is_normalized("NFKC", text):
            fixed[d] = np.frombuffer(unicodedata.normalize("NFKC", text).encode("utf-8"), dtype=np.uint8)
    if not fixed:
        return data, offsets
    parts, lengths, start = [], np.diff(offsets), 0
    for d, replacement in fixed.items():
        parts += [data[offsets[start] : offsets[d]], replacement]
        lengths[d] = len(replacement)
        start = d + 1
    parts.append(data[offsets[start] :])
    return np.concatenate(parts), _offsets(lengths)


def _utf8(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The UTF-8 bytes of a string array and each string's offsets into them (no copy)."""
    _, offsets_buf, data_buf = arr.buffers()
    width = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    offsets = np.frombuffer(offsets_buf, dtype=width)[arr.offset : arr.offset + len(arr) + 1].astype(np.int64)
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.empty(0, np.uint8)
    return data[offsets[0] : offsets[-1]], offsets - offsets[0]


def unspaced(cps: np.ndarray, is_word: np.ndarray, doc_off: np.ndarray) -> np.ndarray:
    """Per document: written without spaces (fewer than one space per 20 word characters)."""
    spaces = _segment_sum(cps == SPACE, doc_off)
    words = _segment_sum(is_word, doc_off)
    return (words > 0) & (spaces * UNSPACED_CHARS_PER_SPACE < words)


def _mix(x: np.ndarray) -> np.ndarray:
    """A light mix (one multiply, one xor-shift) of hashes that are mixed again by `fmix64` later."""
    x *= _FMIX1
    x ^= x >> U64(29)
    return x


def fmix64(x: np.ndarray) -> np.ndarray:
    """murmur3's 64-bit finaliser, in place on a fresh array: every input bit affects every output bit."""
    x = x ^ (x >> U64(33))
    x *= _FMIX1
    x ^= x >> U64(33)
    x *= _FMIX2
    x ^= x >> U64(33)
    return x


# ---------------------------------------------------------------------------------------------------------------
# helpers


def _string_array(texts) -> pa.Array:
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks() if texts.num_chunks != 1 else texts.chunk(0)
    elif not isinstance(texts, pa.Array):
        texts = pa.array(texts, type=pa.large_string())
    if pa.types.is_string_view(texts.type):
        texts = texts.cast(pa.large_string())
    if not (pa.types.is_string(texts.type) or pa.types.is_large_string(texts.type)):
        raise TypeError(f"expected a column of strings, got {texts.type}")
    return pc.fill_null(texts, "") if texts.null_count else texts


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """concatenate(arange(s, s + l) for s, l in zip(starts, lengths)), without a Python loop."""
    out_starts = np.cumsum(lengths) - lengths
    return np.arange(int(lengths.sum())) + np.repeat(starts - out_starts, lengths)


def _offsets(counts: np.ndarray) -> np.ndarray:
    out = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out


def _segment_sum(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    cum = np.concatenate(([0], np.cumsum(values, dtype=np.int64)))
    return cum[offsets[1:]] - cum[offsets[:-1]]


def _segment_poly(values: np.ndarray, offsets: np.ndarray, base: np.uint64) -> np.ndarray:
    """Polynomial hash of each segment of `values` (uint64) with the given base, modulo 2^64."""
    power = np.ones(len(values) + 1, dtype=U64)
    if len(values):
        power[1:] = base
        power = np.cumprod(power, dtype=U64)
    prefix = np.zeros(len(values) + 1, dtype=U64)
    np.cumsum(values * power[:-1], out=prefix[1:])
    inv = U64(pow(int(base), -1, 1 << 64))
    inverse_at_start = np.array([1], dtype=U64)
    if len(values):
        inverse = np.ones(len(values) + 1, dtype=U64)
        inverse[1:] = inv
        inverse_at_start = np.cumprod(inverse, dtype=U64)
    start, end = offsets[:-1], offsets[1:]
    return (prefix[end] - prefix[start]) * inverse_at_start[start]


_lock = threading.Lock()
_cache: dict = {}


def _classify(cps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(is a word character, lower case) per code point: arithmetic on bytes for ASCII, tables for the rest."""
    c = cps if cps.dtype == np.uint8 else cps.astype(np.uint8)  # exact below 0x80; the rest is fixed below
    is_word = (((c | 0x20) - ord("a")) < 26) | ((c - ord("0")) < 10) | (c == ord("_"))  # unsigned wrap-around
    lower = c + ((c - ord("A")) < 26).view(np.uint8) * np.uint8(0x20)
    wide = np.flatnonzero(cps >= 0x80)
    if len(wide):
        word_table, lower_table = _tables(int(cps[wide].max()))
        lower = lower.astype(cps.dtype)
        is_word[wide] = word_table[cps[wide]]
        lower[wide] = lower_table[cps[wide]]
    return is_word, lower


def _tables(max_cp: int) -> tuple[np.ndarray, np.ndarray]:
    """Lookup tables over code points: is it a word character, and its lower case (first character of it).

    Built once per process: Latin-1 and the Basic Multilingual Plane at first use (~50 ms), all of Unicode
    only when a character beyond it (emoji, rare CJK) appears. Latin-1 lower-cases to Latin-1, so its table
    keeps uint8 code points uint8.
    """
    size = 0x100 if max_cp < 0x100 else 0x10000 if max_cp < 0x10000 else 0x110000
    with _lock:
        if size not in _cache:
            code = np.arange(size, dtype=np.uint32)
            chars = code.view("<U1")  # numpy's str.isalnum and str.lower, one character each
            word = np.char.isalnum(chars) | (code == ord("_"))
            lower = np.char.lower(chars).view(np.uint32)  # one character: the first of a longer lower case
            _cache[size] = (word, lower.astype(np.uint8) if size == 0x100 else lower)
        return _cache[size]


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """base^i and base^-i modulo 2^64 for i < n (grown on demand, shared by threads)."""
    with _lock:
        power = _cache.get("power")
        if power is None or len(power) < n:
            size = max(n, 1 << 20, 2 * len(power) if power is not None else 0)
            power = np.full(size, _UNIT_BASE, dtype=U64)
            power[0] = 1
            np.cumprod(power, out=power)
            inverse = np.full(size, U64(pow(int(_UNIT_BASE), -1, 1 << 64)), dtype=U64)
            inverse[0] = 1
            np.cumprod(inverse, out=inverse)
            _cache["power"], _cache["inverse"] = power, inverse
        return _cache["power"], _cache["inverse"]


_WORD = re.compile(r"\w+")
_WORD_CHAR = re.compile(r"\w")
# str.lower() differs from lower-casing character by character (what `text_units` does) for two characters only:
# U+0130 lower-cases to two characters, and a capital sigma depends on its position in the word.
_PER_CHARACTER_LOWER = {0x130: "i", 0x3A3: "\u03c3"}


def reference_units(text: str, char_mode: bool = False) -> list[str]:
    r"""The same units as `text_units`, in plain Python (the definition; used by checks, tests and benchmarks).

    Python's `\w` is exactly "a character for which str.isalnum() is true, or the underscore".
    """
    text = unicodedata.normalize("NFKC", text or "").translate(_PER_CHARACTER_LOWER).lower()
    return _WORD_CHAR.findall(text) if char_mode else _WORD.findall(text)
