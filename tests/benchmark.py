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
- ``test.py --lengths`` as a subprocess: the shipped pair's whole length curve, CPU and wall time;
- ``test.py --primes=5 --bits=4096`` as a subprocess: its wall time over the seconds it reports
  (loading the generator and reading its sieve included), so the rest is the process's start;
- prime generators at every size of GENERATOR_PRIMES, 16 to 4096 bits: ``test.py --primes``'s own
  work on the shipped pair (loading the generator, reading its sieve, the stream), a wheel of the
  odd primes up to 31 and uniform rejection, both written as a user would (``secrets`` and
  ``gmpy2.is_prime``), in interleaved rounds; CPU and wall seconds per prime, set-up included,
  and each one's speed against the wheel's and uniform's. Incremental search and
  ``sympy.randprime`` too, up to SLOW_REFERENCE_BITS. Oracle calls per prime and the residue tv
  of the output beside them.
"""
import contextlib
import functools
import io
import math
import os
import re
import secrets
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
import gmpy2  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import sympy  # noqa: E402
import tensorflow as tf  # noqa: E402

from training import measuring, registry, train, training_utils  # noqa: E402

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
EWC_BATCHES = 5                 # timed batches with EWC and with it cut out, after a warm-up
HARD_TRACK = ["--generator_input=discriminator", "--generator_layers=0", "--discriminator_input=bits",
              "--discriminator_loss=bce", "--reader=periods", "--discriminator_activation=sin",
              "--generator_activation=sin", "--high_latent=10000"]  # the forgetting sweep's first phase
EVAL_SAMPLES = 10**5            # latents of the test_models timing
BIG_PRIMES, BIG_BITS = 5, 4096  # test.py --primes=5 --bits=4096: its wall time over its primes' time

# The original on 2 CPU cores (measured on its code after minimal compatibility edits)
ORIGINAL_BATCH_S = 38.0         # one default batch (75 steps), seconds
ORIGINAL_LABEL_RATE = 1.3e3     # primality labels per second

# The prime generators compared: primes drawn by each, per size in bits (the same count for every
# generator of a size, so that their residue tv share one noise floor: the uniform row's)
GENERATOR_PRIMES = {16: 100_000, 32: 100_000, 62: 40_000, 64: 40_000, 128: 10_000, 256: 3_000,
                    512: 600, 1024: 150, 2048: 30, 4096: 10}
ROUNDS = 5                      # interleaved rounds of Optimus, the wheel and uniform
SLOW_REFERENCE_BITS = 1024      # incremental search and sympy.randprime only from 32 bits up to this ...
SLOW_REFERENCE_PRIMES = 300     # ... and for at most this many primes
WHEEL_PRIMES = oracle.odd_primes(31)  # the wheel's candidates avoid 3, 5, ..., 31
WHEEL_PRODUCT = math.prod(WHEEL_PRIMES)
OPTIMUS = "Optimus (test.py --primes, the shipped pair)"
UNIFORM = "uniform rejection (gmpy2)"
WHEEL = "wheel 31# (gmpy2)"
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


def ewc_seconds(argv: list, with_ewc: bool) -> tuple:
    """(CPU, wall) seconds of EWC_BATCHES batches of a fresh run with ``argv`` after a warm-up one:
    as they are, or with EWC cut out (no Fisher, no consolidation, no penalty in the steps)."""
    def no_penalty(penalty):
        def zero(ewc, network, lambda_):
            return tf.constant(0.0)
        return zero
    cut = [] if with_ewc else [(training_utils, "consolidate", lambda fn: lambda *args: None),
                               (training_utils.EWC, "penalty", no_penalty)]
    with shims(cut):
        config = train.parse_config(argv)
        keras.utils.set_random_seed(SEED)
        trainer = registry.build_trainer(config)  # its steps are traced with the penalty, or without
        rng = np.random.default_rng(SEED)
        train.run_batch(trainer, config, rng, 1)
        cpu, wall = time.process_time(), time.perf_counter()
        for batch in range(2, 2 + EWC_BATCHES):
            train.run_batch(trainer, config, rng, batch)
        return time.process_time() - cpu, time.perf_counter() - wall


def ewc_shares() -> dict:
    """{track: (CPU share, wall share)} of EWC in a batch: 1 - time without it / time with it."""
    shares = {}
    for track, argv in (("default", []), ("hard track", HARD_TRACK)):
        (cpu, wall), (cpu_cut, wall_cut) = ewc_seconds(argv, True), ewc_seconds(argv, False)
        shares[track] = (1 - cpu_cut / cpu, 1 - wall_cut / wall)
    return shares


def main_job_seconds() -> tuple:
    """(wall seconds, exit status) of the README's main job, in a temporary folder."""
    with tempfile.TemporaryDirectory() as directory:
        start = time.perf_counter()
        result = subprocess.run([sys.executable, str(ROOT / "training" / "train.py"),
                                 f"--checkpoint_dir={directory}"], capture_output=True, text=True)
        return time.perf_counter() - start, result.returncode


def length_curve_seconds() -> tuple:
    """(CPU seconds, wall seconds, exit status) of ``test.py --lengths`` on the shipped pair, a
    process of its own: TensorFlow's import and loading included."""
    start, wall = os.times(), time.perf_counter()
    result = subprocess.run([sys.executable, str(ROOT / "test.py"), "--lengths"], capture_output=True, text=True)
    end = os.times()
    return end.children_user + end.children_system - start.children_user - start.children_system, \
        time.perf_counter() - wall, result.returncode


def big_primes_seconds() -> tuple:
    """(wall seconds, seconds its primes took as it reports them, exit status) of
    ``test.py --primes=BIG_PRIMES --bits=BIG_BITS``: the command's start and loading beside the draw."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, str(ROOT / "test.py"), f"--primes={BIG_PRIMES}",
                             f"--bits={BIG_BITS}", f"--seed={SEED}"], capture_output=True, text=True)
    wall = time.perf_counter() - start
    drawn = re.search(r" in ([0-9.]+) s;", result.stderr)
    return wall, float(drawn.group(1)) if drawn else float("nan"), result.returncode


# ---------------------------------------------------------------------------------------------
# Prime generators: Optimus's sampler against the ones people use, at sizes in bits


def reference_primes(bits: int, count: int, wheel: bool) -> tuple:
    """What a user would write: a uniform odd integer of ``bits`` digits from the OS (``secrets``),
    tested by ``gmpy2.is_prime`` with the oracle's certainty (ORACLE_REPS rounds), until ``count``
    are prime; wheel: those with a factor in WHEEL_PRIMES (one gcd) are dropped untested.
    (primes, oracle calls)."""
    found, calls, top, reps = [], 0, 2 ** (bits - 1) + 1, oracle.ORACLE_REPS
    while len(found) < count:
        n = top | secrets.randbits(bits - 1)
        if wheel and gmpy2.gcd(n, WHEEL_PRODUCT) != 1 and n not in WHEEL_PRIMES:
            continue
        calls += 1
        if gmpy2.is_prime(n, reps):
            found.append(int(n))
    return found, calls


def incremental(bits: int, count: int, rng) -> tuple:
    """The next prime after a uniform odd start (what sympy.randprime and OpenSSL do, the latter
    behind a sieve), one oracle call per odd integer tried, vectorised over the starts."""
    halves = utils.random_integers(2 ** (bits - 2), 2 ** (bits - 1) - 1, count, rng)
    n = 2 * (halves if bits < 63 else halves.astype(object)) + 1  # 2 * halves leaves int64 from 64 bits
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


def optimus_stream(bits: int):
    """test.py --primes's own work as a function of a count: the first call loads the shipped
    generator (no TensorFlow) and reads its sieve, and every call continues one stream of fresh
    entropy. Each call returns (primes, oracle calls) of its own."""
    from training import checkpoint, primes
    lo, hi, state = 2 ** (bits - 1), 2**bits - 1, {}

    def draw(count: int) -> tuple:
        if not state:
            sieve, _ = primes.learned_sieve(checkpoint.load_generator(ROOT / "training"), lo, hi)
            state["stats"] = {}
            state["stream"] = primes.stream(sieve, lo, hi, primes.source(None), state["stats"])
            state["left"], state["tested"] = [], 0
        found = state["left"]
        while len(found) < count:
            found += next(state["stream"])
        state["left"], tested = found[count:], state["stats"]["tested"] - state["tested"]
        state["tested"] = state["stats"]["tested"]
        return found[:count], tested
    return draw


def compare_generators(sizes=GENERATOR_PRIMES) -> list:
    """One row per (bits, generator): CPU and wall seconds per prime, set-up included, oracle calls
    per prime, the output's residue tv, and whether all are primes of the size. Optimus, the wheel
    and uniform rejection run in interleaved rounds (ROUNDS), so that all three see the same load."""
    rows = []
    for bits, count in sizes.items():
        per_round, optimus = max(count // ROUNDS, 1), optimus_stream(bits)
        makers = {OPTIMUS: lambda: optimus(per_round),
                  WHEEL: lambda: reference_primes(bits, per_round, wheel=True),
                  UNIFORM: lambda: reference_primes(bits, per_round, wheel=False)}
        totals = {name: [[], 0, 0.0, 0.0] for name in makers}  # primes, calls, cpu, wall
        for _ in range(ROUNDS):
            for name, make in makers.items():
                cpu, wall = time.process_time(), time.perf_counter()
                found, calls = make()
                total = totals[name]
                total[0] += found
                total[1] += calls
                total[2] += time.process_time() - cpu
                total[3] += time.perf_counter() - wall
        if 32 <= bits <= SLOW_REFERENCE_BITS:  # below 32 bits a next prime may leave the size
            few = min(count, SLOW_REFERENCE_PRIMES)
            for name, make in (("incremental search", incremental), ("sympy.randprime", randprime)):
                cpu, wall = time.process_time(), time.perf_counter()
                found, calls = make(bits, few, np.random.default_rng(SEED))
                totals[name] = [found, calls, time.process_time() - cpu, time.perf_counter() - wall]
        for name, (found, calls, cpu, wall) in totals.items():
            rows.append({"bits": bits, "name": name, "primes": len(found), "cpu": cpu / len(found),
                         "wall": wall / len(found), "calls": None if calls is None else calls / len(found),
                         "cpu_per_call": None if not calls else cpu / calls,
                         "residue_tv": output_residue_tv(found), "ok": checked(found, bits, len(found))})
    return rows


def checked(primes: list, bits: int, count: int) -> bool:
    """Whether ``primes`` are ``count`` primes of ``bits`` binary digits (oracle.is_prime)."""
    return (len(primes) == count and all(p.bit_length() == bits for p in primes)
            and bool(np.all(oracle.is_prime(utils.integers(primes)))))


def generator_table(rows: list) -> list:
    """The comparison as markdown lines: seconds per prime, and each generator's speed against the
    wheel's and uniform rejection's (their seconds over its own: > 1 is faster), in CPU and wall time."""
    lines = ["| bits | generator | primes | CPU s per prime | wall s per prime | wheel's CPU over its | "
             "uniform's CPU over its | wheel's wall over its | oracle calls per prime | CPU s per oracle call "
             "| residue tv | checked |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        base = {r["name"]: r for r in rows if r["bits"] == row["bits"]}
        calls = "n/a (its own)" if row["calls"] is None else f"{row['calls']:.1f}"
        lines.append(f"| {row['bits']} | {row['name']} | {row['primes']:,} | {row['cpu']:.2e} | {row['wall']:.2e} | "
                     f"{ratio(base[WHEEL]['cpu'] / row['cpu'])} | {ratio(base[UNIFORM]['cpu'] / row['cpu'])} | "
                     f"{ratio(base[WHEEL]['wall'] / row['wall'])} | {calls} | "
                     f"{'n/a' if row['cpu_per_call'] is None else format(row['cpu_per_call'], '.2e')} | "
                     f"{row['residue_tv']:.3f} | "
                     f"{'yes' if row['ok'] else 'NO'} |")
    return lines


def ratio(value: float) -> str:
    """A ratio with two decimals, or two significant digits below 0.1."""
    return f"{value:.2f}" if value >= 0.1 else f"{value:.2g}"


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
    rows = compare_generators()
    lines = [f"Prime generators at {', '.join(map(str, GENERATOR_PRIMES))} bits, one process, the "
             f"set-up included (Optimus: loading the generator and reading its sieve), {ROUNDS} "
             "interleaved rounds; Optimus, the wheel and uniform rejection draw from the OS (secrets, "
             f"os.urandom) and test with gmpy2's certainty of the oracle ({oracle.ORACLE_REPS} rounds). "
             "Residue tv: of the output primes, the uniform row's is the noise floor at that count"]
    lines += generator_table(rows)
    pairs = []
    for row in rows:
        if row["name"] == OPTIMUS:
            base = {r["name"]: r for r in rows if r["bits"] == row["bits"]}
            wheel_cpu, wheel_wall = base[WHEEL]["cpu"] / row["cpu"], base[WHEEL]["wall"] / row["wall"]
            uniform_cpu = base[UNIFORM]["cpu"] / row["cpu"]
            per_call = base[WHEEL]["cpu_per_call"] / row["cpu_per_call"]
            lines.append(f"  Optimus at {row['bits']} bits: {ratio(wheel_cpu)}x the wheel's speed in CPU time "
                         f"({ratio(wheel_wall)}x in wall time), {ratio(uniform_cpu)}x uniform rejection's; "
                         f"per oracle call {ratio(per_call)}x the wheel's (both sieve by 3 to 31, so at the "
                         "same expected calls per prime this is the ratio without the count's noise)")
            pairs += [f"optimus_vs_wheel_cpu_{row['bits']}={ratio(wheel_cpu)}",
                      f"optimus_vs_wheel_per_call_{row['bits']}={ratio(per_call)}",
                      f"optimus_vs_uniform_cpu_{row['bits']}={ratio(uniform_cpu)}"]
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
    ewc = ewc_shares()
    main_s, main_status = main_job_seconds()
    big_wall, big_drawn, big_status = big_primes_seconds()
    curve_cpu, curve_wall, curve_status = length_curve_seconds()
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
    for track, (cpu, wall) in ewc.items():
        table.row(f"EWC's share of a {track} batch", f"{100 * cpu:.0f} % CPU",
                  f"{100 * wall:.0f} % wall: {EWC_BATCHES} batches after a warm-up, against the same with "
                  "no Fisher, no consolidation and no penalty in the steps")

    table.title("Evaluation and the main job")
    table.row("eval_100k_s, measuring.test_models", f"{eval_s:.2f} s",
              f"{EVAL_SAMPLES:,} latents, untrained default networks (score {report['score']:.3f}); "
              "model building and first calls included, TF import not")
    table.row("main_job_s, the README's main job", f"{main_s:.0f} s",
              f"python training/train.py, 100 default batches, TF import included (exit {main_status})")
    table.row(f"test.py --primes={BIG_PRIMES} --bits={BIG_BITS}", f"{big_wall / big_drawn:.2f}x",
              f"its wall time over its primes' time: {big_wall:.1f} s over {big_drawn:.1f} s, the "
              f"process's start and loading included (exit {big_status})")
    table.row("test.py --lengths, the whole command", f"{curve_cpu:.1f} s CPU",
              f"{curve_wall:.1f} s wall: the shipped pair's length curves, 24 to 4096 digits, with the "
              f"calibration rows (exit {curve_status})")
    for line in generator_lines:
        table.title(line)
    table.row("benchmark wall time", f"{time.perf_counter() - wall_start:.0f} s", "imports excluded")

    failures = [text for ok, text in (
        (small["agree"] and large["agree"], "oracle.is_prime disagrees with sympy.isprime"),
        (main_status == 0, f"the main job exited with status {main_status}"),
        (big_status == 0, f"test.py --primes={BIG_PRIMES} --bits={BIG_BITS} exited with status {big_status}"),
        (curve_status == 0, f"test.py --lengths exited with status {curve_status}"),
    ) if not ok] + generator_failures
    print(table, flush=True)
    for text in failures:
        print(f"error: {text}", file=sys.stderr, flush=True)
    print(f"summary: oracle_vs_sympy={oracle_ratio:.1f} oracle_Mps={small['fast'] / 1e6:.2f} "
          f"batch_s={batch_s:.2f} time_to_score2_s={time_to_score:.1f} seed_batch_s={seed_s:.2f} "
          f"default_over_seed_batch={batch_s / seed_s:.2f} gln_batch_s={gln_s:.2f} "
          f"ewc_share_cpu={ewc['default'][0]:.2f} ewc_share_hard_cpu={ewc['hard track'][0]:.2f} "
          f"eval_100k_s={eval_s:.2f} main_job_s={main_s:.0f} primes_4096_over_draw={big_wall / big_drawn:.2f} "
          f"length_curve_cpu_s={curve_cpu:.1f} "
          + " ".join(generator_pairs), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(MODE))
