"""Measuring a generator: how many distinct primes it makes against chance, and how far its primes
are from uniform (``prime_measures``).

The headline ``score`` is distinct primes / the primes chance expects from as many odd integers,
each at its candidate's magnitude (``oracle.local_density``): a uniform odd sampler scores 1,
210z+1 about 2.19 (210 / (2 * phi(210))), a generator collapsed onto a few primes about 0. No
TensorFlow here: test.py reads these defaults before it starts TensorFlow.
"""
import math

import numpy as np

import utils
from training import oracle, rules

# Defaults of a test session (test.py's flags and train.py's sessions)
N_SAMPLES = 10_000              # latent integers drawn in each range
TRAINING_RANGE = (1, 10**6)     # train.py's default latents; a checkpoint's own range replaces it
BEYOND_FACTOR = 10              # the held-out range runs from the training range's end to 10x it
SEED = 0                        # seed of the latent draws
VERBOSE = 0                     # 0 headline, 1 + confusion table, 2 + magnitude bins, 3 + samples
SAMPLINGS = ("sampled", "greedy")  # how a generator is used: draw its offsets, or take the likeliest
SAMPLING = "sampled"            # the default: a random prime generator must be random
DISTRIBUTION_WINDOWS = 2000     # sampled blocks of 16 odd integers behind --primes --distribution

PRIME_THRESHOLD = 0.5           # the discriminator says "prime" when P(prime) is above this
UNIFORM_DRAWS = 10              # uniform outputs drawn per sample, to find enough primes for a balanced set
SMALL_PRIMES = (3, 5, 7)        # the report gives the share of outputs divisible by each
RESIDUE_PRIMES_AT_LEAST = 31    # residue_tv looks at the odd primes up to this or the largest encoded
COVERAGE_SHARE = 0.5            # coverage: the primes the generator gives at least this times uniform's
PROBE_PRIMES = (3, 5, 7)        # the probe reads "n is a multiple of p" off D's last hidden layer...
PROBE_SAMPLES = 2000            # ... from this many multiples and as many others, fit and held out
PROBE_L2 = 1e-3                 # ridge of the probe's logistic regression
JACKKNIFE_GROUPS = 10           # sampled windows: sd of each measure by delete-a-group jackknife
SHOWN_SAMPLES = 10              # numbers listed at verbose 3

MAX_LATENT = 2**oracle.MAX_PRIME_BITS // 64  # the largest latent any range may hold: its candidates
                                # stay below the oracle's 2**MAX_PRIME_BITS (a head may allow fewer)
RULES = {
    "n_samples": rules.at_least(1),
    "low_latent": rules.between(0, MAX_LATENT, "an integer"),
    "high_latent": rules.between(0, MAX_LATENT, "an integer"),
    "beyond_latent": rules.between(0, MAX_LATENT, "an integer"),
    "seed": rules.at_least(0),
    "verbose": rules.one_of(0, 1, 2, 3),
    "sampling": rules.one_of(*SAMPLINGS),
}


def check_ranges(n_samples: int, low_latent: int, high_latent: int, beyond_latent: int = 0) -> None:
    """The command line's check of the ranges ``evaluate`` draws from (each value already passed
    RULES): refuse in one line a range that is empty or holds fewer than n_samples latents."""
    if not 1 <= low_latent <= high_latent:
        raise utils.OptimusError(f"low_latent={low_latent} must be >= 1 and <= high_latent={high_latent}")
    for bounds in ((low_latent, high_latent), beyond_range(high_latent, beyond_latent)):
        if bounds is not None and n_samples > bounds[1] - bounds[0] + 1:
            raise utils.OptimusError(
                f"n_samples={n_samples} is more than the {bounds[1] - bounds[0] + 1} latents of "
                f"[{bounds[0]}, {bounds[1]}]: lower n_samples or widen the range")


def draw_latents(n_samples: int, low_latent: int, high_latent: int,
                 rng: np.random.Generator) -> np.ndarray:
    """``n_samples`` latents in [low_latent, high_latent] (``check_ranges``'s): distinct int64 (n,)
    below 2**63, Python ints above (``utils.random_integers``)."""
    assert 1 <= n_samples <= high_latent - low_latent + 1 and low_latent >= 1, "checked by check_ranges"
    return utils.random_integers(low_latent, high_latent, n_samples, rng)


def _magnitude_bins(candidates: np.ndarray, primes: np.ndarray, chance: np.ndarray) -> list:
    """Per power-of-two bin [2^k, 2^(k+1)) that holds candidates: its share, prime rate and chance."""
    bins = []
    exponent = utils.bit_lengths(candidates) - 1
    for k in np.unique(exponent):
        inside = exponent == k
        bins.append({"lo": int(2**int(k)), "hi": int(2 ** (int(k) + 1) - 1), "share": float(inside.mean()),
                     "prime_ratio": float(primes[inside].mean()), "chance": float(chance[inside].mean())})
    return bins


def _log_loss(p: np.ndarray, primes: np.ndarray) -> float:
    p = np.clip(p.astype(np.float64), utils.LOG_EPSILON, 1 - utils.LOG_EPSILON)
    return float(-np.mean(np.where(primes, np.log(p), np.log(1 - p))))


def _judge(discriminator, candidates: np.ndarray, primes: np.ndarray) -> dict | None:
    """D's verdicts on candidates (n,): confusion cells, balanced accuracy, log-loss and the best
    constant's (the prime share); None when it cannot read numbers of that size."""
    p = discriminator.beliefs_of_candidates(candidates)
    if p is None:
        return None
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    assert p.shape == primes.shape, "a discriminator gives one belief per candidate"
    said_prime = p > PRIME_THRESHOLD
    cells = {"true_positives": int(np.sum(said_prime & primes)),
             "false_positives": int(np.sum(said_prime & ~primes)),
             "true_negatives": int(np.sum(~said_prime & ~primes)),
             "false_negatives": int(np.sum(~said_prime & primes))}
    # balanced accuracy: the mean of the recalls on primes and on non-primes that are defined
    recalls = [hit / (hit + miss) for hit, miss in
               ((cells["true_positives"], cells["false_negatives"]),
                (cells["true_negatives"], cells["false_positives"])) if hit + miss]
    return {"confusion": cells, "balanced_accuracy": float(np.mean(recalls)) if recalls else None,
            "log_loss": _log_loss(p, primes),
            "constant_log_loss": _log_loss(np.full(p.shape, primes.mean()), primes)}


def _uniform_candidates(candidates: np.ndarray, rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` odd integers uniform between the smallest and largest of ``candidates``."""
    low, high = int(candidates.min()), int(candidates.max())
    if high < utils.FLOAT64_EXACT:  # outputs x = (c - 1) / 2 drawn as reals and rounded
        return utils.to_odd_integer(rng.uniform((low - 1) // 2, (high - 1) // 2, count).round())
    return 2 * utils.random_integers((low - 1) // 2, (high - 1) // 2, count, rng) + 1


def divisibility_probe(discriminator, candidates: np.ndarray, p: int) -> float | None:
    """How well "n is a multiple of p" can be read off D's last hidden layer by a linear probe.

    A logistic regression fit on PROBE_SAMPLES multiples of p and as many others at the magnitudes
    of ``candidates``: balanced accuracy held out (0.5: none); None without a representation or past 2**53.
    """
    if int(candidates.max()) >= utils.FLOAT64_EXACT:
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
    from scipy import optimize  # here: scipy takes 1.6 s to import, and --help reads this module
    w = optimize.minimize(loss, np.zeros(features.shape[1]), jac=True, method="L-BFGS-B").x
    said = features[held] @ w > 0
    return float(0.5 * (said[y[held] == 1].mean() + (~said[y[held] == 0]).mean()))


def _judge_uniform(discriminator, candidates: np.ndarray) -> dict | None:
    """``_judge`` on uniform odd candidates at the magnitudes of ``candidates``, half prime as in D's
    training batches (a constant 0.5: log-loss ln 2), seeded by their number; None without both
    primes and composites, or with one candidate."""
    n = candidates.size
    uniform = _uniform_candidates(candidates, np.random.default_rng(n), UNIFORM_DRAWS * n)
    primes = oracle.is_prime(uniform)
    half = min(primes.sum(), (~primes).sum(), n // 2)
    if half == 0:
        return None
    chosen = np.concatenate([np.flatnonzero(primes)[:half], np.flatnonzero(~primes)[:half]])
    result = _judge(discriminator, uniform[chosen], primes[chosen])
    if result is None:
        return None
    return {**{k: v for k, v in result.items() if k != "confusion"},
            "multiple_probe": {str(p): divisibility_probe(discriminator, candidates, p) for p in PROBE_PRIMES}}


def measure(z: np.ndarray, candidates: np.ndarray, discriminator=None, verbose: int = VERBOSE) -> dict:
    """The report on the candidates (odd integers, exact) of latents z, as a JSON-serialisable dict:
    primes against chance (score = distinct_primes / expected_primes, the sum of the local densities;
    p_value: one-sided binomial) and D's verdicts (None without a D that reads numbers this large)."""
    from scipy import stats  # here: scipy takes 1.6 s to import, and --help reads this module
    primes = oracle.is_prime(candidates)
    chance = oracle.local_density(candidates)
    distinct, first = np.unique(candidates, return_index=True)
    first = np.sort(first)  # each distinct value's first index, in the order drawn
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
        distinct_primes_in_order = candidates[first[primes[first]]]
        report["samples"] = {"latents": [int(v) for v in z[:SHOWN_SAMPLES]],
                             "candidates": [int(v) for v in candidates[:SHOWN_SAMPLES]],
                             "primes": [int(v) for v in distinct_primes_in_order[:SHOWN_SAMPLES]]}
    return report


# ---------------------------------------------------------------------------------------------
# The distribution of the generated primes


def prime_measures(values: np.ndarray, weights: np.ndarray, reference: int, primes: tuple) -> dict:
    """How far a distribution over primes is from uniform over a reference set of ``reference`` primes.

    values: distinct primes of the reference (uint64 (m,)); weights: their probabilities up to a
    constant (m,); the other primes have none. Returns tv, entropy_deficit_bits (the KL divergence
    from uniform), min_entropy_deficit_bits, coverage (the share given >= COVERAGE_SHARE times
    uniform's), and residue_tv: the largest over ``primes`` of the TV between the residues mod p and
    uniform over p's nonzero classes, at residue_prime. All None when no weight is on a prime.
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

    windows: ``sampling.Windows`` of distinct latents (disjoint windows); excluded: a mask of
    candidates left out of the reference; labels: which are prime, if known. exact: the windows are
    the whole range; else a uniform sample, and each measure gets a ``*_sd`` by a delete-a-group
    jackknife over JACKKNIFE_GROUPS groups. residue_tv_floor: uniform's residue_tv (the noise floor).
    """
    labels = oracle.is_prime(windows.candidates) if labels is None else labels.copy()
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
    values, counts = np.unique(candidates[oracle.is_prime(candidates)], return_counts=True)
    reference = oracle.prime_count(hi) - oracle.prime_count(lo - 1) - (lo <= 2 <= hi)
    floor = None
    if hi < oracle.ODD_SIEVE_LIMIT:
        everything = oracle.odd_primes_between(lo, hi)
        floor = prime_measures(everything, np.ones(everything.size), everything.size, primes)["residue_tv"]
    return {**prime_measures(values, counts.astype(np.float64), reference, primes),
            "residue_tv_floor": floor, "reference_primes": int(reference),
            "windows": int(candidates.size), "exact": True}


def distribution(sampler, z: np.ndarray, candidates: np.ndarray, exact: bool, primes: tuple) -> dict | None:
    """The distribution measures of ``sampler`` on latents z (its candidates for them): from its
    windows, or as point masses when it has none (None unless z is the whole range)."""
    windows = sampler.windows(z)
    if windows is not None:
        return window_distribution(windows, primes, exact)
    return point_mass_distribution(candidates, primes) if exact else None


def residue_primes(sampler) -> tuple:
    """The odd primes that residue_tv looks at: up to RESIDUE_PRIMES_AT_LEAST or the largest encoded."""
    return oracle.odd_primes(max(RESIDUE_PRIMES_AT_LEAST, sampler.largest_encoded_prime() or 0))


def test_models(generator, discriminator=None, n_samples: int = N_SAMPLES,
                low_latent: int = TRAINING_RANGE[0], high_latent: int = TRAINING_RANGE[1],
                seed=None, verbose: int = VERBOSE, samples: list | None = None,
                sampling: str = SAMPLING) -> dict:
    """The report on ``n_samples`` latents drawn in [low_latent, high_latent], used as ``sampling``:
    ``measure`` of the outputs its sampler keeps, and its ``distribution``.

    generator: a generator part (``checkpoint.load_network``) or a stand-in with the same
    ``sampler(sampling, low, high)``. samples: a list that receives (z, x) of the kept outputs, for
    ``write_candidates``. Raises OptimusError on bad arguments, GeneratorDivergedError on bad outputs.
    """
    rng = np.random.default_rng(seed)
    z = draw_latents(n_samples, low_latent, high_latent, rng)
    sampler = generator.sampler(sampling, low_latent, high_latent)
    candidates, accepted = sampler.draw_candidates(z, rng)
    assert candidates.size == z.size, "a sampler gives one candidate per latent"
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
    end = beyond_latent or min(BEYOND_FACTOR * high_latent, utils.LATENT_LIMIT)
    return (high_latent + 1, end) if end > high_latent else None


def evaluate(generator, discriminator, n_samples: int, low_latent: int, high_latent: int,
             seed=None, beyond_latent: int = 0, verbose: int = VERBOSE, samples: list | None = None,
             sampling: str = SAMPLING) -> dict:
    """{"in_range": report, "beyond": report or None}: the training range and the range beyond it,
    each with its own draw. samples: a list that receives each draw's (z, x), for ``write_candidates``."""
    ranges = (("in_range", (low_latent, high_latent)), ("beyond", beyond_range(high_latent, beyond_latent)))
    return {name: None if bounds is None else
            test_models(generator, discriminator, n_samples, *bounds, seed, verbose, samples, sampling)
            for name, bounds in ranges}


# ---------------------------------------------------------------------------------------------
# The measures as text


def percent(value: float | None) -> str:
    """A share as a percentage, with two significant digits below 0.01%."""
    if value is None:
        return "n/a"
    percent = 100 * value
    return f"{percent:.2g}%" if 0 < percent < 0.01 else f"{percent:.2f}%"


def p_value_text(p: float) -> str:
    """A p-value as the reports show it (below 1e-300, a float no longer tells it apart)."""
    return "< 1e-300" if p < 1e-300 else f"{p:.3g}"


def measure_cell(measures: dict | None, key: str, form: str) -> str:
    """A distribution measure with its sd (sampled windows), or n/a."""
    if measures is None or measures[key] is None:
        return "n/a"
    sd = measures.get(f"{key}_sd")
    return format(measures[key], form) + ("" if sd is None else f" +- {sd:{form}}")


def _columns(label: str, cells: list, note: str = "") -> str:
    return f"  {label:<18}" + "".join(f"{c:>22}" for c in cells) + (f"   {note}" if note else "")


def _distribution_rows(reports: list) -> list:
    """The report's lines on the distribution of the generated primes."""
    measures = [r["distribution"] for r in reports]
    how = ["every window" if m and m["exact"] else "sampled windows" if m else "n/a" for m in measures]
    floors = ["n/a" if m is None or m["residue_tv_floor"] is None else f"{m['residue_tv_floor']:.4f}"
              for m in measures]
    worst = ["n/a" if m is None or m["residue_prime"] is None else f"mod {m['residue_prime']}" for m in measures]
    return [_columns("prime distribution", how, "the learned policy's (--primes prints uniform primes), against "
                     "uniform over every prime in the windows"),
            _columns("  tv", [measure_cell(m, "tv", ".4f") for m in measures],
                     "total variation distance (uniform 0, one prime of many: ~1)"),
            _columns("  entropy deficit", [measure_cell(m, "entropy_deficit_bits", ".4f") for m in measures],
                     "bits short of log2(#primes)"),
            _columns("  min-entropy def.", [measure_cell(m, "min_entropy_deficit_bits", ".4f") for m in measures],
                     "bits: log2(#primes * the likeliest prime's probability)"),
            _columns("  residue tv", [measure_cell(m, "residue_tv", ".4f") for m in measures],
                     f"largest over p <= {RESIDUE_PRIMES_AT_LEAST} or the encoding's, of residues vs uniform"),
            _columns("    where", worst, "the prime p of that largest tv"),
            _columns("    uniform's", floors, "an exactly uniform sampler on these windows: the noise floor"),
            _columns("  coverage", [measure_cell(m, "coverage", ".4f") for m in measures],
                     f"share of the primes given >= {COVERAGE_SHARE:g}x uniform's probability")]


def format_report(result: dict, verbose: int = VERBOSE) -> str:
    """The result of ``evaluate`` as readable lines, the two ranges side by side. verbose: 0 headline;
    1 adds D's confusion tables, 2 the magnitude bins, 3 sample latents, candidates and primes."""
    reports = [(name, r) for name, r in (("in range", result["in_range"]),
                                         ("beyond", result.get("beyond"))) if r is not None]
    first = reports[0][1]
    seed = "unseeded" if first.get("seed") is None else f"seed {first['seed']}"
    rows = [f"Optimus test: {first['latents']} latents in each range, {first['sampling']} ({seed})",
            _columns("", [name for name, _ in reports]),
            _columns("latents", [f"[{r['low_latent']}, {r['high_latent']}]" for _, r in reports],
                     "training range" + ("; the range beyond was never trained on"
                                         if len(reports) > 1 else "")),
            _columns("kept", [percent(r["acceptance_rate"]) for _, r in reports],
                     "latents the sampler kept: each gives one output"),
            _columns("score", [f"{r['score']:.3f} +- {r['score_sd']:.3f}" for _, r in reports],
                     "distinct primes / chance's count (chance 1, 210z+1 2.19)"),
            _columns("p-value", [p_value_text(r["p_value"]) for _, r in reports],
                     "P(chance gives as many distinct primes)"),
            _columns("prime ratio", [percent(r["prime_ratio"]) for _, r in reports], "of all outputs"),
            _columns("chance", [percent(r["chance"]) for _, r in reports],
                     "prime share of odd integers near the outputs"),
            _columns("distinct outputs", [percent(r["distinct_fraction"]) for _, r in reports])]
    rows += [_columns(f"multiples of {p}", [percent(r["multiples"][str(p)]) for _, r in reports],
                      "chance: 1/p" if p == SMALL_PRIMES[0] else "") for p in SMALL_PRIMES]
    rows += _distribution_rows([r for _, r in reports])
    rows.append(_columns("discriminator", [percent(r["balanced_accuracy"]) for _, r in reports],
                         "balanced accuracy on the outputs"))
    if all(r["discriminator_on_uniform"] for _, r in reports):
        rows.append(_columns("  on uniform odd", [
            f"{percent(r['discriminator_on_uniform']['balanced_accuracy'])}, "
            f"{r['discriminator_on_uniform']['log_loss']:.3f}" for _, r in reports],
            "balanced accuracy, log-loss (a constant: 0.693), half primes"))
        probes = [r["discriminator_on_uniform"]["multiple_probe"] for _, r in reports]
        rows.append(_columns(f"  probe {'/'.join(map(str, PROBE_PRIMES))}", [
            "/".join("n/a" if q[str(p)] is None else f"{100 * q[str(p)]:.0f}%" for p in PROBE_PRIMES)
            for q in probes], "a linear probe of D's last hidden layer for 'a multiple of p' (50%: none)"))
    for name, r in reports:
        rows += _detail_rows(name, r, verbose)
    return "\n".join(rows)


def _detail_rows(name: str, r: dict, verbose: int) -> list:
    """One range's lines past the headline: D's verdicts (verbose 1), the magnitude bins (2),
    sample latents, candidates and primes (3)."""
    rows = []
    cells = r["confusion"]
    if verbose >= 1 and cells is not None:
        rows += [f"  {name}: discriminator verdicts (prime when P > {PRIME_THRESHOLD})",
                 f"    {'':12}{'said prime':>14}{'said not':>14}",
                 f"    {'prime':12}{cells['true_positives']:>14}{cells['false_negatives']:>14}",
                 f"    {'not prime':12}{cells['false_positives']:>14}{cells['true_negatives']:>14}"]
    if verbose >= 2:
        rows += [f"  {name}: candidates in [{r['min_candidate']}, {r['max_candidate']}]",
                 f"    {'from 2^k':>12} {'share':>8} {'primes':>8} {'chance':>8}"]
        rows += [f"    {b['lo']:>12} {percent(b['share']):>8} {percent(b['prime_ratio']):>8} "
                 f"{percent(b['chance']):>8}" for b in r["bins"]]
    samples = r.get("samples")
    if verbose >= 3 and samples is not None:
        pairs = ", ".join(f"{z} -> {c}" for z, c in zip(samples["latents"], samples["candidates"]))
        rows += [f"  {name}: first latents -> candidates: {pairs}",
                 f"  {name}: first distinct primes: {', '.join(map(str, samples['primes'])) or 'none'}"]
    return rows
