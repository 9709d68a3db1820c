"""Test a generator: how many distinct primes it makes, against chance at the same magnitudes.

Draws distinct latent integers z in two ranges, the training range and the range beyond it that
training never saw, maps them to odd candidates 2*round(G(z))+1 and counts the primes exactly.
Random odd integers are prime at a rate that falls with their size (about 2/ln n), so each
candidate is compared with chance at its own magnitude: the exact prime share of the odd
integers in a narrow window around it (``utils.local_density``).

The headline ``score`` counts each prime once: distinct primes / the primes chance expects from
as many odd integers at the same magnitudes. A uniform odd sampler scores 1, the progression
210z+1 about 2.19 (Dirichlet: 210 / (2 * phi(210))), a generator collapsed onto a few primes
about 0. The p-value is a one-sided binomial test of the same count of distinct primes.

Usage, from any directory:
    python test.py [--checkpoint_dir=DIR] [--n_samples=N] [--low_latent=A --high_latent=B]
                   [--beyond_latent=C] [--seed=S] [--verbose=0..3] [--json]
                   [--candidates=FILE] [--calibration]

The training range defaults to the checkpoint's own (from its state.json), the range beyond to
(B, min(10 B, 2**24)]. Without --json, stdout is the readable report; with --json, one line: the
report as a JSON object {"in_range": ..., "beyond": ...}. --candidates=FILE writes every sampled
latent as CSV (latent,candidate,is_prime; FILE "-" is stdout, and the report then goes to
stderr). --calibration reports known generators instead of a checkpoint. An error the user can
cause prints one line ``error: ...`` to stderr and exits with status 2.
"""
import io
import json
import math
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))  # the imports below work from any directory

import numpy as np  # noqa: E402
from scipy import optimize, stats  # noqa: E402

import utils  # noqa: E402


# Defaults
N_SAMPLES = 10_000              # latent integers drawn in each range
TRAINING_RANGE = (1, 10**6)     # train.py's default latents; a checkpoint's own range replaces it
BEYOND_FACTOR = 10              # the held-out range runs from the training range's end to 10x it
SEED = 0                        # seed of the latent draws
VERBOSE = 0                     # 0 headline, 1 + confusion table, 2 + magnitude bins, 3 + samples
CALIBRATION_RANGE = (1, 10**5)  # latents of --calibration: 2310z+1 stays below 2.4e8

PRIME_THRESHOLD = 0.5           # the discriminator says "prime" when P(prime) is above this
UNIFORM_DRAWS = 10              # uniform outputs drawn per sample, to find enough primes for a balanced set
SMALL_PRIMES = (3, 5, 7)        # the report gives the share of outputs divisible by each
SAMPLING = "sampled"            # how the generator is used: "sampled" offsets, or "greedy" (the
                                # likeliest): a random prime generator must be random
RESIDUE_PRIMES_AT_LEAST = 31    # residue_tv looks at the odd primes up to this, or up to the
                                # generator's largest encoded prime if larger
COVERAGE_SHARE = 0.5            # coverage: the primes the generator gives at least this times uniform's
PROBE_PRIMES = (3, 5, 7)        # the probe reads "n is a multiple of p" off D's last hidden layer...
PROBE_SAMPLES = 2000            # ... from this many multiples and as many others, fit and held out
PROBE_L2 = 1e-3                 # ridge of the probe's logistic regression
JACKKNIFE_GROUPS = 10           # sampled windows: sd of each measure by delete-a-group jackknife
SHOWN_SAMPLES = 10              # numbers listed at verbose 3
DEFAULT_CHECKPOINT_DIR = REPO_ROOT / "training"
CSV_HEADER = "latent,candidate,is_prime"
MIN_BITS, MAX_BITS = 8, utils.MAX_PRIME_BITS  # --bits: the sizes a user may ask for
DISTRIBUTION_WINDOWS = 2000     # sampled windows behind the distribution estimate of --primes

USAGE = ("usage: python test.py [--name=value ...]   (report on a checkpoint, --calibration, or "
         "--primes=N with --bits=B or --range=A:B)")
FLAGS = {  # name: (default, meaning)
    "checkpoint_dir": (str(DEFAULT_CHECKPOINT_DIR), "the checkpoint to test (default: the shipped pair)"),
    "n_samples": (N_SAMPLES, "latents drawn in each range"),
    "low_latent": (0, "first latent of the training range (0: the checkpoint's own)"),
    "high_latent": (0, "last latent of the training range (0: the checkpoint's own)"),
    "beyond_latent": (0, f"last latent of the range beyond it (0: {BEYOND_FACTOR} times its end, "
                         "at most 2**24)"),
    "seed": (SEED, "seeds the latents and the sampled offsets: the same seed, the same report"),
    "verbose": (VERBOSE, "0 headline, 1 adds the confusion tables, 2 the magnitude bins, 3 samples"),
    "sampling": (SAMPLING, '"sampled" offsets (a random prime generator) or "greedy" (the likeliest)'),
    "json": (False, "print the report as one JSON object"),
    "candidates": ("", "write every kept latent as CSV latent,candidate,is_prime to this file "
                       '("-": stdout, the report then on stderr)'),
    "calibration": (False, "report generators whose scores and distributions are known instead"),
    "primes": (0, "print this many random primes, one per line (with --bits or --range)"),
    "bits": (0, f"--primes of this many binary digits, {MIN_BITS} to {MAX_BITS}"),
    "range": ("", "--primes in [A, B], given as A:B"),
    "distribution": (False, f"--primes also estimates their distribution from {DISTRIBUTION_WINDOWS} "
                            "sampled windows, on stderr (minutes at 4096 bits)"),
}
DEFAULTS = {name: default for name, (default, _) in FLAGS.items()}
MEANINGS = {name: meaning for name, (_, meaning) in FLAGS.items()}

if __name__ == "__main__":  # --help answers at once; then start TensorFlow quietly
    if utils.wants_help(sys.argv[1:]):
        sys.exit(utils.print_help(USAGE, DEFAULTS, MEANINGS))
    utils.quiet_startup()
from training import checkpoint, model, registry  # noqa: E402
from training import sampling as sampling_lib  # noqa: E402

MAX_LATENT = 2**utils.MAX_PRIME_BITS // 64  # the largest latent any range may hold: its candidates
                                # stay below the oracle's 2**MAX_PRIME_BITS (a head may allow fewer)
RULES = {
    "n_samples": utils.at_least(1),
    "low_latent": utils.between(0, MAX_LATENT, "an integer"),
    "high_latent": utils.between(0, MAX_LATENT, "an integer"),
    "beyond_latent": utils.between(0, MAX_LATENT, "an integer"),
    "seed": utils.at_least(0),
    "verbose": utils.one_of(0, 1, 2, 3),
    "sampling": utils.one_of(*sampling_lib.SAMPLINGS),
    "primes": utils.at_least(0),
    "bits": utils.between(0, utils.MAX_PRIME_BITS, "an integer"),
}


# ---------------------------------------------------------------------------------------------
# Measuring


def draw_latents(n_samples: int, low_latent: int, high_latent: int,
                 rng: np.random.Generator) -> np.ndarray:
    """``n_samples`` latents in [low_latent, high_latent], checked: distinct int64 (n,) below
    2**63, Python ints above (``utils.random_integers``)."""
    n_samples = utils.check("n_samples", n_samples, N_SAMPLES, RULES["n_samples"])
    low_latent = utils.check("low_latent", low_latent, 0, utils.between(1, MAX_LATENT, "an integer"))
    high_latent = utils.check("high_latent", high_latent, 0, RULES["high_latent"])
    if low_latent > high_latent:
        raise utils.OptimusError(f"low_latent={low_latent} must be <= high_latent={high_latent}")
    span = high_latent - low_latent + 1
    if n_samples > span:
        raise utils.OptimusError(
            f"n_samples={n_samples} is more than the {span} latents of [{low_latent}, {high_latent}]: "
            "lower n_samples or widen the range")
    return utils.random_integers(low_latent, high_latent, n_samples, rng)


def _magnitude_bins(candidates: np.ndarray, primes: np.ndarray, chance: np.ndarray) -> list:
    """Per power-of-two bin [2^k, 2^(k+1)) that holds candidates: its share, prime rate and chance."""
    bins = []
    exponent = utils.bit_lengths(candidates) - 1
    for k in np.unique(exponent):
        inside = exponent == k
        bins.append({"lo": int(2**int(k)), "hi": int(2 ** (int(k) + 1) - 1), "share": float(inside.mean()),
                     "prime_ratio": float(primes[inside].mean()),
                     "chance": float(chance[inside].mean())})
    return bins


def _log_loss(p: np.ndarray, primes: np.ndarray) -> float:
    p = np.clip(p.astype(np.float64), utils.LOG_EPSILON, 1 - utils.LOG_EPSILON)
    return float(-np.mean(np.where(primes, np.log(p), np.log(1 - p))))


def _judge(discriminator, candidates: np.ndarray, primes: np.ndarray) -> dict | None:
    """The discriminator's verdicts on candidates (n,): confusion cells, balanced accuracy, log-loss,
    and the log-loss of the best constant (the prime share) for comparison. None when it cannot
    read numbers of that size."""
    p = discriminator.beliefs_of_candidates(candidates)
    if p is None:
        return None
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    if p.shape != primes.shape:
        raise ValueError(f"discriminator returned {p.size} values for {primes.size} inputs")
    said_prime = p > PRIME_THRESHOLD
    cells = {"true_positives": int(np.sum(said_prime & primes)),
             "false_positives": int(np.sum(said_prime & ~primes)),
             "true_negatives": int(np.sum(~said_prime & ~primes)),
             "false_negatives": int(np.sum(~said_prime & primes))}
    return {"confusion": cells, "balanced_accuracy": _balanced_accuracy(cells),
            "log_loss": _log_loss(p, primes),
            "constant_log_loss": _log_loss(np.full(p.shape, primes.mean()), primes)}


def _uniform_candidates(candidates: np.ndarray, rng: np.random.Generator, count: int | None = None) -> np.ndarray:
    """``count`` (default UNIFORM_DRAWS * n) odd integers uniform between the smallest and largest
    of ``candidates``."""
    low, high = int(candidates.min()), int(candidates.max())
    count = UNIFORM_DRAWS * candidates.size if count is None else count
    if high < model.FLOAT64_EXACT:  # outputs x = (c - 1) / 2 drawn as reals and rounded
        x = rng.uniform((low - 1) // 2, (high - 1) // 2, count).round()
        return utils.to_odd_integer(x)
    halves = utils.random_integers((low - 1) // 2, (high - 1) // 2, count, rng)
    return 2 * halves + 1


def divisibility_probe(discriminator, candidates: np.ndarray, p: int) -> float | None:
    """How well "n is a multiple of p" can be read off D's last hidden layer by a linear probe.

    A logistic regression (ridge PROBE_L2) fit on PROBE_SAMPLES multiples of p and as many other
    odd candidates, drawn uniformly at the magnitudes of ``candidates``; returns its balanced
    accuracy on as many held out (0.5: nothing to read). D never saw these labels; None for a
    discriminator without a representation or beyond 2**53.
    """
    if int(candidates.max()) >= model.FLOAT64_EXACT:
        return None
    pool = _uniform_candidates(candidates, np.random.default_rng(p), 8 * PROBE_SAMPLES * p)
    multiple = utils.residues(pool.astype(np.int64), p) == 0
    chosen = [np.flatnonzero(multiple)[:2 * PROBE_SAMPLES], np.flatnonzero(~multiple)[:2 * PROBE_SAMPLES]]
    if min(len(c) for c in chosen) < 2 * PROBE_SAMPLES:
        return None
    features = discriminator.representation_of(pool[np.concatenate(chosen)])
    if features is None:
        return None
    features = np.asarray(features, dtype=np.float64)
    features = (features - features.mean(0)) / (features.std(0) + 1e-9)
    features = np.hstack([features, np.ones((len(features), 1))])
    y = np.r_[np.ones(2 * PROBE_SAMPLES), np.zeros(2 * PROBE_SAMPLES)]
    fit = np.r_[np.arange(PROBE_SAMPLES), 2 * PROBE_SAMPLES + np.arange(PROBE_SAMPLES)]
    held = np.setdiff1d(np.arange(len(y)), fit)

    def loss(w):
        margin = features[fit] @ w
        return (np.mean(np.logaddexp(0, margin) - y[fit] * margin) + PROBE_L2 * w @ w,
                features[fit].T @ (1 / (1 + np.exp(-margin)) - y[fit]) / len(fit) + 2 * PROBE_L2 * w)
    w = optimize.minimize(loss, np.zeros(features.shape[1]), jac=True, method="L-BFGS-B").x
    said = features[held] @ w > 0
    return float(0.5 * (said[y[held] == 1].mean() + (~said[y[held] == 0]).mean()))


def _judge_uniform(discriminator, candidates: np.ndarray) -> dict | None:
    """``_judge`` on uniform random odd candidates between the smallest and largest of
    ``candidates``, half of them prime.

    The discriminator learned from batches undersampled to half primes, so its probabilities
    answer that balance: here a constant 0.5 has log-loss ln 2. Seeded by the number of candidates.
    None when no such set can be drawn: one candidate, or no prime or no composite among the
    uniform ones (one latent's range, say); there is then nothing to judge.
    """
    uniform = _uniform_candidates(candidates, np.random.default_rng(candidates.size))
    primes = utils.is_prime(uniform)
    half = min(primes.sum(), (~primes).sum(), candidates.size // 2)
    if half == 0:
        return None
    chosen = np.concatenate([np.flatnonzero(primes)[:half], np.flatnonzero(~primes)[:half]])
    result = _judge(discriminator, uniform[chosen], primes[chosen])
    if result is None:
        return None
    return {**{k: v for k, v in result.items() if k != "confusion"},
            "multiple_probe": {str(p): divisibility_probe(discriminator, candidates, p) for p in PROBE_PRIMES}}


def _balanced_accuracy(cells: dict) -> float | None:
    """Mean of the recalls on primes and on non-primes that are defined; None if neither is."""
    recalls = [hit / (hit + miss) for hit, miss in
               ((cells["true_positives"], cells["false_negatives"]),
                (cells["true_negatives"], cells["false_positives"])) if hit + miss]
    return float(np.mean(recalls)) if recalls else None


def _first_distinct(values: np.ndarray, count: int) -> list:
    """The first ``count`` distinct entries of ``values``, in order, as Python ints."""
    _, first = np.unique(values, return_index=True)
    return [int(v) for v in values[np.sort(first)][:count]]


def measure(z: np.ndarray, candidates: np.ndarray, discriminator=None, verbose: int = VERBOSE) -> dict:
    """The report on the candidates (odd integers, exact) of latents z: primes against chance,
    and D's verdicts.

    Returns a JSON-serialisable dict: n_samples; primes and prime_ratio (all outputs); distinct_outputs,
    distinct_fraction and distinct_primes; chance (the mean local density: chance's prime rate at
    these magnitudes) and expected_primes (its sum); score = distinct_primes / expected_primes
    and score_sd (chance's spread); p_value (one-sided binomial test of distinct_primes);
    multiples (share of outputs divisible by 3, 5, 7); without a discriminator (or one that cannot
    read numbers this large) None, else its confusion, balanced_accuracy and log-loss on the
    outputs, and discriminator_on_uniform: its balanced accuracy and log-loss (and the best
    constant's) on uniform odd candidates at the same magnitudes, half of them prime; the
    candidates' range; bins; and at verbose 3, samples.
    """
    primes = utils.is_prime(candidates)
    chance = utils.local_density(candidates)
    distinct, first = np.unique(candidates, return_index=True)
    distinct_primes = int(primes[first].sum())
    n = candidates.size
    expected = float(chance.sum())
    judged = None if discriminator is None else _judge(discriminator, candidates, primes)
    report = {
        "n_samples": int(n), "primes": int(primes.sum()), "prime_ratio": float(primes.mean()),
        "distinct_outputs": int(distinct.size), "distinct_fraction": distinct.size / n,
        "distinct_primes": distinct_primes,
        "chance": expected / n, "expected_primes": expected,
        "score": distinct_primes / expected,
        "score_sd": math.sqrt(float(np.sum(chance * (1 - chance)))) / expected,
        # distinct primes against Binomial(n, chance): a repeated prime counts once, as in the score
        "p_value": float(stats.binomtest(distinct_primes, n, min(expected / n, 1.0),
                                         alternative="greater").pvalue),
        "multiples": {str(p): float(np.mean(utils.residues(candidates, p) == 0)) for p in SMALL_PRIMES},
        "confusion": None if judged is None else judged["confusion"],
        "balanced_accuracy": None if judged is None else judged["balanced_accuracy"],
        "discriminator_log_loss": None if judged is None else judged["log_loss"],
        # the same discriminator on uniform odd candidates at the outputs' magnitudes, where
        # residues tell primes apart (the outputs themselves may all avoid small factors)
        "discriminator_on_uniform": None if judged is None else _judge_uniform(discriminator, candidates),
        "min_candidate": int(distinct[0]), "max_candidate": int(distinct[-1]),
        "bins": _magnitude_bins(candidates, primes, chance),
    }
    if verbose >= 3:
        report["samples"] = {"latents": [int(v) for v in z[:SHOWN_SAMPLES]],
                             "candidates": [int(v) for v in candidates[:SHOWN_SAMPLES]],
                             "primes": _first_distinct(candidates[primes], SHOWN_SAMPLES)}
    return report


# ---------------------------------------------------------------------------------------------
# The distribution of the generated primes


def prime_measures(values: np.ndarray, weights: np.ndarray, reference: int, primes: tuple) -> dict:
    """How far a distribution over primes is from uniform over a reference set of ``reference`` primes.

    values: distinct primes of the reference (uint64 (m,), m <= reference); weights: their
    probabilities up to a constant (m,) >= 0; the reference primes not in ``values`` have none.
    Returns tv (total variation), entropy_deficit_bits (log2 reference minus the Shannon entropy:
    the KL divergence from uniform), min_entropy_deficit_bits, coverage (share of the reference
    given at least COVERAGE_SHARE times uniform's probability), and residue_tv: the largest
    over ``primes`` of the TV between the residues mod p and uniform over p's nonzero classes,
    with residue_prime, the p where it is largest. None for all when no weight is on a prime.
    """
    total = float(np.sum(weights))
    if total <= 0 or reference == 0:
        return {k: None for k in ("tv", "entropy_deficit_bits", "min_entropy_deficit_bits",
                                  "coverage", "residue_tv", "residue_prime")}
    q, u = np.asarray(weights, dtype=np.float64) / total, 1.0 / reference
    positive = q > 0
    residues = [_residue_tv(values, q, p) for p in primes]
    worst = int(np.argmax(residues))
    return {"tv": float(0.5 * (np.abs(q - u).sum() + (reference - q.size) * u)),
            # both >= 0; max() only drops a rounding error's sign
            "entropy_deficit_bits": max(0.0, float(np.sum(q[positive] * np.log2(q[positive] * reference)))),
            "min_entropy_deficit_bits": max(0.0, float(np.log2(q.max() * reference))),
            "coverage": float(np.count_nonzero(q >= COVERAGE_SHARE * u) / reference),
            "residue_tv": float(residues[worst]), "residue_prime": int(primes[worst])}


def _residue_tv(values: np.ndarray, q: np.ndarray, p: int) -> float:
    """TV between the residues mod p of primes ``values`` (probabilities q) and uniform over 1..p-1."""
    shares = np.bincount((np.asarray(values) % np.uint64(p)).astype(np.int64), weights=q, minlength=p)
    target = np.full(p, 1.0 / (p - 1))
    target[0] = 0.0
    return float(0.5 * np.abs(shares - target).sum())


def window_distribution(windows, primes: tuple, exact: bool, excluded=None, labels=None) -> dict:
    """``prime_measures`` of a sampler's windows against uniform over every prime in them.

    windows: ``sampling_lib.Windows`` of distinct latents (their windows are disjoint); excluded:
    a mask of candidates to leave out of the reference (and so of the measure). exact: the
    windows are every latent of the range; otherwise they are a uniform sample, and each measure
    gets an sd (``*_sd``) by a delete-a-group jackknife over JACKKNIFE_GROUPS groups of windows.
    residue_tv_floor is the residue_tv of uniform over the same primes: an exactly uniform
    sampler measured on these windows (its noise floor when they are a sample). labels: which
    candidates are prime, when already known (by default the oracle tests them here).
    """
    labels = utils.is_prime(windows.candidates) if labels is None else labels.copy()
    if excluded is not None:  # candidates outside a requested range: not in the reference
        labels &= ~excluded
    rows, cols = np.nonzero(labels)
    values, weights = windows.candidates[rows, cols], windows.weights[rows, cols]
    result = {**prime_measures(values, weights, values.size, primes),
              "residue_tv_floor": prime_measures(values, np.ones(values.size), values.size,
                                                 primes)["residue_tv"],
              "reference_primes": int(values.size), "windows": int(len(windows.candidates)),
              "exact": bool(exact)}
    if not exact and result["tv"] is not None:
        groups = rows % JACKKNIFE_GROUPS
        parts = [prime_measures(values[groups != g], weights[groups != g],
                                int(np.count_nonzero(groups != g)), primes)
                 for g in range(JACKKNIFE_GROUPS)]
        for key in ("tv", "entropy_deficit_bits", "min_entropy_deficit_bits", "coverage", "residue_tv"):
            estimates = np.array([part[key] for part in parts], dtype=np.float64)
            result[f"{key}_sd"] = float(np.sqrt((JACKKNIFE_GROUPS - 1) / JACKKNIFE_GROUPS
                                                * np.sum((estimates - estimates.mean()) ** 2)))
    return result


def point_mass_distribution(candidates: np.ndarray, primes: tuple) -> dict:
    """``prime_measures`` of a generator whose output is fixed by its latent, over every latent of
    a range: its candidates (n,) against uniform over every prime between the smallest and the
    largest (a map of latents to candidates leaves the others of that span unreachable)."""
    lo, hi = int(candidates.min()), int(candidates.max())
    values, counts = np.unique(candidates[utils.is_prime(candidates)], return_counts=True)
    reference = utils.prime_count(hi) - utils.prime_count(lo - 1) - (lo <= 2 <= hi)
    floor = None
    if hi < utils.ODD_SIEVE_LIMIT:
        everything = utils.odd_primes_between(lo, hi)
        floor = prime_measures(everything, np.ones(everything.size), everything.size, primes)["residue_tv"]
    return {**prime_measures(values, counts.astype(np.float64), reference, primes),
            "residue_tv_floor": floor, "reference_primes": int(reference),
            "windows": int(candidates.size), "exact": True}


def distribution(sampler, z: np.ndarray, candidates: np.ndarray, exact: bool, primes: tuple) -> dict | None:
    """The distribution measures of ``sampler`` on latents z (its candidates for them): from its
    windows, or as point masses when it has none (then only over every latent of a range: None
    otherwise)."""
    windows = sampler.windows(z)
    if windows is not None:
        return window_distribution(windows, primes, exact)
    return point_mass_distribution(candidates, primes) if exact else None


def residue_primes(sampler) -> tuple:
    """The odd primes that residue_tv looks at: up to RESIDUE_PRIMES_AT_LEAST, or further when the
    generator encodes more."""
    return utils.odd_primes(max(RESIDUE_PRIMES_AT_LEAST, sampler.largest_encoded_prime() or 0))


def test_models(generator, discriminator=None, n_samples: int = N_SAMPLES,
                low_latent: int = TRAINING_RANGE[0], high_latent: int = TRAINING_RANGE[1],
                seed=None, verbose: int = VERBOSE, samples: list | None = None,
                sampling: str = SAMPLING) -> dict:
    """The report on ``n_samples`` latents drawn in [low_latent, high_latent], used as ``sampling``.

    generator: a generator part (``registry.load_network``) or a stand-in with the same
    ``sampler(sampling, low, high)``. The latents' outputs (those its sampler keeps) are
    measured (``measure``), and its distribution over primes from its windows (``distribution``:
    exact when the latents are the whole range). samples: a list that receives (z, x) of the kept
    outputs, for ``write_candidates``. Raises OptimusError on bad arguments and
    GeneratorDivergedError on bad outputs.
    """
    verbose = utils.check("verbose", verbose, VERBOSE, RULES["verbose"])
    if seed is not None:
        seed = utils.check("seed", seed, SEED, RULES["seed"])
    sampling = utils.check("sampling", sampling, SAMPLING, RULES["sampling"])
    rng = np.random.default_rng(seed)
    z = draw_latents(n_samples, low_latent, high_latent, rng)
    sampler = generator.sampler(sampling, low_latent, high_latent)
    candidates, accepted = sampler.draw_candidates(z, rng)
    if candidates.size != z.size:
        raise ValueError(f"generator returned {candidates.size} values for {z.size} latents")
    if not accepted.any():
        raise utils.OptimusError(f"the generator kept none of the {z.size} latents: nothing to measure")
    if samples is not None:
        samples.append((z[accepted], candidates[accepted]))
    exact = z.size == high_latent - low_latent + 1
    return {**measure(z[accepted], candidates[accepted], discriminator, verbose),
            "distribution": distribution(sampler, z, candidates, exact, residue_primes(sampler)),
            "latents": int(z.size), "acceptance_rate": float(accepted.mean()), "sampling": sampling,
            "low_latent": low_latent, "high_latent": high_latent, "seed": seed}


def beyond_range(high_latent: int, beyond_latent: int = 0) -> tuple | None:
    """The held-out latents (high_latent, end]: end = beyond_latent, or by default
    min(BEYOND_FACTOR * high_latent, LATENT_LIMIT). None when no latent is left beyond."""
    end = beyond_latent or min(BEYOND_FACTOR * high_latent, model.LATENT_LIMIT)
    return (high_latent + 1, end) if end > high_latent else None


def evaluate(generator, discriminator, n_samples: int, low_latent: int, high_latent: int,
             seed=None, beyond_latent: int = 0, verbose: int = VERBOSE, samples: list | None = None,
             sampling: str = SAMPLING) -> dict:
    """Reports on the training range and on the range beyond it, each with its own draw.

    Returns {"in_range": report, "beyond": report or None}. samples: a list that receives the
    (z, x) of each draw, for ``write_candidates``.
    """
    ranges = (("in_range", (low_latent, high_latent)), ("beyond", beyond_range(high_latent, beyond_latent)))
    return {name: None if bounds is None else
            test_models(generator, discriminator, n_samples, *bounds, seed, verbose, samples, sampling)
            for name, bounds in ranges}


def write_candidates(path: str, samples: list, stream=None) -> None:
    """Write every (latent, candidate, is_prime) of ``samples`` as CSV to ``path``.

    path "-" writes to ``stream`` (stdout); a file is replaced in one step, never left half written.
    """
    lines = [CSV_HEADER]
    for z, candidates in samples:
        primes = utils.is_prime(candidates)
        lines += [f"{a},{b},{int(c)}" for a, b, c in zip(z.tolist(), candidates.tolist(), primes)]
    text = "\n".join(lines) + "\n"
    if path == "-":
        (stream or sys.stdout).write(text)
        return
    if Path(path).name in checkpoint.CHECKPOINT_NAMES and Path(path).exists():
        raise utils.OptimusError(f"{path}: a checkpoint's own file; write the candidates elsewhere")
    try:
        checkpoint.write_atomic(Path(path), text.encode())
    except OSError as err:
        raise utils.OptimusError(f"{path}: cannot write the candidates ({err.strerror or err})")


def json_text(value) -> str:
    """``value`` as strict JSON: a NaN or infinite float (a measure of one latent, say) is null."""
    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(item) for k, item in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(item) for item in v]
        return v
    return json.dumps(clean(value), allow_nan=False)


# ---------------------------------------------------------------------------------------------
# Calibration: generators whose scores and distributions are known


def _progression(modulus: int):
    """The generator of the candidates modulus*z + 1 (x = modulus*z/2)."""
    return lambda z: (modulus // 2) * z


def _totient(m: int) -> int:
    return sum(math.gcd(k, m) == 1 for k in range(1, m + 1))


WHEEL = math.prod(utils.odd_primes(31))  # 3 * 5 * ... * 31: the wheel rows avoid these factors
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

    def sampler(self, how: str, low: int, high: int) -> sampling_lib.PointMasses:
        return sampling_lib.PointMasses(self.outputs)

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

    def windows(self, z) -> sampling_lib.Windows:
        z = np.asarray(z, dtype=np.uint64).reshape(-1, 1)
        candidates = np.uint64(2) * (np.uint64(self.offsets) * z
                                     + np.arange(self.offsets, dtype=np.uint64)) + np.uint64(1)
        return sampling_lib.Windows(candidates, np.asarray(self.weights(candidates), dtype=np.float64))

    def draw_candidates(self, z, rng: np.random.Generator) -> tuple:
        windows = self.windows(z)
        w = windows.weights
        total = w.sum(axis=1)
        pi = w / np.where(total > 0, total, 1.0)[:, None]
        k = (np.cumsum(pi, axis=1) < rng.random((len(w), 1))).sum(axis=1).clip(max=self.offsets - 1)
        accepted = rng.random(len(w)) < total / total.max()
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
    primes = utils.odd_primes_between(lo, hi)
    for name, kind in SEARCH_CALIBRATION:
        measures = prime_measures(primes, search_weights(primes, lo, hi, kind), primes.size,
                                  utils.odd_primes(RESIDUE_PRIMES_AT_LEAST))
        floor = prime_measures(primes, np.ones(primes.size), primes.size,
                               utils.odd_primes(RESIDUE_PRIMES_AT_LEAST))["residue_tv"]
        rows.append({"name": name, "expected": None, "expected_tv": None, "score": None,
                     "distribution": {**measures, "exact": True, "reference_primes": int(primes.size),
                                      "residue_tv_floor": floor}})
    return rows


def format_calibration(rows: list) -> str:
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
                 _percent(r["distinct_fraction"]) if scored else "",
                 "n/a" if m is None else f"{m['reference_primes']:,}",
                 "" if r["expected_tv"] is None else f"{r['expected_tv']:.3f}",
                 _measure_cell(m, "tv", ".3f"), _measure_cell(m, "entropy_deficit_bits", ".3f"),
                 _measure_cell(m, "residue_tv", ".3f") + ("" if m is None or m["residue_tv_floor"] is None
                                                          else f" ({m['residue_tv_floor']:.3f})"),
                 _measure_cell(m, "coverage", ".3f")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Drawing primes of a requested size


PRIME_CHUNK = 1024              # proposals of the first network call when drawing primes...
MAX_PRIME_CHUNK = 16384         # ... doubling at each call up to this: a schedule fixed whatever the
                                # count, so a seed's primes do not depend on how many are asked for
PRIME_SLICE = 64                # proposals tested at least at a time, so that few are tested past the N-th
                                # prime; beyond 2**64 (tested one by one anyway) also at most, for progress
GIVE_UP_FACTOR = 50             # refuse after this many times the candidates chance would need
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


def prime_range(bits: int = 0, text: str = "") -> tuple:
    """[lo, hi] of the primes asked for: ``bits`` binary digits, or the range "A:B" (decimal)."""
    if bool(bits) == bool(text):
        raise utils.OptimusError("--primes needs one of --bits=B or --range=A:B")
    if bits:
        utils.check("bits", bits, 0, utils.between(MIN_BITS, MAX_BITS, "an integer"))
        return 2 ** (bits - 1), 2**bits - 1
    parts = text.replace(" ", "").split(":")
    if len(parts) != 2 or not all(part.isdigit() for part in parts):
        raise utils.OptimusError(f"--range={text}: expected A:B, two decimal integers")
    lo, hi = int(parts[0]), int(parts[1])
    if not 3 <= lo <= hi < 2**MAX_BITS:
        raise utils.OptimusError(f"--range={text}: need 3 <= A <= B < 2**{MAX_BITS}")
    if hi < utils.ODD_SIEVE_LIMIT and not utils.odd_primes_between(lo, hi).size:
        raise utils.OptimusError(f"--range={text}: no odd prime lies in [{lo}, {hi}]")
    return lo, hi


def _in_bounds(candidates: np.ndarray, lo: int, hi: int) -> np.ndarray:
    if candidates.dtype == object:
        return np.fromiter((lo <= v <= hi for v in candidates), bool, candidates.size)
    return (candidates >= lo) & (candidates <= hi)


def chunk_sizes():
    """The proposals of each network call when drawing primes: PRIME_CHUNK, doubling up to
    MAX_PRIME_CHUNK. The schedule does not depend on how many primes are asked for, so one seed
    draws one sequence of proposals, and asking for fewer primes gives a prefix of the same primes."""
    size = PRIME_CHUNK
    while True:
        yield size
        size = min(2 * size, MAX_PRIME_CHUNK)


def _first_primes(candidates: np.ndarray, wanted: int, before: tuple, shown=None) -> tuple:
    """The first ``wanted`` primes of ``candidates`` in order (Python ints), and how many were
    tested: in slices of the count that the rate of primes so far says is needed (before: the
    primes found and candidates tested earlier), at least PRIME_SLICE, so that few are tested
    past the last one wanted. Beyond 2**64 (object candidates, tested one by one anyway) slices
    are at most PRIME_SLICE. shown(found, tested): called after each slice."""
    found, tested, start = [], 0, 0
    while start < candidates.size and len(found) < wanted:
        rate = max(before[0] + len(found), 1) / max(before[1] + tested, 1)
        size = int(max(PRIME_SLICE, (wanted - len(found)) / rate))
        size = min(size, PRIME_SLICE) if candidates.dtype == object else size
        piece = candidates[start:start + size]
        hits = np.flatnonzero(utils.is_prime(piece))[:wanted - len(found)]
        tested += (int(hits[-1]) + 1) if len(found) + hits.size == wanted else piece.size
        found += [int(p) for p in piece[hits]]
        start += size
        if shown is not None:
            shown(len(found), tested)
    return found, tested


def draw_primes(generator, count: int, lo: int, hi: int, seed=None, progress: Progress = QUIET) -> tuple:
    """``count`` random primes in [lo, hi] from the generator's sampler, and what they cost.

    The latents are those whose windows meet [lo, hi] (``generator.latents_for``), and the
    sampler streams proposals from them (``stream``) in calls of ``chunk_sizes``, from one rng
    seeded once; each kept candidate outside [lo, hi] is dropped untested, each one inside is
    tested by the oracle in the order drawn, and the first ``count`` primes are returned: the
    primes of a seed are one stream, of which a smaller count gives a prefix. Returns (primes: a
    list of Python ints, in the order drawn, repeats allowed; stats: proposals drawn, candidates
    tested, seconds, of them setup_seconds building the sampler (the acceptance bound scores
    sampling.STREAM_REFERENCE candidates once), sampler_seconds in the generator's sampler (its networks,
    the offsets, the acceptance) and the rest mostly in the oracle). progress: shows each step on
    a terminal. Raises OptimusError when the generator cannot reach [lo, hi], or finds no prime
    after GIVE_UP_FACTOR times what chance would need.
    """
    count = utils.check("primes", count, 0, utils.at_least(1))
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    progress.show("setting up the generator's sampler", now=True)
    low, high = generator.latents_for(lo, hi)
    sampler = generator.sampler("sampled", low, high)
    sampler.set_up()
    setup = time.perf_counter() - start
    found, drawn, tested, network = [], 0, 0, 0.0
    budget = GIVE_UP_FACTOR * count * math.log(max(hi, 3)) / 2  # chance near hi: 2 / ln hi per odd

    def shown(more: int, spent: int) -> None:
        progress.show(f"drawing primes: {len(found) + more} of {count} found, {tested + spent} "
                      f"tested, {time.perf_counter() - start:.0f} s")
    for chunk in chunk_sizes():
        tick = time.perf_counter()
        candidates, kept = sampler.stream(chunk, rng)
        network += time.perf_counter() - tick
        drawn += chunk
        more, spent = _first_primes(candidates[kept & _in_bounds(candidates, lo, hi)], count - len(found),
                                    (len(found), tested), shown)
        found, tested = found + more, tested + spent
        if len(found) == count:
            break
        if tested > budget:
            raise utils.OptimusError(f"no prime in [{lo}, {hi}] after {tested} candidates: the "
                                     "generator does not reach the primes of this range")
    return found, {"proposals": drawn, "tested": tested, "seconds": time.perf_counter() - start,
                   "setup_seconds": setup, "sampler_seconds": network, "latent_range": (low, high)}


def _window_labels(candidates: np.ndarray, progress: Progress) -> np.ndarray:
    """Which candidates (n, K) are prime, DISTRIBUTION_SLICE windows at a time, shown on progress."""
    labels = np.zeros(candidates.shape, dtype=bool)
    start = time.perf_counter()
    for row in range(0, len(candidates), DISTRIBUTION_SLICE):
        labels[row:row + DISTRIBUTION_SLICE] = utils.is_prime(candidates[row:row + DISTRIBUTION_SLICE])
        progress.show(f"distribution: {min(row + DISTRIBUTION_SLICE, len(candidates))} of "
                      f"{len(candidates)} windows tested, {time.perf_counter() - start:.0f} s")
    return labels


def primes_distribution(generator, lo: int, hi: int, seed=None, progress: Progress = QUIET) -> dict | None:
    """The distribution measures of the generator's primes in [lo, hi], estimated from
    DISTRIBUTION_WINDOWS sampled windows (their candidates outside [lo, hi] left out); None for
    a generator without windows. progress: shows each step on a terminal."""
    progress.show("distribution: setting up the generator's sampler", now=True)
    low, high = generator.latents_for(lo, hi)
    sampler = generator.sampler("sampled", low, high)
    size = min(DISTRIBUTION_WINDOWS, high - low + 1)
    z = utils.random_integers(low, high, size, np.random.default_rng(seed))  # distinct latents
    progress.show(f"distribution: scoring {size} windows", now=True)
    windows = sampler.windows(z)
    if windows is None:
        return None
    outside = ~_in_bounds(windows.candidates.reshape(-1), lo, hi).reshape(windows.candidates.shape)
    return window_distribution(sampling_lib.Windows(windows.candidates, np.where(outside, 0.0, windows.weights)),
                               residue_primes(sampler), exact=size == high - low + 1, excluded=outside,
                               labels=_window_labels(windows.candidates, progress))


def format_primes_report(primes: list, stats: dict, lo: int, hi: int) -> str:
    """The stderr line of --primes on what the primes cost."""
    n, seconds = len(primes), stats["seconds"]
    size = (f"{hi.bit_length()} bits" if lo == 2 ** (hi.bit_length() - 1) and hi == 2 ** hi.bit_length() - 1
            else f"[{lo}, {hi}]")
    return (f"{n} primes of {size} ({len(set(primes))} distinct) in {seconds:.2f} s: "
            f"{n / seconds:.1f} primes/s; {stats['tested'] / n:.1f} candidates tested per prime "
            f"(oracle calls), {stats['proposals'] / n:.1f} proposals drawn per prime; "
            f"{stats['sampler_seconds'] / seconds:.0%} of the time in the generator's sampler, "
            f"{stats['setup_seconds']:.1f} s setting it up")


def format_distribution_line(measures: dict | None) -> str:
    """The stderr line of --primes --distribution: the distribution of the primes."""
    if measures is None:
        return "distribution: n/a (this generator has no candidate windows)"
    return (f"distribution over {measures['windows']} {'' if measures['exact'] else 'sampled '}windows "
            f"({measures['reference_primes']} "
            f"primes): tv {_measure_cell(measures, 'tv', '.3f')}, entropy deficit "
            f"{_measure_cell(measures, 'entropy_deficit_bits', '.3f')} bits, residue tv "
            f"{_measure_cell(measures, 'residue_tv', '.3f')} (a uniform sampler's: "
            f"{measures['residue_tv_floor']:.3f}), coverage {_measure_cell(measures, 'coverage', '.3f')}")


# ---------------------------------------------------------------------------------------------
# Reporting


def _percent(value: float | None) -> str:
    if value is None:
        return "n/a"
    percent = 100 * value
    return f"{percent:.2g}%" if 0 < percent < 0.01 else f"{percent:.2f}%"


def p_value_text(p: float) -> str:
    """A p-value as the reports show it (below 1e-300, a float no longer tells it apart)."""
    return "< 1e-300" if p < 1e-300 else f"{p:.3g}"


def _columns(label: str, cells: list, note: str = "") -> str:
    return f"  {label:<18}" + "".join(f"{c:>22}" for c in cells) + (f"   {note}" if note else "")


def _measure_cell(measures: dict | None, key: str, form: str) -> str:
    """A distribution measure with its sd (sampled windows), or n/a."""
    if measures is None or measures[key] is None:
        return "n/a"
    sd = measures.get(f"{key}_sd")
    return format(measures[key], form) + ("" if sd is None else f" +- {sd:{form}}")


def _distribution_rows(reports: list) -> list:
    """The report's lines on the distribution of the generated primes."""
    measures = [r["distribution"] for r in reports]
    how = ["every window" if m and m["exact"] else "sampled windows" if m else "n/a" for m in measures]
    floors = ["n/a" if m is None or m["residue_tv_floor"] is None else f"{m['residue_tv_floor']:.4f}"
              for m in measures]
    worst = ["n/a" if m is None or m["residue_prime"] is None else f"mod {m['residue_prime']}" for m in measures]
    return [_columns("prime distribution", how, "against uniform over every prime in the windows"),
            _columns("  tv", [_measure_cell(m, "tv", ".4f") for m in measures],
                     "total variation distance (uniform 0, one prime of many: ~1)"),
            _columns("  entropy deficit", [_measure_cell(m, "entropy_deficit_bits", ".4f") for m in measures],
                     "bits short of log2(#primes)"),
            _columns("  min-entropy def.", [_measure_cell(m, "min_entropy_deficit_bits", ".4f") for m in measures],
                     "bits: log2(#primes * the likeliest prime's probability)"),
            _columns("  residue tv", [_measure_cell(m, "residue_tv", ".4f") for m in measures],
                     f"largest over p <= {RESIDUE_PRIMES_AT_LEAST} or the encoding's, of residues vs uniform"),
            _columns("    where", worst, "the prime p of that largest tv"),
            _columns("    uniform's", floors, "an exactly uniform sampler on these windows: the noise floor"),
            _columns("  coverage", [_measure_cell(m, "coverage", ".4f") for m in measures],
                     f"share of the primes given >= {COVERAGE_SHARE:g}x uniform's probability")]


def format_report(result: dict, verbose: int = VERBOSE) -> str:
    """The result of ``evaluate`` as readable lines: the two ranges side by side.

    verbose: 0 headline figures; 1 adds the discriminator's confusion tables; 2 adds the output
    ranges and the per-magnitude-bin breakdown; 3 adds sample latents, candidates and primes.
    """
    reports = [(name, r) for name, r in (("in range", result["in_range"]),
                                         ("beyond", result.get("beyond"))) if r is not None]
    first = reports[0][1]
    seed = "unseeded" if first.get("seed") is None else f"seed {first['seed']}"
    rows = [f"Optimus test: {first['latents']} latents in each range, {first['sampling']} ({seed})",
            _columns("", [name for name, _ in reports]),
            _columns("latents", [f"[{r['low_latent']}, {r['high_latent']}]" for _, r in reports],
                     "training range" + ("; the range beyond was never trained on"
                                         if len(reports) > 1 else "")),
            _columns("kept", [_percent(r["acceptance_rate"]) for _, r in reports],
                     "latents the sampler kept: each gives one output"),
            _columns("score", [f"{r['score']:.3f} +- {r['score_sd']:.3f}" for _, r in reports],
                     "distinct primes / chance's count (chance 1, 210z+1 2.19)"),
            _columns("p-value", [p_value_text(r["p_value"]) for _, r in reports],
                     "P(chance gives as many distinct primes)"),
            _columns("prime ratio", [_percent(r["prime_ratio"]) for _, r in reports], "of all outputs"),
            _columns("chance", [_percent(r["chance"]) for _, r in reports],
                     "prime share of odd integers near the outputs"),
            _columns("distinct outputs", [_percent(r["distinct_fraction"]) for _, r in reports])]
    rows += [_columns(f"multiples of {p}", [_percent(r["multiples"][str(p)]) for _, r in reports],
                      "chance: 1/p" if p == SMALL_PRIMES[0] else "") for p in SMALL_PRIMES]
    rows += _distribution_rows([r for _, r in reports])
    rows.append(_columns("discriminator", [_percent(r["balanced_accuracy"]) for _, r in reports],
                         "balanced accuracy on the outputs"))
    if all(r["discriminator_on_uniform"] for _, r in reports):
        rows.append(_columns("  on uniform odd", [
            f"{_percent(r['discriminator_on_uniform']['balanced_accuracy'])}, "
            f"{r['discriminator_on_uniform']['log_loss']:.3f}" for _, r in reports],
            "balanced accuracy, log-loss (a constant: 0.693), half primes"))
        probes = [r["discriminator_on_uniform"]["multiple_probe"] for _, r in reports]
        rows.append(_columns(f"  probe {'/'.join(map(str, PROBE_PRIMES))}", [
            "/".join("n/a" if q[str(p)] is None else f"{100 * q[str(p)]:.0f}%" for p in PROBE_PRIMES)
            for q in probes], "a linear probe of D's last hidden layer for 'a multiple of p' (50%: none)"))
    for name, r in reports:
        cells = r["confusion"]
        if verbose >= 1 and cells is not None:
            rows += [f"  {name}: discriminator verdicts (prime when P > {PRIME_THRESHOLD})",
                     f"    {'':12}{'said prime':>14}{'said not':>14}",
                     f"    {'prime':12}{cells['true_positives']:>14}{cells['false_negatives']:>14}",
                     f"    {'not prime':12}{cells['false_positives']:>14}{cells['true_negatives']:>14}"]
        if verbose >= 2:
            rows += [f"  {name}: candidates in [{r['min_candidate']}, {r['max_candidate']}]",
                     f"    {'from 2^k':>12} {'share':>8} {'primes':>8} {'chance':>8}"]
            rows += [f"    {b['lo']:>12} {_percent(b['share']):>8} {_percent(b['prime_ratio']):>8} "
                     f"{_percent(b['chance']):>8}" for b in r["bins"]]
        samples = r.get("samples")
        if verbose >= 3 and samples is not None:
            pairs = ", ".join(f"{z} -> {c}" for z, c in zip(samples["latents"], samples["candidates"]))
            rows += [f"  {name}: first latents -> candidates: {pairs}",
                     f"  {name}: first distinct primes: {', '.join(map(str, samples['primes'])) or 'none'}"]
    return "\n".join(rows)


# ---------------------------------------------------------------------------------------------
# Command line



def _training_range(config: dict) -> tuple:
    """The latents to test as in range: given, else the checkpoint's own, else TRAINING_RANGE."""
    if config["low_latent"] or config["high_latent"]:
        return config["low_latent"] or TRAINING_RANGE[0], config["high_latent"] or TRAINING_RANGE[1]
    trained = checkpoint.read_state(config["checkpoint_dir"]).get("config", {})
    return trained.get("low_latent", TRAINING_RANGE[0]), trained.get("high_latent", TRAINING_RANGE[1])


def _print_primes(config: dict) -> int:
    """--primes=N: N primes on stdout, one per line; what they cost on stderr, and with
    --distribution their distribution. On a terminal, stderr shows each step's progress."""
    if not config["primes"]:
        raise utils.OptimusError("--bits, --range and --distribution are for --primes=N; give N")
    lo, hi = prime_range(config["bits"], config["range"])
    if config["json"] or config["candidates"]:
        raise utils.OptimusError("--primes prints primes on stdout: leave out --json and --candidates")
    progress = Progress(sys.stderr)
    generator, _ = checkpoint.load_networks(config["checkpoint_dir"])  # TensorFlow may log here
    try:
        primes, stats = draw_primes(generator, config["primes"], lo, hi, config["seed"], progress)
    finally:
        progress.clear()
    print("\n".join(map(str, primes)), flush=True)
    print(format_primes_report(primes, stats, lo, hi), file=sys.stderr, flush=True)
    if config["distribution"]:
        try:
            measures = primes_distribution(generator, lo, hi, config["seed"], progress)
        finally:
            progress.clear()
        print(format_distribution_line(measures), file=sys.stderr, flush=True)
    return 0


def main(argv: list | None = None) -> int:
    """Run the command line; returns the exit status (2 on an OptimusError)."""
    argv = sys.argv[1:] if argv is None else argv
    if utils.wants_help(argv):
        return utils.print_help(USAGE, DEFAULTS, MEANINGS)
    try:
        config = utils.parse_overrides(argv, DEFAULTS, RULES)
        if config["json"] and config["candidates"] == "-":
            raise utils.OptimusError("--json --candidates=-: both would write to stdout; give "
                                     "--candidates a file name")
        if config["calibration"]:
            text = format_calibration(calibration(config["n_samples"], config["seed"]))
            print(text, flush=True)
            return 0
        if config["primes"] or config["bits"] or config["range"] or config["distribution"]:
            return _print_primes(config)
        generator, discriminator = checkpoint.load_networks(config["checkpoint_dir"])
        low, high = _training_range(config)
        samples = []
        result = evaluate(generator, discriminator, config["n_samples"], low, high, config["seed"],
                          config["beyond_latent"], config["verbose"], samples, config["sampling"])
        if config["candidates"]:
            write_candidates(config["candidates"], samples)
        report = json_text(result) if config["json"] else format_report(result, config["verbose"])
        print(report, file=sys.stderr if config["candidates"] == "-" else sys.stdout)
        sys.stdout.flush()
    except utils.OptimusError as err:
        utils.print_error(err)
        return 2
    except OSError as err:  # writing the output: a closed pipe, a full device
        return utils.output_failed(err)
    return 0


if __name__ == "__main__":
    sys.exit(main())
