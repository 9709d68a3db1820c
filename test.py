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
import json
import math
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
from training import checkpoint, model  # noqa: E402

# Defaults
N_SAMPLES = 10_000              # latent integers drawn in each range
TRAINING_RANGE = (1, 10**6)     # train.py's default latents; a checkpoint's own range replaces it
BEYOND_FACTOR = 10              # the held-out range runs from the training range's end to 10x it
SEED = 0                        # seed of the latent draws
VERBOSE = 0                     # 0 headline, 1 + confusion table, 2 + magnitude bins, 3 + samples
CALIBRATION_RANGE = (1, 10**5)  # latents of --calibration: 2310z+1 stays below 2.4e8

PRIME_THRESHOLD = 0.5           # the discriminator says "prime" when P(prime) is above this
LOG_EPSILON = 1e-7              # probabilities are clipped to [eps, 1-eps] in a log-loss
UNIFORM_DRAWS = 10              # uniform outputs drawn per sample, to find enough primes for a balanced set
SMALL_PRIMES = (3, 5, 7)        # the report gives the share of outputs divisible by each
SHOWN_SAMPLES = 10              # numbers listed at verbose 3
DEFAULT_CHECKPOINT_DIR = REPO_ROOT / "training"
CSV_HEADER = "latent,candidate,is_prime"

RULES = {
    "n_samples": utils.at_least(1),
    "low_latent": utils.between(0, model.LATENT_LIMIT, "an integer"),
    "high_latent": utils.between(0, model.LATENT_LIMIT, "an integer"),
    "beyond_latent": utils.between(0, model.LATENT_LIMIT, "an integer"),
    "seed": utils.at_least(0),
    "verbose": utils.one_of(0, 1, 2, 3),
}


# ---------------------------------------------------------------------------------------------
# Measuring


def draw(generator, n_samples: int, low_latent: int, high_latent: int, seed=None) -> tuple:
    """(z, x): ``n_samples`` distinct latents in [low_latent, high_latent] and the outputs for them.

    generator: a generator part (``registry.load_network``) or a stand-in with the same
    ``outputs(z) -> x``. Raises OptimusError on bad arguments and GeneratorDivergedError on bad
    outputs.
    """
    n_samples = utils.check("n_samples", n_samples, N_SAMPLES, RULES["n_samples"])
    low_latent = utils.check("low_latent", low_latent, 0, utils.between(1, model.LATENT_LIMIT, "an integer"))
    high_latent = utils.check("high_latent", high_latent, 0, RULES["high_latent"])
    if seed is not None:
        seed = utils.check("seed", seed, SEED, RULES["seed"])
    if low_latent > high_latent:
        raise utils.OptimusError(f"low_latent={low_latent} must be <= high_latent={high_latent}")
    span = high_latent - low_latent + 1
    if n_samples > span:
        raise utils.OptimusError(
            f"n_samples={n_samples} is more than the {span} latents of [{low_latent}, {high_latent}]: "
            "lower n_samples or widen the range")
    z = utils.random_vector_integers(low_latent, high_latent, n_samples, np.random.default_rng(seed))
    x = model.check_outputs(generator.outputs(z))
    if x.size != n_samples:
        raise ValueError(f"generator returned {x.size} values for {n_samples} latents")
    return z, x


def _magnitude_bins(candidates: np.ndarray, primes: np.ndarray, chance: np.ndarray) -> list:
    """Per power-of-two bin [2^k, 2^(k+1)) that holds candidates: its share, prime rate and chance."""
    bins = []
    exponent = np.floor(np.log2(candidates.astype(np.float64))).astype(int)
    for k in np.unique(exponent):
        inside = exponent == k
        bins.append({"lo": int(2**k), "hi": int(2 ** (k + 1) - 1), "share": float(inside.mean()),
                     "prime_ratio": float(primes[inside].mean()),
                     "chance": float(chance[inside].mean())})
    return bins


def _log_loss(p: np.ndarray, primes: np.ndarray) -> float:
    p = np.clip(p.astype(np.float64), LOG_EPSILON, 1 - LOG_EPSILON)
    return float(-np.mean(np.where(primes, np.log(p), np.log(1 - p))))


def _judge(discriminator, x: np.ndarray, primes: np.ndarray) -> dict:
    """The discriminator's verdicts on outputs x, shape (n,): confusion cells, balanced accuracy,
    log-loss, and the log-loss of the best constant (the prime share) for comparison."""
    p = np.asarray(discriminator.beliefs(x), dtype=np.float64).reshape(-1)
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


def _judge_uniform(discriminator, x: np.ndarray) -> dict:
    """``_judge`` on uniform random outputs in [min(x), max(x)], half of them prime.

    The discriminator learned from batches undersampled to half primes, so its probabilities
    answer that balance: here a constant 0.5 has log-loss ln 2. Seeded by the size of x.
    """
    uniform = np.random.default_rng(x.size).uniform(x.min(), x.max(), UNIFORM_DRAWS * x.size).round()
    primes = utils.is_prime(utils.to_odd_integer(uniform))
    half = min(primes.sum(), (~primes).sum(), x.size // 2)
    chosen = np.concatenate([np.flatnonzero(primes)[:half], np.flatnonzero(~primes)[:half]])
    result = _judge(discriminator, uniform[chosen], primes[chosen])
    return {k: v for k, v in result.items() if k != "confusion"}


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


def measure(z: np.ndarray, x: np.ndarray, discriminator=None, verbose: int = VERBOSE) -> dict:
    """The report on outputs x of latents z (from ``draw``): primes against chance, and D's verdicts.

    Returns a JSON-serialisable dict: n_samples; primes and prime_ratio (all outputs); distinct_outputs,
    distinct_fraction and distinct_primes; chance (the mean local density: chance's prime rate at
    these magnitudes) and expected_primes (its sum); score = distinct_primes / expected_primes
    and score_sd (chance's spread); p_value (one-sided binomial test of distinct_primes);
    multiples (share of outputs divisible by 3, 5, 7); without a discriminator None, else its
    confusion, balanced_accuracy and log-loss on the outputs, and discriminator_on_uniform: its
    balanced accuracy and log-loss (and the best constant's) on uniform odd candidates at the
    same magnitudes, half of them prime; output and candidate ranges; bins; and at verbose 3,
    samples.
    """
    candidates = utils.to_odd_integer(x)
    primes = utils.is_prime(candidates)
    chance = utils.local_density(candidates)
    distinct, first = np.unique(candidates, return_index=True)
    distinct_primes = int(primes[first].sum())
    n = candidates.size
    expected = float(chance.sum())
    judged = None if discriminator is None else _judge(discriminator, x, primes)
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
        "multiples": {str(p): float(np.mean(candidates % np.uint64(p) == 0)) for p in SMALL_PRIMES},
        "confusion": None if judged is None else judged["confusion"],
        "balanced_accuracy": None if judged is None else judged["balanced_accuracy"],
        "discriminator_log_loss": None if judged is None else judged["log_loss"],
        # the same discriminator on uniform odd candidates at the outputs' magnitudes, where
        # residues tell primes apart (the outputs themselves may all avoid small factors)
        "discriminator_on_uniform": None if judged is None else _judge_uniform(discriminator, x),
        "min_output": float(x.min()), "max_output": float(x.max()),
        "min_candidate": int(distinct[0]), "max_candidate": int(distinct[-1]),
        "bins": _magnitude_bins(candidates, primes, chance),
    }
    if verbose >= 3:
        report["samples"] = {"latents": [int(v) for v in z[:SHOWN_SAMPLES]],
                             "candidates": [int(v) for v in candidates[:SHOWN_SAMPLES]],
                             "primes": _first_distinct(candidates[primes], SHOWN_SAMPLES)}
    return report


def test_models(generator, discriminator=None, n_samples: int = N_SAMPLES,
                low_latent: int = TRAINING_RANGE[0], high_latent: int = TRAINING_RANGE[1],
                seed=None, verbose: int = VERBOSE, samples: list | None = None) -> dict:
    """``measure`` on ``n_samples`` latents drawn in [low_latent, high_latent] (see ``draw``).

    samples: a list that receives the draw's (z, x), for ``write_candidates``.
    """
    verbose = utils.check("verbose", verbose, VERBOSE, RULES["verbose"])
    z, x = draw(generator, n_samples, low_latent, high_latent, seed)
    if samples is not None:
        samples.append((z, x))
    return {**measure(z, x, discriminator, verbose), "low_latent": low_latent,
            "high_latent": high_latent, "seed": seed}


def beyond_range(high_latent: int, beyond_latent: int = 0) -> tuple | None:
    """The held-out latents (high_latent, end]: end = beyond_latent, or by default
    min(BEYOND_FACTOR * high_latent, LATENT_LIMIT). None when no latent is left beyond."""
    end = beyond_latent or min(BEYOND_FACTOR * high_latent, model.LATENT_LIMIT)
    return (high_latent + 1, end) if end > high_latent else None


def evaluate(generator, discriminator, n_samples: int, low_latent: int, high_latent: int,
             seed=None, beyond_latent: int = 0, verbose: int = VERBOSE, samples: list | None = None) -> dict:
    """Reports on the training range and on the range beyond it, each with its own draw.

    Returns {"in_range": report, "beyond": report or None}. samples: a list that receives the
    (z, x) of each draw, for ``write_candidates``.
    """
    ranges = (("in_range", (low_latent, high_latent)), ("beyond", beyond_range(high_latent, beyond_latent)))
    return {name: None if bounds is None else
            test_models(generator, discriminator, n_samples, *bounds, seed, verbose, samples)
            for name, bounds in ranges}


def write_candidates(path: str, samples: list, stream=None) -> None:
    """Write every (latent, candidate, is_prime) of ``samples`` as CSV to ``path``.

    path "-" writes to ``stream`` (stdout); a file is replaced in one step, never left half written.
    """
    lines = [CSV_HEADER]
    for z, x in samples:
        candidates = utils.to_odd_integer(x)
        primes = utils.is_prime(candidates)
        lines += [f"{a},{b},{int(c)}" for a, b, c in zip(z.tolist(), candidates.tolist(), primes)]
    text = "\n".join(lines) + "\n"
    if path == "-":
        (stream or sys.stdout).write(text)
        return
    try:
        checkpoint.write_atomic(Path(path), text.encode())
    except OSError as err:
        raise utils.OptimusError(f"{path}: cannot write the candidates ({err.strerror or err})")


# ---------------------------------------------------------------------------------------------
# Calibration: generators whose scores number theory predicts


def _progression(modulus: int):
    """The generator of the candidates modulus*z + 1 (x = modulus*z/2)."""
    return lambda z: (modulus // 2) * z


CALIBRATION = (  # (name, generator of x, the expected score)
    ("uniform odd, 2z+1", lambda z: z, 1.0),
    ("6z+1", _progression(6), 6 / (2 * 2)),
    ("30z+1", _progression(30), 30 / (2 * 8)),
    ("210z+1", _progression(210), 210 / (2 * 48)),
    ("2310z+1", _progression(2310), 2310 / (2 * 480)),
    ("constant 7", lambda z: np.full_like(z, 3.0), 0.0),
    ("two primes, 7 and 11", lambda z: 3.0 + 2.0 * (z % 2), 0.0),
)


class _Map:
    """A stand-in network: f applied to float64 values, as a generator's outputs(z) or a
    discriminator's beliefs(x)."""

    def __init__(self, f):
        self.f = f

    def outputs(self, z) -> np.ndarray:
        return np.asarray(self.f(np.asarray(z, dtype=np.float64).reshape(-1, 1))).reshape(-1)

    beliefs = outputs


def calibration(n_samples: int, seed=None) -> list:
    """test_models of each CALIBRATION generator on latents in CALIBRATION_RANGE."""
    return [{"name": name, "expected": expected,
             **test_models(_Map(f), None, n_samples, *CALIBRATION_RANGE, seed)}
            for name, f, expected in CALIBRATION]


def format_calibration(rows: list) -> str:
    """The calibration as a markdown table."""
    lines = [f"{rows[0]['n_samples']} latents in [{CALIBRATION_RANGE[0]}, {CALIBRATION_RANGE[1]}]",
             "", "| generator | expected | score | p-value | distinct outputs |", "|---|---|---|---|---|"]
    lines += [f"| {r['name']} | {r['expected']:.3f} | {r['score']:.3f} +- {r['score_sd']:.3f} | "
              f"{p_value_text(r['p_value'])} | {_percent(r['distinct_fraction'])} |" for r in rows]
    return "\n".join(lines)


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


def format_report(result: dict, verbose: int = VERBOSE) -> str:
    """The result of ``evaluate`` as readable lines: the two ranges side by side.

    verbose: 0 headline figures; 1 adds the discriminator's confusion tables; 2 adds the output
    ranges and the per-magnitude-bin breakdown; 3 adds sample latents, candidates and primes.
    """
    reports = [(name, r) for name, r in (("in range", result["in_range"]),
                                         ("beyond", result.get("beyond"))) if r is not None]
    first = reports[0][1]
    seed = "unseeded" if first.get("seed") is None else f"seed {first['seed']}"
    rows = [f"Optimus test: {first['n_samples']} latents in each range ({seed})",
            _columns("", [name for name, _ in reports]),
            _columns("latents", [f"[{r['low_latent']}, {r['high_latent']}]" for _, r in reports],
                     "training range" + ("; the range beyond was never trained on"
                                         if len(reports) > 1 else "")),
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
    rows.append(_columns("discriminator", [_percent(r["balanced_accuracy"]) for _, r in reports],
                         "balanced accuracy on the outputs"))
    if all(r["discriminator_on_uniform"] for _, r in reports):
        rows.append(_columns("  on uniform odd", [
            f"{_percent(r['discriminator_on_uniform']['balanced_accuracy'])}, "
            f"{r['discriminator_on_uniform']['log_loss']:.3f}" for _, r in reports],
            "balanced accuracy, log-loss (a constant: 0.693), half primes"))
    for name, r in reports:
        cells = r["confusion"]
        if verbose >= 1 and cells is not None:
            rows += [f"  {name}: discriminator verdicts (prime when P > {PRIME_THRESHOLD})",
                     f"    {'':12}{'said prime':>14}{'said not':>14}",
                     f"    {'prime':12}{cells['true_positives']:>14}{cells['false_negatives']:>14}",
                     f"    {'not prime':12}{cells['false_positives']:>14}{cells['true_negatives']:>14}"]
        if verbose >= 2:
            rows += [f"  {name}: outputs in [{r['min_output']:.6g}, {r['max_output']:.6g}], "
                     f"candidates in [{r['min_candidate']}, {r['max_candidate']}]",
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

DEFAULTS = {"checkpoint_dir": str(DEFAULT_CHECKPOINT_DIR), "n_samples": N_SAMPLES,
            "low_latent": 0, "high_latent": 0, "beyond_latent": 0, "seed": SEED,
            "verbose": VERBOSE, "json": False, "candidates": "", "calibration": False}


def _training_range(config: dict) -> tuple:
    """The latents to test as in range: given, else the checkpoint's own, else TRAINING_RANGE."""
    if config["low_latent"] or config["high_latent"]:
        return config["low_latent"] or TRAINING_RANGE[0], config["high_latent"] or TRAINING_RANGE[1]
    trained = checkpoint.read_state(config["checkpoint_dir"]).get("config", {})
    return trained.get("low_latent", TRAINING_RANGE[0]), trained.get("high_latent", TRAINING_RANGE[1])


def main(argv: list | None = None) -> int:
    """Run the command line; returns the exit status (2 on an OptimusError)."""
    try:
        config = utils.parse_overrides(sys.argv[1:] if argv is None else argv, DEFAULTS, RULES)
        if config["json"] and config["candidates"] == "-":
            raise utils.OptimusError("--json --candidates=-: both would write to stdout; give "
                                     "--candidates a file name")
        if config["calibration"]:
            text = format_calibration(calibration(config["n_samples"], config["seed"]))
            print(text)
            return 0
        generator, discriminator = checkpoint.load_networks(config["checkpoint_dir"])
        low, high = _training_range(config)
        samples = []
        result = evaluate(generator, discriminator, config["n_samples"], low, high, config["seed"],
                          config["beyond_latent"], config["verbose"], samples)
        if config["candidates"]:
            write_candidates(config["candidates"], samples)
    except utils.OptimusError as err:
        utils.print_error(err)
        return 2
    report = json.dumps(result) if config["json"] else format_report(result, config["verbose"])
    print(report, file=sys.stderr if config["candidates"] == "-" else sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
