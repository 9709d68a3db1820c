"""A generator as a sampler of primes: its windows and their acceptance, as test sessions use it.

Test sessions and the distribution measures score whole windows with the Keras network, as in
training. A scorer that reads residues also folds into numpy tables (``FoldedScorer``, ``FoldedHead``),
so that test.py --primes reads what the generator learned without TensorFlow (training/primes.py).
"""
import functools
import io
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import utils
from training import measuring, oracle
from training.encodings import grouped_residue_tables

ACCEPTANCE_REFERENCE = 2**15    # latents whose windows bound a window's acceptance weight, at
ACCEPTANCE_CANDIDATES = 2**19   # most this many candidates in all (fewer latents for wide heads)
ACCEPTANCE_SEED = 0             # seed of those latents: a sampler is a function of its weights and range
MAX_WINDOW_CANDIDATES = 2**25   # candidates in the windows measured at once (1 GiB with weights, labels)
FOLD_CHUNK = 4096               # candidates folded at once: rows stay in cache (2.3x faster than 2**15,
                                # the same scores)
SMALL_SPAN = 2**62              # a latent range wider than this is drawn through its residues


@dataclass
class Windows:
    """A generator's candidate windows for some latents: candidates (n, K) odd integers, and weights
    (n, K) >= 0, the probability that latent i is accepted and emits candidate k, up to one constant."""
    candidates: np.ndarray
    weights: np.ndarray


def iid_latents(low: int, high: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` latents uniform in [low, high], repeats allowed: int64 below 2**63, Python ints above."""
    if high < 2**63:
        return rng.integers(low, high, size=size, endpoint=True)
    return utils.random_big_integers(low, high, size, rng)


def reference_latents(low: int, high: int, size: int) -> np.ndarray:
    """The latents whose scores bound the acceptance: ``size`` distinct ones of [low, high] from
    ACCEPTANCE_SEED; above SMALL_SPAN, of its first SMALL_SPAN (their residues are as uniform)."""
    rng = np.random.default_rng(ACCEPTANCE_SEED)
    if high - low < SMALL_SPAN:
        return utils.random_integers(low, high, min(size, high - low + 1), rng)
    return low + rng.integers(0, SMALL_SPAN, size).astype(object)


class PointMasses:
    """The sampler of a generator whose output is fixed by z: no window, every latent accepted."""

    def __init__(self, outputs: Callable, low: int = 1, high: int = utils.LATENT_LIMIT):
        self.outputs, self.low, self.high = outputs, low, high

    def draw_candidates(self, z, rng: np.random.Generator) -> tuple:
        """(candidates, accepted): each latent's candidate, exactly, and True for every one."""
        x = utils.check_outputs(self.outputs(z))
        return utils.to_odd_integer(x), np.ones(x.shape, dtype=bool)

    def windows(self, z):
        return None

    @staticmethod
    def largest_encoded_prime():
        """The largest prime whose residues the generator reads, if it reads residues."""
        return None


# ---------------------------------------------------------------------------------------------
# The offset head's scorer as numpy tables


NUMPY_ACTIVATIONS = {"relu": lambda h: np.maximum(h, 0.0, out=h), "sin": np.sin,
                     "snake": lambda h: h + np.square(np.sin(h))}  # model.ACTIVATIONS' own


class FoldedScorer:
    """The score of a candidate n = 2*(offsets*z + k) + 1 from its residues, in numpy.

    The scorer's first layer is linear in the residue features, so it folds into one table per group
    of primes (``encodings.grouped_residue_tables``): row n mod the group's product holds the layer's
    pre-activation share of those features (the first table adds the bias). A score is one row per
    group, the activation and the rest of the MLP: the Keras scores up to float32 rounding (1e-5).
    """

    def __init__(self, head):
        dense = head.dense_weights()
        groups = grouped_residue_tables(oracle.odd_primes(head.architecture["largest_prime"]))
        weights, bias = (w.astype(np.float64) for w in dense[0])
        starts = np.cumsum([0] + [table.shape[1] for _, table in groups])
        self.moduli = [m for m, _ in groups]
        self.tables = [(table.astype(np.float64) @ weights[a:b] + (bias if i == 0 else 0.0)).astype(np.float32)
                       for i, ((_, table), a, b) in enumerate(zip(groups, starts[:-1], starts[1:]))]
        self.offsets = head.offsets
        self.activation = NUMPY_ACTIVATIONS[head.architecture["generator_activation"]]
        self.layers = [tuple(w.astype(np.float32) for w in layer) for layer in dense[1:]]

    def latent_residues(self, z) -> np.ndarray:
        """z modulo each group's product: int64 (len(moduli), n), for int64 or Python-int z."""
        return np.stack([utils.residues(np.asarray(z), m) for m in self.moduli])

    def __call__(self, residues: np.ndarray, k: np.ndarray) -> np.ndarray:
        """Scores (n,) float32 of candidate k (n,) of the latents whose ``latent_residues`` these are."""
        out = np.empty(len(k), np.float32)
        odd = 2 * np.asarray(k, np.int64) + 1
        for s in range(0, len(k), FOLD_CHUNK):
            piece = odd[s:s + FOLD_CHUNK]
            h, row = np.empty((2, len(piece), self.tables[0].shape[1]), np.float32)
            for j, (m, table, r) in enumerate(zip(self.moduli, self.tables, residues[:, s:s + FOLD_CHUNK])):
                np.take(table, (2 * self.offsets * r + piece) % m, axis=0, out=row if j else h, mode="clip")
                if j:
                    h += row
            if self.layers:  # else the first layer is the score itself
                h = self.activation(h)
                for i, (w, b) in enumerate(self.layers):
                    h = h @ w + b
                    h = self.activation(h) if i < len(self.layers) - 1 else h
            out[s:s + FOLD_CHUNK] = h.reshape(-1)
        return out


def folds(architecture: dict, methods: dict) -> bool:
    """Whether a generator scores each candidate from its residues alone (``FoldedScorer``): a
    per-candidate input whose encoding folds (reading D's features does not)."""
    read = methods.get("generator_input")  # offset heads only
    return bool(read and read.per_candidate and read.build.folds)


def candidates(offsets: int, z, k=None) -> np.ndarray:
    """The candidates 2*(offsets*z + k)+1 of latents z (n,), exactly: every choice's (n,
    offsets), or choice k (n,) of each; uint64 below 2**64, else Python ints."""
    z = utils.integers(z).reshape(-1, 1)
    k = np.arange(offsets) if k is None else np.asarray(k).reshape(-1, 1)
    if z.dtype == object or (z.size and z.max() >= 2**62 // offsets):
        out = 2 * (offsets * z.astype(object) + k.astype(object)) + 1
    else:
        out = np.uint64(2) * (np.uint64(offsets) * z.astype(np.uint64) + k.astype(np.uint64)) + np.uint64(1)
    return out.reshape(len(z), offsets) if k.ndim == 1 else out.reshape(-1)


def draw_offsets(pi: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One offset k ~ pi per row of pi (n, K), by its inverse CDF: int (n,)."""
    return (np.cumsum(pi, axis=1) < rng.random((len(pi), 1))).sum(axis=1).clip(max=pi.shape[1] - 1)


def latents_for(offsets: int, lo: int, hi: int) -> tuple:
    """The latents whose windows meet the odd integers of [lo, hi]: (low, high)."""
    return max((lo - 1) // (2 * offsets), 0), (hi - 1) // (2 * offsets)


class FoldedHead:
    """An offset head that folds, from its weight file's arrays alone: its scores without TensorFlow.
    dense: its scorer's Dense layers' (kernel, bias), first to last."""

    def __init__(self, architecture: dict, methods: dict, dense: list):
        self.architecture, self.methods, self.dense = architecture, methods, dense
        self.offsets, self.acceptance = architecture["offsets"], methods["acceptance"]
        self.encoding = methods["generator_input"].build

    @staticmethod
    def fits(architecture: dict, methods: dict) -> bool:
        """Whether the generator ``architecture`` records folds into tables."""
        return folds(architecture, methods)

    def dense_weights(self) -> list:
        return self.dense

    @functools.cached_property
    def scorer(self) -> FoldedScorer:
        return FoldedScorer(self)

    def logits(self, z) -> np.ndarray:
        """Every offset's score (n, K) float64 for latents z (n,): the Keras head's ``logits``."""
        k = np.tile(np.arange(self.offsets), len(z))
        residues = np.repeat(self.scorer.latent_residues(z), self.offsets, axis=1)
        return self.scorer(residues, k).astype(np.float64).reshape(len(z), self.offsets)

    def candidate_scores(self, z, k) -> np.ndarray:
        """The score of candidate k of each latent z alone: float64 (n,)."""
        return self.scorer(self.scorer.latent_residues(utils.integers(z)), np.asarray(k)).astype(np.float64)

    def candidates(self, z, k=None) -> np.ndarray:
        return candidates(self.offsets, z, k)

    def latents_for(self, lo: int, hi: int) -> tuple:
        return latents_for(self.offsets, lo, hi)

    def sampler(self, how: str, low: int, high: int):
        return OffsetSampler(self, how, low, high)


# ---------------------------------------------------------------------------------------------
# The offset head's sampler


class OffsetSampler:
    """The offset head as a random prime generator: each latent's window of offsets candidates.

    "greedy": the likeliest offset of every latent. "sampled": k ~ pi(k | z), the latent kept with
    the acceptance part's probability, bounded (when first needed) over ACCEPTANCE_REFERENCE latents
    of the range: a window above the bound is kept always, so ``windows`` reports the bound too.
    """

    def __init__(self, head, how: str, low: int, high: int):
        assert how in measuring.SAMPLINGS, "the command line checks sampling"
        self.head, self.sampled, self.low, self.high = head, how == "sampled", low, high
        self._last = None       # (latents, _choices of them)

    @functools.cached_property
    def bound(self) -> float:
        """The largest log acceptance weight of a window over the reference latents (0: none)."""
        if not (self.sampled and self.head.acceptance.per_candidate):
            return 0.0
        size = min(ACCEPTANCE_REFERENCE, max(1, ACCEPTANCE_CANDIDATES // self.head.offsets))
        logits = self.head.logits(reference_latents(self.low, self.high, size))
        return float(np.max(self.head.acceptance.build(logits)))

    def _choices(self, z) -> tuple:
        """(probabilities (n, K) of each offset, probability (n,) that each latent is kept).
        The last latents' answer is kept: a test session draws from them, then measures them."""
        if self._last is not None and self._last[0] is z:
            return self._last[1]
        logits = self.head.logits(z)
        if not self.sampled:
            chosen = np.eye(self.head.offsets)[np.argmax(logits, axis=1)], np.ones(len(logits))
        else:
            shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
            kept = np.exp(np.minimum(self.head.acceptance.build(logits) - self.bound, 0.0))
            chosen = shifted / shifted.sum(axis=1, keepdims=True), kept
        self._last = (z, chosen)
        return chosen

    def _check_windows(self, count: int) -> None:
        if count * self.head.offsets > MAX_WINDOW_CANDIDATES:
            raise utils.OptimusError(
                f"{count} windows of {self.head.offsets} candidates: more than the "
                f"{MAX_WINDOW_CANDIDATES} candidates measured at once; lower n_samples")

    def draw_candidates(self, z, rng: np.random.Generator) -> tuple:
        """(candidates, accepted): each latent's chosen candidate, exactly (uint64 or Python ints), and
        whether it was kept; at most MAX_WINDOW_CANDIDATES candidates scored (refused before any is)."""
        self._check_windows(len(z))
        pi, kept = self._choices(z)
        k = draw_offsets(pi, rng)
        return self.head.candidates(z, k), rng.random(len(pi)) < kept

    def windows(self, z) -> Windows:
        """Every candidate of every latent's window and its weight; at most MAX_WINDOW_CANDIDATES."""
        self._check_windows(len(z))
        pi, kept = self._choices(z)
        return Windows(self.head.candidates(z), pi * kept[:, None])

    def largest_encoded_prime(self):
        ceiling = self.head.encoding.ceiling(self.head.architecture)
        return None if ceiling is None else ceiling[1]


# ---------------------------------------------------------------------------------------------
# Progress on a terminal


DISTRIBUTION_SLICE = 25         # windows whose candidates are tested at a time, between progress lines
PROGRESS_EVERY = 0.2            # seconds between rewrites of a progress line (a terminal's stderr only)


class Progress:
    """A progress line on ``stream`` (stderr), rewritten in place with \\r, when it is a terminal;
    nothing at all otherwise (pipes, files, tests)."""

    def __init__(self, stream=None):
        self.stream = sys.stderr if stream is None else stream
        self.on = bool(getattr(self.stream, "isatty", lambda: False)())
        self.last, self.width = -math.inf, 0

    def show(self, text: str, now: bool = False) -> None:
        """Rewrite the line as ``text``: at once when ``now``, else at most every PROGRESS_EVERY s."""
        if not self.on or (not now and time.perf_counter() - self.last < PROGRESS_EVERY):
            return
        self.last = time.perf_counter()
        self.stream.write("\r" + text.ljust(self.width))
        self.stream.flush()
        self.width = len(text)

    def clear(self) -> None:
        """Erase the line, before anything else is written to the terminal."""
        if self.on and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
            self.width = 0


QUIET = Progress(io.StringIO())  # not a terminal: shows nothing


def window_labels(candidates: np.ndarray, progress: Progress) -> np.ndarray:
    """Which candidates (n, K) are prime, DISTRIBUTION_SLICE windows at a time, shown on progress."""
    labels = np.zeros(candidates.shape, dtype=bool)
    start = time.perf_counter()
    for row in range(0, len(candidates), DISTRIBUTION_SLICE):
        labels[row:row + DISTRIBUTION_SLICE] = oracle.is_prime(candidates[row:row + DISTRIBUTION_SLICE])
        progress.show(f"distribution: {min(row + DISTRIBUTION_SLICE, len(candidates))} of "
                      f"{len(candidates)} windows tested, {time.perf_counter() - start:.0f} s")
    return labels
