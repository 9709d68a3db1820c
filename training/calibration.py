"""Calibration: generators whose scores and distributions are known, measured by the same
instrument as a checkpoint (test.py --calibration)."""
import math

import numpy as np

from training import oracle, sampling
from training.measuring import (RESIDUE_PRIMES_AT_LEAST, measure_cell, p_value_text, percent,
                                prime_measures, test_models)

CALIBRATION_RANGE = (1, 10**5)  # latents of --calibration: 2310z+1 stays below 2.4e8


def _progression(modulus: int):
    """The generator of the candidates modulus*z + 1 (x = modulus*z/2)."""
    return lambda z: (modulus // 2) * z


def _totient(m: int) -> int:
    return sum(math.gcd(k, m) == 1 for k in range(1, m + 1))


WHEEL = math.prod(oracle.odd_primes(31))  # 3 * 5 * ... * 31: the wheel rows avoid these factors
CALIBRATION_OFFSETS = 16        # the window rows' candidates per latent, as the default offset head
CALIBRATION = (  # (name, generator of x, the expected score, the expected tv)
    ("uniform odd, 2z+1", lambda z: z, 1.0, 0.0),
    *((f"{m}z+1", _progression(m), m / (2 * _totient(m)), 1 - 1 / _totient(m)) for m in (6, 30, 210, 2310)),
    ("constant 7", lambda z: np.full_like(z, 3.0), 0.0, None),
    ("two primes, 7 and 11", lambda z: 3.0 + 2.0 * (z % 2), 0.0, None),
)


class _Map:
    """A stand-in network: f applied to float64 values, as a generator's outputs(z) or a
    discriminator's beliefs(x)."""

    def __init__(self, f):
        self.f = f

    def outputs(self, z) -> np.ndarray:
        return np.asarray(self.f(np.asarray(z, dtype=np.float64).reshape(-1, 1))).reshape(-1)

    beliefs = outputs

    def beliefs_of_candidates(self, candidates) -> np.ndarray:
        return self.beliefs((np.asarray(candidates, dtype=np.float64) - 1) / 2)

    def sampler(self, how: str, low: int, high: int) -> sampling.PointMasses:
        return sampling.PointMasses(self.outputs)

    def representation_of(self, candidates) -> None:
        return None  # no hidden layer to probe


class _WindowGenerator:
    """A stand-in generator with the offset head's windows: latent z owns the odd candidates
    2*(K z + k) + 1, k < K, and ``weights(candidates)`` (n, K) says how likely each is emitted
    (a row's sum: how likely its latent is kept, relative to the other rows)."""

    def __init__(self, weights, offsets: int = CALIBRATION_OFFSETS):
        self.weights, self.offsets = weights, offsets

    def sampler(self, sampling: str, low: int, high: int):
        return self

    def windows(self, z) -> sampling.Windows:
        candidates = sampling.candidates(self.offsets, z)
        return sampling.Windows(candidates, np.asarray(self.weights(candidates), dtype=np.float64))

    def draw_candidates(self, z, rng: np.random.Generator) -> tuple:
        windows = self.windows(z)
        total = windows.weights.sum(axis=1)
        pi = windows.weights / np.where(total > 0, total, 1.0)[:, None]
        k = sampling.draw_offsets(pi, rng)
        accepted = rng.random(len(pi)) < total / total.max()
        return windows.candidates[np.arange(len(k)), k], accepted

    @staticmethod
    def largest_encoded_prime():
        return None


def _coprime(candidates) -> np.ndarray:
    """Whether each candidate has no odd prime factor up to 31."""
    return np.gcd(candidates.astype(np.int64) % WHEEL, WHEEL) == 1


def _first_coprime(candidates) -> np.ndarray:
    """One-hot at each window's first candidate coprime to WHEEL (at k = 0 if none is)."""
    return np.eye(candidates.shape[1])[np.argmax(_coprime(candidates), axis=1)]


def _each_coprime_once(candidates) -> np.ndarray:
    """Uniform over each window's coprime candidates: every window is kept alike."""
    coprime = _coprime(candidates).astype(np.float64)
    return coprime / np.maximum(coprime.sum(axis=1, keepdims=True), 1.0)


WINDOW_CALIBRATION = (  # (name, candidate weights (n, K) -> (n, K), the expected tv)
    ("uniform odd, rejection", lambda c: np.ones(c.shape), 0.0),
    ("greedy wheel (first candidate coprime to 31#)", _first_coprime, None),
    ("uniform over each window's coprime candidates", _each_coprime_once, None),
    ("the same, latent kept by its coprime count", lambda c: _coprime(c).astype(np.float64), 0.0),
)


def search_weights(primes: np.ndarray, lo: int, hi: int, kind: str) -> np.ndarray:
    """The probability (up to a constant) that a search gives each prime of [lo, hi] (all of them,
    ascending, uint64), lo odd and below the first.

    "incremental": the first prime >= an odd start drawn uniformly in [lo, hi] (a start past
    the last prime leaves the range: not counted). "randprime": sympy.randprime(lo, hi + 1) as
    sympy 1.14 computes it: n uniform among the integers [lo - 1, hi + 1], the first prime > n,
    or the last prime below hi + 1 when that one is past hi.
    """
    p = primes.astype(np.int64)
    gaps = np.diff(p, prepend=lo - 2 if kind == "incremental" else lo - 1)
    if kind == "incremental":
        return gaps / 2  # the odd starts in (previous prime, p]
    gaps[-1] += hi + 2 - p[-1]  # the integers [p_last, hi + 1] all end at p_last
    return gaps.astype(np.float64)


SEARCH_CALIBRATION = (  # (name, kind of search_weights)
    ("incremental search from a uniform start", "incremental"),
    ("sympy.randprime", "randprime"),
)


def calibration(n_samples: int, seed=None) -> list:
    """Every calibration generator on latents in CALIBRATION_RANGE: the score's (CALIBRATION,
    point masses), the window generators (WINDOW_CALIBRATION), and the two searches over the same
    candidates (exact distributions: they call the oracle until they hit a prime, so no score)."""
    rows = [{"name": name, "expected": expected, "expected_tv": tv,
             **test_models(_Map(f), None, n_samples, *CALIBRATION_RANGE, seed)}
            for name, f, expected, tv in CALIBRATION]
    rows += [{"name": name, "expected": None, "expected_tv": tv,
              **test_models(_WindowGenerator(weights), None, n_samples, *CALIBRATION_RANGE, seed)}
             for name, weights, tv in WINDOW_CALIBRATION]
    lo = 2 * CALIBRATION_OFFSETS * CALIBRATION_RANGE[0] + 1
    hi = 2 * CALIBRATION_OFFSETS * CALIBRATION_RANGE[1] + 2 * CALIBRATION_OFFSETS - 1
    primes = oracle.odd_primes_between(lo, hi)
    residue_primes = oracle.odd_primes(RESIDUE_PRIMES_AT_LEAST)
    floor = prime_measures(primes, np.ones(primes.size), primes.size, residue_primes)["residue_tv"]
    for name, kind in SEARCH_CALIBRATION:
        measures = prime_measures(primes, search_weights(primes, lo, hi, kind), primes.size, residue_primes)
        rows.append({"name": name, "expected": None, "expected_tv": None, "score": None,
                     "distribution": {**measures, "exact": True, "reference_primes": int(primes.size),
                                      "residue_tv_floor": floor}})
    return rows


def format_table(rows: list) -> str:
    """The calibration as a markdown table."""
    n = next(r["latents"] for r in rows if "latents" in r)
    lines = [f"{n} latents in [{CALIBRATION_RANGE[0]}, {CALIBRATION_RANGE[1]}]; window rows: "
             f"{CALIBRATION_OFFSETS} candidates per latent, as the offset head's", "",
             "| generator | expected score | score | p-value | distinct outputs | reference primes | "
             "expected tv | tv | entropy deficit (bits) | residue tv (uniform's) | coverage |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        m = r["distribution"]
        scored = r["score"] is not None
        cells = [r["name"], "" if r["expected"] is None else f"{r['expected']:.3f}",
                 f"{r['score']:.3f} +- {r['score_sd']:.3f}" if scored else "(a search)",
                 p_value_text(r["p_value"]) if scored else "",
                 percent(r["distinct_fraction"]) if scored else "",
                 "n/a" if m is None else f"{m['reference_primes']:,}",
                 "" if r["expected_tv"] is None else f"{r['expected_tv']:.3f}",
                 measure_cell(m, "tv", ".3f"), measure_cell(m, "entropy_deficit_bits", ".3f"),
                 measure_cell(m, "residue_tv", ".3f") + ("" if m is None or m["residue_tv_floor"] is None
                                                          else f" ({m['residue_tv_floor']:.3f})"),
                 measure_cell(m, "coverage", ".3f")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
