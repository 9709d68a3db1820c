"""Speed report for Optimus on this machine: the oracle, training batches, learning speed, evaluation.

Usage: python tests/benchmark.py              (from any directory; about 5 minutes on 2 CPU cores)
       python tests/benchmark.py generators   (only the prime generators' comparison)
       python tests/benchmark.py --help       (this text)

Prints one table, then one last line: ``summary:`` and name=value pairs. It is a report, with no
verdicts of its own: its comparisons are ratios, each measured within one run. The exit
status is 0 unless something crashes, the oracle disagrees with sympy, a generator gives a
non-prime or the main job fails. Timings are wall clock and move with the machine's load, printed
at the start and the end: compare the ratios, not the seconds of different runs.
pytest does not collect this file (it is not ``test_*.py``).

Measured, all with fixed seeds:
- ``oracle.is_prime`` against a plain Python loop of ``sympy.isprime`` on the same values;
- a fresh default training run (train.py's constants, in a temporary folder, test sessions every
  TIME_TO_SCORE_SESSIONS batches): the time from its start to the first test session whose
  held-out score is >= 2, and its batches after the first, split by phase with timing shims;
- batches of the seed's method (real head, scalar discriminator) and of the GLN discriminator,
  reported as ratios: a default batch's seconds over the seed's method's batch;
- ``measuring.test_models`` on EVAL_SAMPLES latents with untrained default networks;
- the README's main job, ``python training/train.py`` with every default but the folder, as a
  subprocess: TensorFlow's import, 100 batches, sessions, saves and the report;
- ``test.py --primes=5 --bits=4096`` as a subprocess: its wall time over the seconds its primes
  took (what it reports), so the rest is the command's start and loading;
- prime generators at 32, 62, 512 and 1024 bits: the shipped pair's sampler (``sampling.draw_primes``),
  uniform rejection, a wheel of candidates coprime to 31#, incremental search and
  ``sympy.randprime``: primes per second, oracle calls per prime and the residue tv of the output;
  Optimus's primes/s over uniform rejection's and over the wheel's at each size, its set-up
  included and after it. When ``openssl`` is on the PATH, ``openssl prime -generate -bits B``
  too, one process per prime (at most OPENSSL_RUNS of them per size): each run is followed by
  one of ``openssl version``, whose time (the process start) is subtracted from the total; what
  remains still holds openssl's own set-up in each process (its random generator's seeding).
"""
import contextlib
import functools
import io
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

USAGE = "usage: python tests/benchmark.py [generators] | --help"


def parse_args(argv: list) -> str:
    """The part to run, "all" or "generators". -h or --help: prints the usage (this module's
    docstring) and exits 0; anything else: one ``error:`` line on stderr and exit 2."""
    if "-h" in argv or "--help" in argv:
        print(__doc__.strip())
        sys.exit(0)
    if argv in ([], ["generators"]):
        return argv[0] if argv else "all"
    print(f"error: unknown argument(s) {' '.join(argv)!r}; {USAGE}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
    MODE = parse_args(sys.argv[1:])  # before TensorFlow's import: --help and bad arguments answer at once

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # ahead of the standard library's own `test` package
os.environ.setdefault("MPLBACKEND", "Agg")

import utils  # noqa: E402
from training import oracle  # noqa: E402

_import_start = time.perf_counter()
utils.quiet_startup()
import keras  # noqa: E402
import numpy as np  # noqa: E402
import sympy  # noqa: E402
import tensorflow as tf  # noqa: E402

from training import measuring, registry, sampling, train, training_utils  # noqa: E402

IMPORT_SECONDS = time.perf_counter() - _import_start

# -- constants ------------------------------------------------------------------------------------
SEED = 0                        # seeds the oracle's values, the weights, latents and sampling
ORACLE_SMALL = 10**6            # random odd n < 2**32 for the oracle comparison
ORACLE_LARGE = 2 * 10**5        # random odd n in [2**32, 2**64) (fewer: the sympy loop is slow)
ORACLE_REPEATS = 3              # oracle.is_prime is timed best of this many, the sympy loop once
SCORE_GOAL = 2.0                # time_to_score2_s: until a session's held-out score reaches this
TIME_TO_SCORE_BATCHES = 30      # batches of the fresh default run
TIME_TO_SCORE_SESSIONS = 5      # a test session every this many batches in that run
OTHER_BATCHES = 3               # timed batches of the seed's method and of the GLN, after a warm-up
EVAL_SAMPLES = 10**5            # latents of the test_models timing
BIG_PRIMES, BIG_BITS = 5, 4096  # test.py --primes=5 --bits=4096: its wall time over its primes' time

# The original on 2 CPU cores (measured on its code after minimal compatibility edits)
ORIGINAL_BATCH_S = 38.0         # one default batch (75 steps), seconds
ORIGINAL_LABEL_RATE = 1.3e3     # primality labels per second

# The prime generators compared: primes drawn by each, per size in bits (the same count for every
# generator of a size, so that their residue tv share one noise floor: the uniform row's)
GENERATOR_PRIMES = {32: 20_000, 62: 5_000, 512: 300, 1024: 100}
GENERATOR_CHUNK = 4096          # candidates per vectorised draw of the hand-written generators
WHEEL_PRIMES = oracle.odd_primes(31)  # the wheel's candidates avoid 3, 5, ..., 31
OPENSSL_RUNS = 500              # at most this many `openssl prime` processes per size (each ~5 ms)
OPTIMUS = "Optimus (the shipped pair)"
UNIFORM = "uniform rejection"
WHEEL = "wheel 31# (by hand)"
# -------------------------------------------------------------------------------------------------


def best_time(fn, repeats: int) -> float:
    """Shortest wall time of ``repeats`` calls of fn(), in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


# ---------------------------------------------------------------------------------------------
# Oracle


def random_odd(rng: np.random.Generator, low_half: int, high_half: int, size: int) -> np.ndarray:
    """`size` odd uint64 values 2*h+1, h uniform in [low_half, high_half)."""
    halves = rng.integers(low_half, high_half, size=size, dtype=np.uint64)
    return halves * np.uint64(2) + np.uint64(1)


def compare_oracle(values: np.ndarray) -> dict:
    """Throughputs (ints/s) of oracle.is_prime and of a sympy.isprime loop, and whether they agree."""
    fast = oracle.is_prime(values)  # warm-up, and the answer to check
    fast_s = best_time(lambda: oracle.is_prime(values), ORACLE_REPEATS)
    start = time.perf_counter()
    slow = [sympy.isprime(int(v)) for v in values]
    slow_s = time.perf_counter() - start
    return {"n": values.size, "fast": values.size / fast_s, "sympy": values.size / slow_s,
            "agree": bool(np.array_equal(fast, np.array(slow, dtype=bool)))}


# ---------------------------------------------------------------------------------------------
# Training


class PhaseTimer:
    """Wall time of wrapped functions, summed by name."""

    def __init__(self):
        self.seconds = defaultdict(float)

    def wrap(self, name: str, fn):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - start
        return timed


@contextlib.contextmanager
def shims(targets: list):
    """Replace (module, name, wrapper) attributes for the duration; restore them on exit."""
    originals = [(module, name, getattr(module, name)) for module, name, _ in targets]
    try:
        for module, name, wrapper in targets:
            setattr(module, name, wrapper(getattr(module, name)))
        yield
    finally:
        for module, name, fn in originals:
            setattr(module, name, fn)


def fresh_default_run() -> dict:
    """train.train with the defaults in a temporary folder; when each session came and each phase's time.

    Returns batches (train.py's rows), sessions [(seconds since start, held-out score)] and the
    phase seconds of every batch after the first (which compiles).
    """
    timer, sessions, start = PhaseTimer(), [], [0.0]
    phases = [(training_utils, name, functools.partial(timer.wrap, name))
              for name in ("sampled_candidates", "label", "undersample", "train_score_function", "consolidate")]
    phases += [(train.checkpoint, "save", functools.partial(timer.wrap, "save"))]

    def session(fn):
        def timed(*args, **kwargs):
            result = fn(*args, **kwargs)
            sessions.append((time.perf_counter() - start[0], result["beyond"]["score"]))
            return result
        return timed
    first_batch = {}

    def run_batch(fn):
        def timed(trainer, config, rng, batch):
            if batch == 2:  # compilation is over: count phases from here
                first_batch.update(timer.seconds)
            return fn(trainer, config, rng, batch)
        return timed
    with tempfile.TemporaryDirectory() as directory:
        config = train.parse_config([f"--checkpoint_dir={directory}", f"--nb_batches={TIME_TO_SCORE_BATCHES}",
                                     f"--test_session_occurrences={TIME_TO_SCORE_SESSIONS}"])
        with shims([*phases, (train, "test_session", session), (train, "run_batch", run_batch)]), \
                contextlib.redirect_stdout(io.StringIO()):
            start[0] = time.perf_counter()
            state = train.train(config)
    after_first = {k: v - first_batch.get(k, 0.0) for k, v in timer.seconds.items()}
    return {"batches": state["history"], "sessions": sessions, "phases": after_first}


def other_batches(argv: list) -> list:
    """Seconds of OTHER_BATCHES batches of a fresh run with ``argv``, after one warm-up batch."""
    config = train.parse_config(argv)
    keras.utils.set_random_seed(SEED)
    trainer = registry.build_trainer(config)
    rng = np.random.default_rng(SEED)
    train.run_batch(trainer, config, rng, 1)
    return [train.run_batch(trainer, config, rng, batch)["seconds"]
            for batch in range(2, 2 + OTHER_BATCHES)]


def main_job_seconds() -> tuple:
    """(wall seconds, exit status) of the README's main job, in a temporary folder."""
    with tempfile.TemporaryDirectory() as directory:
        start = time.perf_counter()
        result = subprocess.run([sys.executable, str(ROOT / "training" / "train.py"),
                                 f"--checkpoint_dir={directory}"], capture_output=True, text=True)
        return time.perf_counter() - start, result.returncode


def big_primes_seconds() -> tuple:
    """(wall seconds, seconds its primes took as it reports them, exit status) of
    ``test.py --primes=BIG_PRIMES --bits=BIG_BITS``: the command's start and loading beside the draw."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, str(ROOT / "test.py"), f"--primes={BIG_PRIMES}",
                             f"--bits={BIG_BITS}", f"--seed={SEED}"], capture_output=True, text=True)
    wall = time.perf_counter() - start
    drawn = re.search(r" in ([0-9.]+) s:", result.stderr)
    return wall, float(drawn.group(1)) if drawn else float("nan"), result.returncode


# ---------------------------------------------------------------------------------------------
# Prime generators: Optimus's sampler against the ones people use, at sizes in bits


def odd_uniform(rng: np.random.Generator, bits: int, size: int) -> np.ndarray:
    """``size`` odd integers uniform among those of ``bits`` binary digits."""
    halves = utils.random_integers(2 ** (bits - 2), 2 ** (bits - 1) - 1, size, rng)
    return 2 * halves + 1


def rejection(bits: int, count: int, rng, wheel: bool) -> tuple:
    """Uniform odd candidates tested until ``count`` are prime (wheel: only those coprime to
    3 * 5 * ... * 31 are tested, the others are dropped by their residues). (primes, oracle calls)."""
    found, calls, drawn, chunk = [], 0, 0, 64
    while len(found) < count:
        candidates = odd_uniform(rng, bits, chunk)
        drawn += chunk
        if wheel:
            coprime = np.ones(candidates.size, bool)
            for p in WHEEL_PRIMES:
                coprime &= utils.residues(candidates, p) != 0
            candidates = candidates[coprime]
        primes = oracle.is_prime(candidates)
        hits = np.flatnonzero(primes)[:count - len(found)]
        calls += (hits[-1] + 1) if len(hits) == count - len(found) else candidates.size
        found += [int(v) for v in candidates[hits]]
        rate = max(len(found), 1) / drawn  # draw about what the rest needs: little tested in vain
        chunk = int(min(GENERATOR_CHUNK, max(64, 1.2 * (count - len(found)) / rate)))
    return found, int(calls)


def incremental(bits: int, count: int, rng) -> tuple:
    """The next prime after a uniform odd start (what sympy.randprime and OpenSSL do, the latter
    behind a sieve), one oracle call per odd integer tried, vectorised over the starts."""
    n = odd_uniform(rng, bits, count)
    done = np.zeros(count, bool)
    calls = 0
    while not done.all():
        open_ = np.flatnonzero(~done)
        primes = oracle.is_prime(n[open_])
        calls += open_.size
        done[open_[primes]] = True
        n[open_[~primes]] += 2
    return [int(v) for v in n], calls


def randprime(bits: int, count: int, rng) -> tuple:
    """sympy.randprime over the size's range, seeded from ``rng`` (its oracle calls are its own)."""
    sympy.core.random.seed(int(rng.integers(2**32)))
    return [int(sympy.randprime(2 ** (bits - 1), 2**bits)) for _ in range(count)], None


def output_residue_tv(primes: list) -> float:
    """The largest TV over odd p <= 31 between the primes' residues mod p and uniform over 1..p-1."""
    values = utils.integers(primes)
    weights = np.full(len(primes), 1.0 / len(primes))
    return max(measuring._residue_tv(utils.residues(values, p).astype(np.int64), weights, p) for p in WHEEL_PRIMES)


def compare_generators(generator, openssl, sizes=GENERATOR_PRIMES) -> tuple:
    """One row per (bits, generator): primes/s, oracle calls per prime, residue tv, all checked
    prime and of the size; Optimus's sampler share of its time. ``generator``: the shipped
    pair's, or None when it cannot be loaded (its rows are then left out); ``openssl``: the
    command's path, or None (its rows are left out). Returns (rows, notes on rows left out)."""
    rows, notes = [], []
    for bits, count in sizes.items():
        makers = {UNIFORM: lambda r: rejection(bits, count, r, wheel=False),
                  WHEEL: lambda r: rejection(bits, count, r, wheel=True),
                  "incremental search": lambda r: incremental(bits, count, r),
                  "sympy.randprime": lambda r: randprime(bits, count, r)}
        if generator is not None:
            makers = {OPTIMUS: lambda r: optimus_primes(generator, bits, count, r), **makers}
        for name, make in makers.items():
            start = time.perf_counter()
            primes, calls, *share = make(np.random.default_rng(SEED))
            seconds = time.perf_counter() - start
            share, setup = share[0] if share else (None, 0.0)
            rows.append({"bits": bits, "name": name, "primes": count, "rate": count / seconds,
                         "rate_after_setup": count / (seconds - setup), "setup": setup,
                         "calls": None if calls is None else calls / count,
                         "residue_tv": output_residue_tv(primes), "ok": checked(primes, bits, count),
                         "sampler_share": share})
        if openssl is not None:
            try:
                rows.append(openssl_row(openssl, bits, min(count, OPENSSL_RUNS)))
            except (subprocess.CalledProcessError, ValueError, OSError) as err:
                notes.append(f"openssl prime failed at {bits} bits, its row is left out: {utils.one_line(err)}")
    return rows, notes


def checked(primes: list, bits: int, count: int) -> bool:
    """Whether ``primes`` are ``count`` primes of ``bits`` binary digits (oracle.is_prime)."""
    return (len(primes) == count and all(p.bit_length() == bits for p in primes)
            and bool(np.all(oracle.is_prime(utils.integers(primes)))))


def openssl_row(openssl: str, bits: int, count: int) -> dict:
    """``count`` runs of ``openssl prime -generate -bits bits``, each followed by one of ``openssl
    version``: primes/s over the difference of their total times, that is with the process start
    subtracted (None when the difference is not positive: lost in the start's noise). The first
    prime is checked by sympy.isprime, all by oracle.is_prime and their size."""
    primes, prime_s, start_s = [], 0.0, 0.0
    for _ in range(count):  # interleaved, so that both see the same load
        tick = time.perf_counter()
        out = subprocess.run([openssl, "prime", "-generate", "-bits", str(bits)],
                             capture_output=True, text=True, check=True).stdout
        prime_s += time.perf_counter() - tick
        tick = time.perf_counter()
        subprocess.run([openssl, "version"], capture_output=True, check=True)
        start_s += time.perf_counter() - tick
        primes.append(int(out.strip()))
    work = prime_s - start_s
    return {"bits": bits, "primes": count, "rate": count / work if work > 0 else None,
            "name": f"openssl prime -generate, its process start ({1e3 * start_s / count:.1f} ms) subtracted",
            "rate_after_setup": None, "setup": 0.0, "calls": None, "sampler_share": None,
            "residue_tv": output_residue_tv(primes),
            "ok": bool(sympy.isprime(primes[0])) and checked(primes, bits, count)}


def optimus_primes(generator, bits: int, count: int, rng) -> tuple:
    lo, hi = 2 ** (bits - 1), 2**bits - 1
    primes, stats = sampling.draw_primes(generator, count, lo, hi, seed=int(rng.integers(2**32)))
    return primes, stats["tested"], (stats["sampler_seconds"] / stats["seconds"], stats["setup_seconds"])


def shipped_generator():
    """The shipped generator, or None (and why) when training/ holds no loadable pair."""
    from training import checkpoint
    try:
        return checkpoint.load_generator(ROOT / "training"), ""  # test.py --primes's own
    except (utils.OptimusError, OSError, ValueError) as err:
        return None, utils.one_line(err)


def generator_table(rows: list) -> list:
    """The comparison as markdown lines (the README's table), with ratios of primes/s to uniform
    rejection's and to the wheel's; Optimus's also after its set-up."""
    lines = ["| bits | generator | primes | primes/s | x uniform | x wheel 31# | "
             "after set-up: primes/s, x uniform, x wheel 31# | oracle calls per prime | residue tv | checked |",
             "|---|---|---|---|---|---|---|---|---|---|"]

    def rate(value):
        return "n/a (within its process start's noise)" if value is None else f"{value:,.{0 if value >= 100 else 1}f}"

    def times(value, base):
        return "n/a" if value is None else ratio(value / base)
    for row in rows:
        base = {r["name"]: r["rate"] for r in rows if r["bits"] == row["bits"]}
        uniform, wheel = base[UNIFORM], base[WHEEL]
        calls = "n/a (its own)" if row["calls"] is None else f"{row['calls']:.1f}"
        after = ("" if row["sampler_share"] is None else
                 f"{rate(row['rate_after_setup'])}, {times(row['rate_after_setup'], uniform)}, "
                 f"{times(row['rate_after_setup'], wheel)} "
                 f"({row['setup']:.1f} s set-up; {row['sampler_share']:.0%} of all in the sampler)")
        lines.append(f"| {row['bits']} | {row['name']} | {row['primes']:,} | {rate(row['rate'])} | "
                     f"{times(row['rate'], uniform)} | {times(row['rate'], wheel)} | {after} | {calls} | "
                     f"{row['residue_tv']:.3f} | {'yes' if row['ok'] else 'NO'} |")
    return lines


def ratio(value: float) -> str:
    """A ratio with two decimals, or two significant digits below 0.1 (Optimus's at 32 bits)."""
    return f"{value:.2f}" if value >= 0.1 else f"{value:.2g}"


def optimus_ratios(rows: list) -> dict:
    """{bits: (over uniform, over the wheel, the same two after the set-up)} of Optimus's primes/s;
    empty without Optimus's rows."""
    ratios = {}
    for row in rows:
        if row["name"] == OPTIMUS:
            base = {r["name"]: r["rate"] for r in rows if r["bits"] == row["bits"]}
            ratios[row["bits"]] = (row["rate"] / base[UNIFORM], row["rate"] / base[WHEEL],
                                   row["rate_after_setup"] / base[UNIFORM], row["rate_after_setup"] / base[WHEEL])
    return ratios


# ---------------------------------------------------------------------------------------------
# Report


class Table:
    """Rows of name, value and note, printed as aligned text."""

    def __init__(self):
        self.lines = []

    def title(self, text: str) -> None:
        self.lines.append(text)

    def row(self, name: str, value: str, note: str = "") -> None:
        self.lines.append(f"  {name:<36} {value:>12}   {note}".rstrip())

    def __str__(self) -> str:
        return "\n".join(self.lines)


def generators_report() -> tuple:
    """(the comparison's text lines, failures, summary name=value pairs)."""
    generator, why = shipped_generator()
    openssl = shutil.which("openssl")
    rows, notes = compare_generators(generator, openssl)
    lines = [f"Prime generators at {', '.join(map(str, GENERATOR_PRIMES))} bits, one process, seed {SEED} "
             "(residue tv: of the output primes; the uniform row's is the noise floor at that count, "
             f"higher for openssl's where it draws fewer: at most {OPENSSL_RUNS})"]
    if generator is None:
        lines.append(f"  the shipped pair could not be loaded, its rows are left out: {why}")
    if openssl is None:
        lines.append("  openssl is not on the PATH: its rows are left out")
    lines += [f"  {note}" for note in notes]
    lines += generator_table(rows)
    ratios = optimus_ratios(rows)
    pairs = []
    for bits, (uniform, wheel, uniform_after, wheel_after) in ratios.items():
        lines.append(f"  Optimus's primes/s at {bits} bits: {ratio(uniform)}x uniform rejection's, "
                     f"{ratio(wheel)}x the wheel 31#'s, its set-up included; {ratio(uniform_after)}x and "
                     f"{ratio(wheel_after)}x after it")
        pairs += [f"optimus_vs_uniform_{bits}={ratio(uniform)}", f"optimus_vs_wheel_{bits}={ratio(wheel)}"]
    failures = [f"{r['name']} at {r['bits']} bits gave a non-prime or a wrong size" for r in rows if not r["ok"]]
    return lines, failures, pairs


def main(mode: str) -> int:
    """Runs the report, "all" or "generators" (parse_args's answer); its exit status."""
    if mode == "generators":
        lines, failures, pairs = generators_report()
        print("\n".join(lines), flush=True)
        for text in failures:
            print(f"error: {text}", file=sys.stderr, flush=True)
        print("summary: " + " ".join(pairs), flush=True)
        return 1 if failures else 0
    load_start = os.getloadavg()
    wall_start = time.perf_counter()
    tf.config.experimental.enable_op_determinism()  # as train.py does

    rng = np.random.default_rng(SEED)
    small = compare_oracle(random_odd(rng, 0, 2**31, ORACLE_SMALL))
    large = compare_oracle(random_odd(rng, 2**31, 2**63, ORACLE_LARGE))

    keras.utils.set_random_seed(SEED)
    config = train.parse_config([])
    start = time.perf_counter()
    generator = registry.build(registry.generator_architecture(config), "generator")
    discriminator = registry.build(registry.discriminator_architecture(config), "discriminator")
    report = measuring.test_models(generator, discriminator, n_samples=EVAL_SAMPLES, seed=SEED)
    eval_s = time.perf_counter() - start

    run = fresh_default_run()
    rows = run["batches"][1:]
    batch_s = statistics.median(row["seconds"] for row in rows)
    reached = [t for t, score in run["sessions"] if score >= SCORE_GOAL]
    time_to_score = reached[0] if reached else float("inf")
    seed_s = statistics.median(other_batches(["--generator_head=real", "--discriminator=seed", "--discriminator_input=scalar"]))
    gln_s = statistics.median(other_batches(["--discriminator=gln"]))
    main_s, main_status = main_job_seconds()
    big_wall, big_drawn, big_status = big_primes_seconds()
    generator_lines, generator_failures, generator_pairs = generators_report()
    load_end = os.getloadavg()

    table = Table()
    table.title(f"Optimus benchmark: {os.cpu_count()} CPU cores, TensorFlow {tf.__version__}, "
                f"Keras {keras.__version__}, numpy {np.__version__}, sympy {sympy.__version__}, seed {SEED}")
    table.title("  load average (1, 5, 15 min): at start " + " ".join(f"{v:.2f}" for v in load_start)
                + ", at end " + " ".join(f"{v:.2f}" for v in load_end)
                + " (other processes slow every timing)")
    table.title(f"  imports (TensorFlow, Keras, the project) {IMPORT_SECONDS:.1f} s, not counted below")

    table.title("Primality oracle: oracle.is_prime (best of "
                f"{ORACLE_REPEATS}) vs [sympy.isprime(int(v)) for v in a], same values")
    oracle_ratio = small["fast"] / small["sympy"]
    for text, result in (("n < 2^32", small), ("2^32 <= n < 2^64", large)):
        table.row(f"oracle_vs_sympy, {text}", f"{result['fast'] / result['sympy']:.1f}x",
                  f"{result['n']:,} random odd n; {result['fast'] / 1e6:.2f} vs "
                  f"{result['sympy'] / 1e6:.2f} M ints/s; same answers: {result['agree']}")
    table.row("  vs the original's labelling", f"{small['fast'] / ORIGINAL_LABEL_RATE:,.0f}x",
              f"its {ORIGINAL_LABEL_RATE / 1e3:g} thousand ints/s (tf.map_fn over sympy)")

    table.title(f"A fresh default run: {TIME_TO_SCORE_BATCHES} batches, a test session every "
                f"{TIME_TO_SCORE_SESSIONS}, op determinism on")
    table.row("time_to_score2_s", f"{time_to_score:.1f} s",
              "from the start of train() to the end of the first session whose held-out score "
              f">= {SCORE_GOAL:g}; sessions: " + ", ".join(f"{s:.2f} at {t:.0f} s" for t, s in run["sessions"]))
    table.row("first batch (traces, compiles)", f"{run['batches'][0]['seconds']:.2f} s")
    table.row("batch_s, median of the others", f"{batch_s:.2f} s",
              f"min {min(r['seconds'] for r in rows):.2f}, max {max(r['seconds'] for r in rows):.2f}; "
              f"the discriminator's batch grows from {rows[0]['kept']} to {rows[-1]['kept']} rows as "
              "more candidates are prime")
    phases, total = run["phases"], sum(r["seconds"] for r in rows)
    table.title(f"  where those {len(rows)} batches went (timing shims; saves and sessions are outside batches):")
    for name, text in (("sampled_candidates", "sample the offsets"), ("label", "oracle labels"),
                       ("undersample", "undersampling"), ("train_score_function", "D phase + G phase (compiled)"),
                       ("consolidate", "Fisher of both networks, EWC")):
        table.row(f"  {text}", f"{100 * phases[name] / total:.1f} %", f"{1e3 * phases[name] / len(rows):.1f} ms per batch")
    table.row("  checkpoint save, per batch", f"{1e3 * phases['save'] / len(rows):.0f} ms", "six files, one commit")

    table.title("Other methods, same machine and run")
    table.row("seed's method batch (real, scalar)", f"{seed_s:.2f} s",
              f"median of {OTHER_BATCHES} after a warm-up; {ORIGINAL_BATCH_S / seed_s:.0f}x faster than "
              f"the original's {ORIGINAL_BATCH_S:g} s")
    table.row("default batch / seed's batch", f"{batch_s / seed_s:.2f}x",
              f"{batch_s:.2f} s over {seed_s:.2f} s (the seed's batch is {seed_s / batch_s:.1f}x the default's)")
    table.row("GLN discriminator batch", f"{gln_s:.2f} s", f"{gln_s / batch_s:.1f}x the default's")

    table.title("Evaluation and the main job")
    table.row("eval_100k_s, measuring.test_models", f"{eval_s:.2f} s",
              f"{EVAL_SAMPLES:,} latents, untrained default networks (score {report['score']:.3f}); "
              "model building and first calls included, TF import not")
    table.row("main_job_s, the README's main job", f"{main_s:.0f} s",
              f"python training/train.py, 100 default batches, TF import included (exit {main_status})")
    table.row(f"test.py --primes={BIG_PRIMES} --bits={BIG_BITS}", f"{big_wall / big_drawn:.2f}x",
              f"its wall time over its primes' time: {big_wall:.1f} s over {big_drawn:.1f} s, the "
              f"process's start and loading included (exit {big_status})")
    for line in generator_lines:
        table.title(line)
    table.row("benchmark wall time", f"{time.perf_counter() - wall_start:.0f} s", "imports excluded")

    failures = [text for ok, text in (
        (small["agree"] and large["agree"], "oracle.is_prime disagrees with sympy.isprime"),
        (main_status == 0, f"the main job exited with status {main_status}"),
        (big_status == 0, f"test.py --primes={BIG_PRIMES} --bits={BIG_BITS} exited with status {big_status}"),
    ) if not ok] + generator_failures
    print(table, flush=True)
    for text in failures:
        print(f"error: {text}", file=sys.stderr, flush=True)
    print(f"summary: oracle_vs_sympy={oracle_ratio:.1f} oracle_Mps={small['fast'] / 1e6:.2f} "
          f"batch_s={batch_s:.2f} time_to_score2_s={time_to_score:.1f} seed_batch_s={seed_s:.2f} "
          f"default_over_seed_batch={batch_s / seed_s:.2f} gln_batch_s={gln_s:.2f} "
          f"eval_100k_s={eval_s:.2f} main_job_s={main_s:.0f} primes_4096_over_draw={big_wall / big_drawn:.2f} "
          + " ".join(generator_pairs), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(MODE))
