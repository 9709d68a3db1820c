"""The length curve: how well a scorer's ranking of odd numbers carries to numbers of any length.

At each length L (binary digits) `curve` draws uniform odd integers with exactly L digits, scores
them, and reports the enrichment: the prime share among the top TOP_SHARE by score over the prime
share among all drawn. Chance is 1; a scorer that exactly avoids the multiples of 3, 5 and 7
reaches prod p/(p-1) over them, 2.1875, at every length.

Up to DIRECT_LIMIT digits the primes are counted with the oracle. Beyond, primes grow too rare
for a sample to hold many, and the count is the rough-number estimate: the same ratio for the
numbers with no prime factor below ROUGH_BOUND, about 12% of odd numbers at any length. It
assumes the scorer reads only residues modulo primes below ROUGH_BOUND: such a scorer cannot tell
a prime from another rough number, so P(prime | rough, top) = P(prime | rough), and then the two
ratios are equal. A scorer that knows more (one that tests primality) breaks it, and the estimate
falls far below the truth. Where both exist (every length <= DIRECT_LIMIT) `curve` reports both,
and `validation` lists them side by side.
"""
import functools
import math

import gmpy2
import numpy as np

import utils
from training import oracle, primes

LENGTHS = (24, 28, 32, 64, 128, 256, 1024, 4096)  # binary digits: 24 is the training range's
                                                  # typical length (candidates below 2**25),
                                                  # 28 today's held-out range
SAMPLES = 20_000      # numbers drawn per length: a cheap scorer's whole curve takes ~3 s of CPU
TOP_SHARE = 0.3       # the share of the sample, best scores first, whose prime share is compared
DIRECT_LIMIT = 256    # binary digits: up to here the primes are counted with oracle.is_prime
ROUGH_BOUND = 10**4   # the estimator's trial-division bound: rough = no prime factor below it
SEED = 0              # curve's default seed: each length draws from default_rng([seed, L])
TIE_SEED = 1          # the fixed generator whose keys break ties among equal scores
GROUPS = 10           # delete-a-group jackknife groups behind each row's sd
CACHED_SAMPLES = 16   # (length, samples, seed) draws kept with their primes and rough masks


@functools.cache
def _rough_product() -> gmpy2.mpz:
    """The product of the odd primes below ROUGH_BOUND (14,276 bits for 10**4)."""
    return gmpy2.mpz(math.prod(oracle.odd_primes(ROUGH_BOUND - 1)))


def random_odd(bits: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """`size` uniform odd integers of exactly `bits` binary digits (top bit set; bits >= 1).

    uint64 when bits <= 64, else an object array of Python ints. The bits - 2 between the top and
    the bottom one are uniform random bits, so the draw is exact and uniform.
    """
    assert bits >= 1, bits
    middle = max(bits - 2, 0)
    top = 1 << (bits - 1)
    if bits <= 64:
        inner = rng.integers(0, 1 << middle, size=size, dtype=np.uint64, endpoint=False)
        return (inner << np.uint64(1)) | np.uint64(top | 1)
    nbytes = (middle + 7) // 8
    block = rng.bytes(nbytes * size)
    mask = (1 << middle) - 1
    values = [top | ((int.from_bytes(block[i:i + nbytes], "little") & mask) << 1) | 1
              for i in range(0, len(block), nbytes)]
    return np.array(values, dtype=object)


def enrichment(scores, hits) -> float:
    """The share of hits among the top TOP_SHARE of `scores` over the share among all; NaN when no
    hit (or nothing) is there.

    The top holds round(TOP_SHARE * n) numbers (at least 1), highest scores first. Ties are broken
    at random, by keys from a fixed generator (TIE_SEED): a constant scorer takes a random subset
    and comes out near 1, not at an artefact of the sample's order. NaN scores rank last.
    """
    scores = np.asarray(scores, dtype=float)
    return _enrichment(scores, np.asarray(hits, dtype=bool), _tie_keys(scores.size))


def _tie_keys(n: int) -> np.ndarray:
    return np.random.default_rng(TIE_SEED).random(n)


def _enrichment(scores: np.ndarray, hits: np.ndarray, keys: np.ndarray) -> float:
    """`enrichment`, ties broken by `keys` (highest first)."""
    if scores.size == 0 or not hits.any():
        return math.nan
    order = np.lexsort((-keys, -scores))  # the last key sorts first
    top = order[:max(1, round(TOP_SHARE * scores.size))]
    return float(hits[top].mean() / hits.mean())


def _jackknife(scores: np.ndarray, hits: np.ndarray) -> float:
    """Delete-a-group jackknife standard error of `enrichment`, over GROUPS contiguous groups
    (the draws are i.i.d., so contiguous groups are random ones).

    Each number keeps its tie-break key in every replicate: fresh keys would add noise that the
    jackknife multiplies by GROUPS - 1. Groups of n / GROUPS numbers, many more than sqrt(n), keep
    it consistent for a statistic cut at a quantile as this one (Shao and Wu 1989).
    """
    keys = _tie_keys(scores.size)
    keep = np.ones(scores.size, dtype=bool)
    estimates = []
    for group in np.array_split(np.arange(scores.size), GROUPS):
        keep[group] = False
        estimates.append(_enrichment(scores[keep], hits[keep], keys[keep]))
        keep[group] = True
    estimates = np.array(estimates)
    return float(math.sqrt((GROUPS - 1) / GROUPS * np.sum((estimates - estimates.mean()) ** 2)))


def rough(numbers) -> np.ndarray:
    """Mask of the positive integers (uint64, int64 or Python ints) with no prime factor below
    ROUGH_BOUND: odd, and gcd with the product of the odd primes below it is 1. The primes below
    ROUGH_BOUND themselves count as rough, 2 included; other even numbers never do."""
    values = np.asarray(numbers)
    flat = values.ravel().tolist()
    product = _rough_product()
    result = np.fromiter(((v % 2 == 1 and gmpy2.gcd(v, product) == 1)
                          or (v < ROUGH_BOUND and oracle.is_prime(v)) for v in flat), bool, len(flat))
    return result.reshape(values.shape)


@functools.lru_cache(maxsize=CACHED_SAMPLES)
def _sample(digits: int, samples: int, seed: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """One length's draw, its primes (None above DIRECT_LIMIT) and its rough mask, read-only:
    drawn and counted once, whatever the number of scorers."""
    numbers = random_odd(digits, samples, np.random.default_rng([seed, digits]))
    primes = oracle.is_prime(numbers) if digits <= DIRECT_LIMIT else None
    masks = (numbers, primes, rough(numbers))
    for array in masks:
        if array is not None:
            array.flags.writeable = False
    return masks


def _row(digits: int, scores: np.ndarray | None, primes, rough_mask: np.ndarray) -> dict:
    """One length's row of `curve` (NaN figures and method "n/a" where scores is None)."""
    row = {"digits": digits, "method": "n/a", "samples": rough_mask.size, "hits": 0,
           "rough": int(rough_mask.sum()), "enrichment": math.nan, "sd": math.nan,
           "enrichment_rough": math.nan, "sd_rough": math.nan}
    if scores is None:
        return row
    row["enrichment_rough"] = enrichment(scores, rough_mask)
    row["sd_rough"] = _jackknife(scores, rough_mask)
    if primes is None:
        row.update(method="rough", hits=row["rough"], enrichment=row["enrichment_rough"],
                   sd=row["sd_rough"])
    else:
        row.update(method="direct", hits=int(primes.sum()), enrichment=enrichment(scores, primes),
                   sd=_jackknife(scores, primes))
    return row


def curve(score, lengths=LENGTHS, samples=SAMPLES, seed=SEED) -> list[dict]:
    """The enrichment of `score` at each length: one dict per length, in order.

    score: numbers -> float scores of the same length, or None where it cannot read numbers of
    that length. It gets uint64 arrays up to 64 digits (values up to 2**64 - 1, beyond int64),
    object arrays of Python ints above. Each length's sample is fixed by (seed, length).
    Keys: digits; method ("direct": primes counted, L <= DIRECT_LIMIT; "rough": the rough-number
    estimate; "n/a": no scores); samples; hits (the primes, or the rough numbers, counted); rough
    (the rough numbers); enrichment and sd (its jackknife standard error); enrichment_rough and
    sd_rough (the rough-number estimate, at every length: equal to enrichment where it is the method).
    """
    rows = []
    for digits in lengths:
        numbers, primes, rough_mask = _sample(int(digits), int(samples), int(seed))
        scores = score(numbers)
        if scores is not None:
            scores = np.asarray(scores, dtype=float)
            assert scores.shape == numbers.shape, "a scorer gives one score per number"
        rows.append(_row(int(digits), scores, primes, rough_mask))
    return rows


def validation(rows: list[dict]) -> list[tuple[int, float, float]]:
    """(digits, direct, rough) enrichment at each length of a curve where both exist."""
    return [(row["digits"], row["enrichment"], row["enrichment_rough"])
            for row in rows if row["method"] == "direct"]


def uniform_scorer(seed: int):
    """The uniform sampler's scorer: i.i.d. uniform scores from default_rng(seed), ignoring the
    numbers; enrichment ~1 at every length. It draws on at each call: a fresh one repeats a curve."""
    rng = np.random.default_rng(seed)
    return lambda numbers: rng.random(len(numbers))


def avoid_scorer(primes=(3, 5, 7)):
    """The scorer -(how many of `primes` divide n): enrichment prod p/(p-1) over them at every
    length (2.1875 for 3, 5 and 7), as long as the numbers avoiding all of them fill the top."""
    def score(numbers):
        values = np.asarray(numbers)
        scores = np.zeros(values.shape)
        for p in primes:
            scores -= utils.residues(values, p) == 0
        return scores
    return score


def format_curve(rows_by_name: dict[str, list[dict]]) -> str:
    """A plain-text table of curves: one row per scorer, one column per length (binary digits),
    cells the enrichment to two decimals or "n/a", and a note on how each length was counted."""
    lengths = sorted({row["digits"] for rows in rows_by_name.values() for row in rows})
    width = max([len("digits"), *map(len, rows_by_name)])
    cell = max(7, *(len(str(d)) + 1 for d in lengths))
    lines = ["digits".ljust(width) + "".join(str(d).rjust(cell) for d in lengths)]
    for name, rows in rows_by_name.items():
        by_length = {row["digits"]: row for row in rows}
        cells = []
        for digits in lengths:
            row = by_length.get(digits)
            value = math.nan if row is None or row["method"] == "n/a" else row["enrichment"]
            cells.append(("n/a" if math.isnan(value) else f"{value:.2f}").rjust(cell))
        lines.append(name.ljust(width) + "".join(cells))
    lines.append(
        f"Enrichment: the prime share among the top {TOP_SHARE:.0%} by score over the share among "
        f"all drawn (chance 1). Up to {DIRECT_LIMIT} digits primes are counted directly; beyond, "
        f"the rough-number estimate: among numbers with no prime factor below {ROUGH_BOUND:,}, a "
        f"scorer that reads only small residues cannot rank primes above other rough numbers, so "
        f"the rough numbers' share in its top {TOP_SHARE:.0%} over their share among all estimates "
        f"the prime enrichment (validated against the direct counts at every length where both exist).")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# A checkpoint's curves


FOLD_MODULUS = 2**24 - 1        # the fold reference: n mod this, its 24-digit chunks summed with carry


def discriminator_scorer(discriminator):
    """D's belief that each number is prime, or None where its input cannot read that length."""
    return lambda numbers: discriminator.beliefs_of_candidates(numbers)


def generator_scorer(generator):
    """The generator's log weight of each odd number as a candidate (its window's policy and
    acceptance), or None where it cannot read that length or has no windows."""
    if not hasattr(generator, "logits"):
        return lambda numbers: None

    def score(numbers):
        h = [(int(v) - 1) // 2 for v in numbers]
        z = utils.integers([v // generator.offsets for v in h])
        k = np.array([v % generator.offsets for v in h])
        try:
            if generator.acceptance.per_candidate:  # its log weight is its own score, up to a constant
                return generator.candidate_scores(z, k)
            return primes.log_weights(generator, z)[np.arange(len(h)), k]
        except utils.OptimusError:
            return None
    return score


def fold_scorer(discriminator):
    """The reference fold: D's belief of m = n mod FOLD_MODULUS, made odd by adding the modulus
    once (which keeps every residue mod FOLD_MODULUS). A residue of the number, not a digit reader."""
    def score(numbers):
        m = np.array([int(v) % FOLD_MODULUS for v in numbers], dtype=np.int64)
        return discriminator.beliefs_of_candidates(np.where(m % 2 == 1, m, m + FOLD_MODULUS))
    return score


FOLD = "fold (reference: a residue)"
CALIBRATION = ("uniform sampler (calibration)", "avoid 3, 5, 7 exactly (calibration)")


def checkpoint_curves(generator, discriminator, samples: int = SAMPLES, seed: int = SEED,
                      calibration: bool = True) -> dict:
    """{name: curve} of a checkpoint's discriminator and generator, the fold reference when the
    discriminator reads binary digits, and the calibration rows (a uniform sampler, the exact
    avoid-3-5-7 filter) unless ``calibration`` is False."""
    scorers = {"discriminator": discriminator_scorer(discriminator), "generator": generator_scorer(generator)}
    if discriminator.architecture.get("discriminator_input") == "bits":
        scorers[FOLD] = fold_scorer(discriminator)
    if calibration:
        scorers.update(zip(CALIBRATION, (uniform_scorer(seed), avoid_scorer())))
    return {name: curve(score, samples=samples, seed=seed) for name, score in scorers.items()}
