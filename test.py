"""Test a generator: how often its odd integers are prime, compared with what chance gives.

Draws distinct latent integers z, maps them to odd candidates 2*round(G(z))+1 and counts the
primes exactly. Random odd integers are prime at a rate that falls with their size (about
2/ln n), so the prime ratio alone says little: it is compared with the prime density of odd
integers of the same magnitudes. The headline ``score`` also counts each prime once, so a
generator that collapses onto a few known primes scores near 0, chance scores 1, and the
progression 210z+1 scores about 2.19 (Dirichlet: 210 / (2 * phi(210))).

Usage, from any directory:
    python test.py [--checkpoint_dir=DIR] [--n_samples=N] [--low_latent=A] [--high_latent=B]
                   [--seed=S] [--verbose=0..3] [--json]

Without --json, stdout is the readable report (``format_report``). With --json, stdout is one
line: the report dict as a JSON object, and nothing else. An error the user can cause (bad flag,
too many samples for the latent range, missing or broken checkpoint) prints one line
``error: ...`` to stderr and exits with status 2.
"""
import json
import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))  # the imports below work from any directory

import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

import utils  # noqa: E402

if __name__ == "__main__":
    utils.quiet_startup()  # before anything imports TensorFlow
from training import checkpoint, training_utils  # noqa: E402

# Defaults (sample count and latent range as in the original test.py)
N_SAMPLES = 1000                # latent integers drawn per test
LOW_LATENT = 1                  # smallest latent integer
HIGH_LATENT = 10**7             # largest latent integer
SEED = 0                        # seed of the latent draw on the command line
VERBOSE = 0                     # 0 headline, 1 + confusion table, 2 + magnitude bins, 3 + samples

MAX_LATENT = 2**24              # latents are fed as float32, which is exact on integers up to here
PRIME_THRESHOLD = 0.5           # the discriminator says "prime" when P(prime) is above this
SHOWN_SAMPLES = 10              # numbers listed at verbose 3
DEFAULT_CHECKPOINT_DIR = REPO_ROOT / "training"


# ---------------------------------------------------------------------------------------------
# Measuring


def _check_arguments(n_samples, low_latent, high_latent, seed, verbose) -> None:
    """Raise OptimusError, in one line, on the first argument test_models cannot use."""
    for name, value in (("n_samples", n_samples), ("low_latent", low_latent),
                        ("high_latent", high_latent), ("verbose", verbose)):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise utils.OptimusError(f"{name} must be an integer, got {value!r}")
    if not 0 <= low_latent <= high_latent <= MAX_LATENT:
        raise utils.OptimusError(
            f"need 0 <= low_latent <= high_latent <= 2**24 ({MAX_LATENT}, the float32 exact "
            f"integer range), got low_latent={low_latent}, high_latent={high_latent}")
    span = high_latent - low_latent + 1
    if not 1 <= n_samples <= span:
        raise utils.OptimusError(
            f"n_samples={n_samples} must be between 1 and the {span} integers of the latent "
            f"range [{low_latent}, {high_latent}]: lower n_samples or widen the range")
    if seed is not None and (isinstance(seed, (bool, np.bool_))
                             or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise utils.OptimusError(f"seed must be None or an integer >= 0, got {seed!r}")
    if not 0 <= verbose <= 3:
        raise utils.OptimusError(f"verbose must be 0, 1, 2 or 3, got {verbose}")


def _magnitude_bins(candidates: np.ndarray, primes: np.ndarray) -> list:
    """Per power-of-two bin [2^k, 2^(k+1)) holding candidates: its share and prime densities.

    candidates: (n,) uint64 odd integers; primes: (n,) bool. The end bins are clipped to the
    candidates' range, so a single bin reproduces the whole-range density. Returns a list of
    {lo, hi, share, prime_ratio, density}: density is the exact share of primes among all odd
    integers in [lo, hi].
    """
    order = np.argsort(candidates, kind="stable")
    values, is_prime = candidates[order], primes[order]
    lo, hi = int(values[0]), int(values[-1])
    bins = []
    for k in range(lo.bit_length() - 1, hi.bit_length()):
        start, stop = np.searchsorted(values, np.array([2**k, 2**(k + 1)], dtype=np.uint64))
        if stop == start:
            continue
        bin_lo, bin_hi = max(2**k, lo), min(2**(k + 1) - 1, hi)
        bins.append({"lo": bin_lo, "hi": bin_hi,
                     "share": float((stop - start) / values.size),
                     "prime_ratio": float(is_prime[start:stop].mean()),
                     "density": utils.odd_prime_density(bin_lo, bin_hi)})
    return bins


def _confusion(discriminator, x: np.ndarray, primes: np.ndarray) -> dict:
    """The four cells of the discriminator's verdicts (P(prime) > 0.5) on outputs x, shape (n,)."""
    p = training_utils.forward(discriminator, x)
    if p.shape != primes.shape:
        raise ValueError(f"discriminator returned {p.size} values for {primes.size} inputs")
    said_prime = p > PRIME_THRESHOLD
    return {"true_positives": int(np.sum(said_prime & primes)),
            "false_positives": int(np.sum(said_prime & ~primes)),
            "true_negatives": int(np.sum(~said_prime & ~primes)),
            "false_negatives": int(np.sum(~said_prime & primes))}


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


def test_models(generator=None, discriminator=None, n_samples: int = N_SAMPLES,
                low_latent: int = LOW_LATENT, high_latent: int = HIGH_LATENT, seed=None,
                checkpoint_dir=None, verbose: int = VERBOSE) -> dict:
    """Measure the generator's prime output against chance and the discriminator's verdicts.

    generator, discriminator: keras models or any callables f(rows, training=False) mapping
    float32 (n, 1) to (n, 1). A missing generator loads both networks from ``checkpoint_dir``
    (default training/); a given discriminator still overrides the loaded one. With a generator
    but no discriminator, ``confusion`` and ``balanced_accuracy`` are None.
    seed: seed of the draw of ``n_samples`` distinct latents in [low_latent, high_latent].
    Returns a JSON-serialisable dict of plain floats, ints and None: prime_ratio (all outputs),
    prime_ratio_unique (distinct outputs), baseline_range and baseline_matched (chance),
    score, distinct_fraction, primes, distinct_primes, p_value, confusion, balanced_accuracy,
    the arguments, the output and candidate ranges, ``bins`` (see ``_magnitude_bins``) and,
    only when verbose >= 3, ``samples``. Raises OptimusError on bad arguments, a missing or
    broken checkpoint, or diverged outputs (GeneratorDivergedError).
    """
    _check_arguments(n_samples, low_latent, high_latent, seed, verbose)
    if generator is None:
        generator, loaded = checkpoint.load_networks(checkpoint_dir or DEFAULT_CHECKPOINT_DIR)
        discriminator = loaded if discriminator is None else discriminator
    z = utils.random_vector_integers(low_latent, high_latent, n_samples, np.random.default_rng(seed))
    x = training_utils.generate(generator, z)
    if x.size != n_samples:
        raise ValueError(f"generator returned {x.size} values for {n_samples} latents")
    candidates = utils.to_odd_integer(x)
    primes = utils.is_prime(candidates)
    distinct, first = np.unique(candidates, return_index=True)
    distinct_primes = int(primes[first].sum())
    n_primes = int(primes.sum())
    lo, hi = int(distinct[0]), int(distinct[-1])
    bins = _magnitude_bins(candidates, primes)
    baseline = float(sum(b["share"] * b["density"] for b in bins))
    confusion = None if discriminator is None else _confusion(discriminator, x, primes)
    report = {
        "n_samples": int(n_samples), "low_latent": int(low_latent), "high_latent": int(high_latent),
        "seed": None if seed is None else int(seed),
        "prime_ratio": n_primes / n_samples,
        "prime_ratio_unique": distinct_primes / distinct.size,
        "baseline_range": utils.odd_prime_density(lo, hi),
        "baseline_matched": baseline,
        # baseline is 0 only when no bin can hold a prime, so then distinct_primes is 0 too
        "score": distinct_primes / (n_samples * baseline) if distinct_primes else 0.0,
        "distinct_fraction": distinct.size / n_samples,
        "primes": n_primes,
        "distinct_primes": distinct_primes,
        # X ~ Binomial(n, baseline): P(X >= observed primes)
        "p_value": float(stats.binom.sf(n_primes - 1, n_samples, baseline)),
        "confusion": confusion,
        "balanced_accuracy": None if confusion is None else _balanced_accuracy(confusion),
        "min_output": float(x.min()), "max_output": float(x.max()),
        "min_candidate": lo, "max_candidate": hi,
        "bins": bins,
    }
    if verbose >= 3:
        report["samples"] = {"latents": [int(v) for v in z[:SHOWN_SAMPLES]],
                             "candidates": [int(v) for v in candidates[:SHOWN_SAMPLES]],
                             "primes": _first_distinct(candidates[primes], SHOWN_SAMPLES)}
    return report


# ---------------------------------------------------------------------------------------------
# Reporting


def _percent(value: float | None) -> str:
    if value is None:
        return "n/a"
    percent = 100 * value
    return f"{percent:.2g}%" if 0 < percent < 0.01 else f"{percent:.2f}%"


def _p_value_text(p: float) -> str:
    return "< 1e-300" if p < 1e-300 else f"{p:.3g}"


def format_report(report: dict, verbose: int = VERBOSE, samples: dict | None = None) -> str:
    """The report of ``test_models`` as readable lines.

    verbose: 0 headline figures; 1 adds the discriminator's confusion table; 2 adds the output
    range and the per-magnitude-bin breakdown; 3 adds sample latents, candidates and primes.
    samples: shown at verbose 3; defaults to ``report["samples"]``.
    """
    r = report
    baseline = r["baseline_matched"]
    lift = r["prime_ratio"] / baseline if r["primes"] else 0.0
    seed = "unseeded" if r.get("seed") is None else f"seed {r['seed']}"
    lines = [
        f"Optimus test: {r['n_samples']} distinct latents in [{r['low_latent']}, "
        f"{r['high_latent']}] ({seed})",
        f"  prime ratio         {_percent(r['prime_ratio']):>8}   "
        f"{r['primes']} primes; distinct outputs: {_percent(r['prime_ratio_unique'])}",
        f"  chance, same sizes  {_percent(baseline):>8}   odd integers of the outputs' magnitudes",
        f"  chance, same range  {_percent(r['baseline_range']):>8}   odd integers in "
        f"[{r['min_candidate']}, {r['max_candidate']}]",
        f"  lift                {lift:>8.3f}   "
        "prime ratio / chance at the same sizes",
        f"  score               {r['score']:>8.3f}   "
        "distinct primes / chance's expected primes (chance 1, 210z+1 about 2.19)",
        f"  distinct outputs    {_percent(r['distinct_fraction']):>8}   "
        f"{r['distinct_primes']} distinct primes",
        f"  p-value             {_p_value_text(r['p_value']):>8}   "
        f"P(chance gives >= {r['primes']} primes in {r['n_samples']})",
    ]
    cells = r["confusion"]
    if cells is None:
        lines.append("  discriminator            n/a   not given")
    else:
        n_prime = cells["true_positives"] + cells["false_negatives"]
        lines.append(f"  discriminator       {_percent(r['balanced_accuracy']):>8}   balanced "
                     f"accuracy; {cells['true_positives']} of {n_prime} primes called prime")
    if verbose >= 1 and cells is not None:
        lines += [
            f"  discriminator verdicts on all outputs (prime when P > {PRIME_THRESHOLD}):",
            f"    {'':12}{'said prime':>14}{'said not':>14}",
            f"    {'prime':12}{cells['true_positives']:>14}{cells['false_negatives']:>14}",
            f"    {'not prime':12}{cells['false_positives']:>14}{cells['true_negatives']:>14}",
        ]
    if verbose >= 2:
        lines += [
            f"  generator outputs in [{r['min_output']:.6g}, {r['max_output']:.6g}], "
            f"odd candidates in [{r['min_candidate']}, {r['max_candidate']}]",
            "  by magnitude: share of outputs, their prime ratio, chance for odd integers in [lo, hi]",
            f"    {'lo':>20} {'hi':>20} {'share':>8} {'primes':>8} {'chance':>8}",
        ]
        lines += [f"    {b['lo']:>20} {b['hi']:>20} {_percent(b['share']):>8} "
                  f"{_percent(b['prime_ratio']):>8} {_percent(b['density']):>8}"
                  for b in r["bins"]]
    samples = r.get("samples") if samples is None else samples
    if verbose >= 3 and samples is not None:
        pairs = ", ".join(f"{z} -> {c}" for z, c in zip(samples["latents"], samples["candidates"]))
        lines += [f"  first latents -> candidates: {pairs}",
                  f"  first distinct primes: {', '.join(map(str, samples['primes'])) or 'none'}"]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Command line

DEFAULTS = {"checkpoint_dir": str(DEFAULT_CHECKPOINT_DIR), "n_samples": N_SAMPLES,
            "low_latent": LOW_LATENT, "high_latent": HIGH_LATENT, "seed": SEED,
            "verbose": VERBOSE, "json": False}
CHECKS = {
    "n_samples": (lambda v: v >= 1, "an integer >= 1"),
    "low_latent": (lambda v: 0 <= v <= MAX_LATENT, f"an integer in [0, {MAX_LATENT}]"),
    "high_latent": (lambda v: 0 <= v <= MAX_LATENT, f"an integer in [0, {MAX_LATENT}]"),
    "seed": (lambda v: v >= 0, "an integer >= 0"),
    "verbose": (lambda v: 0 <= v <= 3, "0, 1, 2 or 3"),
}


def main(argv: list | None = None) -> int:
    """Run the command line; returns the exit status (2 on an OptimusError)."""
    try:
        config = utils.parse_overrides(sys.argv[1:] if argv is None else argv, DEFAULTS, CHECKS)
        report = test_models(n_samples=config["n_samples"], low_latent=config["low_latent"],
                             high_latent=config["high_latent"], seed=config["seed"],
                             checkpoint_dir=config["checkpoint_dir"], verbose=config["verbose"])
    except utils.OptimusError as err:
        print("error: " + " ".join(str(err).splitlines()), file=sys.stderr)
        return 2
    print(json.dumps(report) if config["json"] else format_report(report, config["verbose"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
