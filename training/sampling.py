"""A generator used as a random prime generator: its windows, their acceptance, and the stream of
proposals behind test.py --primes.

The offset head's sampler has two uses. Test sessions and the distribution measures ask for whole
windows (``draw_candidates``, ``windows``), scored by the Keras network as in training. Drawing
primes asks for a ``stream`` of single candidates, each uniform over every window's and kept with
probability exp(its score - the largest score seen): there the scorer is folded into numpy
tables (``FoldedScorer``), because one candidate's score is a few table rows and two small matrix
products, and TensorFlow's per-call cost would be most of it.
"""
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import utils
from training import model as model_lib

SAMPLINGS = ("sampled", "greedy")  # how a generator is used: draw its offsets, or take the likeliest
ACCEPTANCE_REFERENCE = 2**15    # latents whose windows bound a window's acceptance weight, at
ACCEPTANCE_CANDIDATES = 2**19   # most this many candidates in all (fewer latents for wide heads)
STREAM_REFERENCE = 2**14        # candidates whose largest score bounds a streamed proposal's (on the
                                # shipped pair, the mass above it is 5e-6 of the whole)
ACCEPTANCE_SEED = 0             # seed of those latents (fixed: a generator's sampler is a function
                                # of its weights and latent range alone)
MAX_WINDOW_CANDIDATES = 2**25   # candidates in the windows measured at once (about 1 GiB with
                                # their weights and labels)
FOLD_CHUNK = 2**15              # candidates scored at once by the folded scorer (cache-sized)
SMALL_SPAN = 2**62              # a latent range wider than this is drawn through its residues


@dataclass
class Windows:
    """A generator's candidate windows for some latents: what it can emit for each, and how likely.

    candidates: (n, K) odd integers; weights: (n, K) >= 0, the probability that latent i is
    accepted and emits candidate k, up to one constant factor for all latents.
    """
    candidates: np.ndarray
    weights: np.ndarray


def iid_latents(low: int, high: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` latents drawn independently and uniformly in [low, high] (repeats allowed):
    int64 below 2**63, Python ints above."""
    if high < 2**63:
        return rng.integers(low, high, size=size, endpoint=True)
    return utils.random_big_integers(low, high, size, rng)


def reference_latents(low: int, high: int, size: int) -> np.ndarray:
    """The latents whose scores bound the acceptance: ``size`` distinct ones of [low, high], from
    ACCEPTANCE_SEED. Above SMALL_SPAN they are the range's first SMALL_SPAN latents, whose
    residues modulo small primes are as uniform as the whole range's."""
    rng = np.random.default_rng(ACCEPTANCE_SEED)
    if high - low < SMALL_SPAN:
        return utils.random_integers(low, high, min(size, high - low + 1), rng)
    return low + rng.integers(0, SMALL_SPAN, size).astype(object)


class PointMasses:
    """The sampler of a generator whose output is fixed by z: no window, every latent accepted."""

    def __init__(self, outputs: Callable, low: int = 1, high: int = model_lib.LATENT_LIMIT):
        self.outputs, self.low, self.high = outputs, low, high

    def draw_candidates(self, z, rng: np.random.Generator) -> tuple:
        """(candidates, accepted): each latent's candidate, exactly, and True for every one."""
        x = model_lib.check_outputs(self.outputs(z))
        return utils.to_odd_integer(x), np.ones(x.shape, dtype=bool)

    def stream(self, size: int, rng: np.random.Generator) -> tuple:
        """(candidates, kept) of ``size`` latents drawn independently in the range."""
        return self.draw_candidates(iid_latents(self.low, self.high, size, rng), rng)

    def windows(self, z):
        return None

    def set_up(self) -> None:
        """Nothing to prepare: every latent is kept."""

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

    The scorer's first layer is linear in the residue features, so it folds into one table per
    group of primes (``model.grouped_residue_tables``), indexed by n modulo the group's product:
    row m holds the layer's pre-activation share of the group's features of m (the first table
    also holds the bias). A score is then one row per group, the activation, and the rest of
    the MLP. The same scores as the Keras scorer up to float32 rounding (about 1e-5).
    """

    def __init__(self, head):
        dense = [layer for layer in head.score.layers if layer.get_weights()]
        groups = model_lib.grouped_residue_tables(utils.odd_primes(head.architecture["largest_prime"]))
        weights, bias = (w.astype(np.float64) for w in dense[0].get_weights())
        starts = np.cumsum([0] + [table.shape[1] for _, table in groups])
        self.moduli = [m for m, _ in groups]
        self.tables = [(table.astype(np.float64) @ weights[a:b] + (bias if i == 0 else 0.0)).astype(np.float32)
                       for i, ((_, table), a, b) in enumerate(zip(groups, starts[:-1], starts[1:]))]
        self.offsets = head.offsets
        self.activation = NUMPY_ACTIVATIONS[head.architecture["generator_activation"]]
        self.layers = [tuple(w.astype(np.float32) for w in layer.get_weights()) for layer in dense[1:]]
        self.hidden = len(dense) > 1  # else the first layer is the score itself

    @staticmethod
    def fits(head) -> bool:
        """Whether ``head`` scores each candidate from its residues alone (the folded form)."""
        return (head.input.per_candidate and head.input.encoding.folds
                and head.architecture["generator_activation"] in NUMPY_ACTIVATIONS)

    def latent_residues(self, z) -> np.ndarray:
        """z modulo each group's product: int64 (len(moduli), n), for int64 or Python-int z."""
        return np.stack([utils.residues(np.asarray(z), m) for m in self.moduli])

    def __call__(self, residues: np.ndarray, k: np.ndarray) -> np.ndarray:
        """Scores (n,) float32 of candidate k (n,) of the latents whose ``latent_residues`` these are."""
        out = np.empty(len(k), np.float32)
        odd = 2 * np.asarray(k, np.int64) + 1
        for s in range(0, len(k), FOLD_CHUNK):
            rows = [table[(2 * self.offsets * r + odd[s:s + FOLD_CHUNK]) % m]
                    for m, table, r in zip(self.moduli, self.tables, residues[:, s:s + FOLD_CHUNK])]
            h = rows[0]
            for row in rows[1:]:
                h += row
            if self.hidden:
                h = self.activation(h)
                for i, (w, b) in enumerate(self.layers):
                    h = h @ w + b
                    h = self.activation(h) if i < len(self.layers) - 1 else h
            out[s:s + FOLD_CHUNK] = h.reshape(-1)
        return out


# ---------------------------------------------------------------------------------------------
# The offset head's sampler


class OffsetSampler:
    """The offset head as a random prime generator: each latent's window of offsets candidates.

    "greedy": the likeliest offset of every latent. "sampled": k ~ pi(k | z), and the latent is
    kept with the acceptance part's probability (bounded over ACCEPTANCE_REFERENCE latents of
    the range; a window above the bound is kept always, so the bound is also what ``windows``
    reports). The bounds are computed when first needed.
    """

    def __init__(self, head, how: str, low: int, high: int):
        if how not in SAMPLINGS:
            raise utils.OptimusError(f"sampling must be {' or '.join(map(repr, SAMPLINGS))} "
                                     f"(got {how!r})")
        self.head, self.sampled, self.low, self.high = head, how == "sampled", low, high
        self._last = None       # (latents, _choices of them)

    @functools.cached_property
    def bound(self) -> float:
        """The largest log acceptance weight of a window over the reference latents (0: none)."""
        if not (self.sampled and self.head.acceptance.varies):
            return 0.0
        size = min(ACCEPTANCE_REFERENCE, max(1, ACCEPTANCE_CANDIDATES // self.head.offsets))
        logits = self.head.logits(reference_latents(self.low, self.high, size))
        return float(np.max(self.head.acceptance.log_weight(logits)))

    @functools.cached_property
    def folded(self) -> FoldedScorer | None:
        return FoldedScorer(self.head) if FoldedScorer.fits(self.head) else None

    def _scores(self, z, k) -> np.ndarray:
        """Candidate k's score for each latent z: folded where it can be, else the Keras scorer."""
        if self.folded is None:
            return self.head.candidate_scores(z, k)
        return self.folded(self.folded.latent_residues(z), k).astype(np.float64)

    @functools.cached_property
    def score_bound(self) -> float:
        """The largest score of one candidate over every offset of the reference latents."""
        offsets = self.head.offsets
        z = reference_latents(self.low, self.high, max(1, STREAM_REFERENCE // offsets))
        k = np.tile(np.arange(offsets), len(z))
        if self.folded is None:
            return float(np.max(self.head.candidate_scores(np.repeat(z, offsets), k)))
        return float(np.max(self.folded(np.repeat(self.folded.latent_residues(z), offsets, axis=1), k)))

    def set_up(self) -> None:
        """Compute the stream's bound now (else its first call does), so its time is counted apart."""
        if self.sampled and self.head.acceptance.per_candidate:
            self.score_bound

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
            kept = np.exp(np.minimum(self.head.acceptance.log_weight(logits) - self.bound, 0.0))
            chosen = shifted / shifted.sum(axis=1, keepdims=True), kept
        self._last = (z, chosen)
        return chosen

    def choose(self, z, rng: np.random.Generator) -> tuple:
        """(k, accepted): each latent's offset (n,) and whether it was kept (n,)."""
        pi, kept = self._choices(z)
        k = (np.cumsum(pi, axis=1) < rng.random((len(pi), 1))).sum(axis=1).clip(max=self.head.offsets - 1)
        return k, rng.random(len(pi)) < kept

    def _check_windows(self, count: int) -> None:
        if count * self.head.offsets > MAX_WINDOW_CANDIDATES:
            raise utils.OptimusError(
                f"{count} windows of {self.head.offsets} candidates: more than the "
                f"{MAX_WINDOW_CANDIDATES} candidates measured at once; lower n_samples")

    def draw_candidates(self, z, rng: np.random.Generator) -> tuple:
        """(candidates, accepted): each latent's chosen candidate, exactly (uint64 or Python ints);
        at most MAX_WINDOW_CANDIDATES candidates scored (refused before any is)."""
        self._check_windows(len(z))
        k, accepted = self.choose(z, rng)
        return self.head.candidates(z, k), accepted

    def windows(self, z) -> Windows:
        """Every candidate of every latent's window and its weight; at most MAX_WINDOW_CANDIDATES."""
        self._check_windows(len(z))
        pi, kept = self._choices(z)
        return Windows(self.head.candidates(z), pi * kept[:, None])

    def stream(self, size: int, rng: np.random.Generator) -> tuple:
        """(candidates, kept): the kept ones of ``size`` proposals, from latents drawn
        independently in the range.

        When each output's probability is exp(its own score) (the acceptance part says so), a
        proposal is one candidate, uniform over every window's, kept with probability
        exp(score - score_bound): the same distribution as ``draw_candidates``, for one score per
        proposal instead of a window's. Otherwise a proposal is a latent, as in ``draw_candidates``.
        """
        if not (self.sampled and self.head.acceptance.per_candidate):
            return self.draw_candidates(iid_latents(self.low, self.high, size, rng), rng)
        bound = self.score_bound
        if self.folded is not None and self.high - self.low >= SMALL_SPAN:
            return self._stream_by_residues(size, rng, bound)
        z = iid_latents(self.low, self.high, size, rng)
        k = rng.integers(0, self.head.offsets, size)
        kept = rng.random(size) < np.exp(np.minimum(self._scores(z, k) - bound, 0.0))
        return self.head.candidates(z[kept], k[kept]), kept[kept]

    def _stream_by_residues(self, size: int, rng: np.random.Generator, bound: float) -> tuple:
        """``stream`` on a range too wide for int64: a latent is low + q*M + r, with M the product
        of the folded tables' moduli, r uniform in [0, M) and q uniform in [0, Q] (Q*M + M > the
        span); one outside the range is dropped, which leaves the kept ones uniform in it. Only r
        decides the score, so q, a big integer, is drawn for the kept proposals alone."""
        moduli = self.folded.moduli
        modulus, span = math.prod(moduli), self.high - self.low + 1
        r = rng.integers(0, modulus, size) if modulus < 2**63 else utils.random_big_integers(0, modulus - 1, size, rng)
        k = rng.integers(0, self.head.offsets, size)
        base = self.folded.latent_residues(np.array([self.low], dtype=object))
        residues = (base + self.folded.latent_residues(r)) % np.array(moduli)[:, None]
        kept = rng.random(size) < np.exp(np.minimum(self.folded(residues, k) - bound, 0.0))
        q = utils.random_big_integers(0, (span - 1) // modulus, int(kept.sum()), rng)
        offset = q * modulus + r[kept].astype(object)
        inside = np.fromiter((int(v) < span for v in offset), bool, len(offset))
        z = self.low + offset[inside]
        return self.head.candidates(z, k[kept][inside]), np.ones(int(inside.sum()), bool)

    def largest_encoded_prime(self):
        ceiling = self.head.input.encoding.ceiling(self.head.architecture)
        return None if ceiling is None else ceiling[1]
