"""Differentially private plate text: k-ary randomized response per character.

A plate of n characters over an alphabet of k symbols is released character by character:
each keeps its symbol with probability e^(eps/n) / (e^(eps/n) + k - 1) and otherwise becomes
one of the k - 1 others, uniformly. Each character is (eps/n)-DP; the n of them compose to
eps-DP for the whole text: for any two texts of the same length (differing in any number of
characters) and any output, the probabilities differ by at most a factor e^eps. The length
is not protected (it is visible in the plate's shape anyway).

The source design's mechanism, Laplace noise of scale 1/eps on each symbol's code, rounded
and wrapped modulo k, is not eps-DP per character: its sensitivity is the largest cyclic
distance between two codes, floor(k/2), not 1. :func:`laplace_wrap_epsilon` computes the
privacy loss it actually has.
"""

from __future__ import annotations

import math

import numpy as np

#: The plate alphabet: OCR reads only these, the mechanism draws from them.
PLATE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
MECHANISM = "k-ary randomized response per character, epsilon split evenly over characters"


def keep_probability(epsilon_char: float, k: int) -> float:
    """The probability a character keeps its symbol under (epsilon_char)-DP k-ary RR."""
    e = math.exp(epsilon_char)
    return e / (e + k - 1)


def randomized_response(
    text: str, epsilon: float, rng: np.random.Generator, alphabet: str = PLATE_ALPHABET
) -> str:
    """``text`` released under ``epsilon``-DP (split evenly over its characters)."""
    if not text:
        return text
    if not (epsilon > 0 and math.isfinite(epsilon)):
        raise ValueError("epsilon must be a positive number")
    k = len(alphabet)
    index = {c: i for i, c in enumerate(alphabet)}
    unknown = [c for c in text if c not in index]
    if unknown:
        raise ValueError(f"characters outside the plate alphabet: {''.join(sorted(set(unknown)))}")
    p = keep_probability(epsilon / len(text), k)
    out = []
    for c in text:
        i = index[c]
        if rng.random() < p:
            out.append(c)
        else:  # one of the k - 1 others, uniformly
            j = int(rng.integers(k - 1))
            out.append(alphabet[j + 1 if j >= i else j])
    return "".join(out)


def random_text(n: int, rng: np.random.Generator, alphabet: str = PLATE_ALPHABET) -> str:
    """Text of ``n`` uniform symbols: what an unread plate gets (independent of it)."""
    return "".join(alphabet[int(i)] for i in rng.integers(len(alphabet), size=n))


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions)."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def expected_edit_floor(n: int, epsilon: float, k: int = len(PLATE_ALPHABET)) -> float:
    """The expected Hamming distance (an upper bound on the expected edit distance) between
    a text of ``n`` characters and its release: n * (1 - keep probability)."""
    return n * (1 - keep_probability(epsilon / n, k)) if n else 0.0


def laplace_wrap_log_distribution(epsilon: float, k: int) -> np.ndarray:
    """ln P(output = code + d mod k), d = 0..k-1, for the source design's mechanism: the code
    plus round(Laplace(1/eps)), modulo k. The rounded Laplace is two-sided geometric,
    P(m) = A e^(-eps|m|) for m != 0 with A = sinh(eps/2), P(0) = 1 - e^(-eps/2); wrapping sums
    its windings in closed form (in logs, so large eps does not underflow)."""
    e = float(epsilon)
    log_a = math.log(math.sinh(e / 2))
    log_wrap = math.log1p(-math.exp(-e * k))
    d = np.arange(k, dtype=np.float64)
    out = log_a + np.logaddexp(-e * d, -e * (k - d)) - log_wrap
    p0 = 1 - math.exp(-e / 2) + 2 * math.exp(log_a - e * k - log_wrap)
    out[0] = math.log(p0)
    return out


def laplace_wrap_epsilon(epsilon: float, k: int = len(PLATE_ALPHABET)) -> float:
    """The privacy loss one character actually has under the source design's mechanism run
    with parameter ``epsilon``: max over codes c, c' and outputs j of ln P(j|c) / P(j|c')."""
    lp = laplace_wrap_log_distribution(epsilon, k)
    # the mechanism is shift-invariant: P(j | c) = p[(j - c) % k]
    return float(max(np.max(lp - np.roll(lp, d)) for d in range(1, k)))
