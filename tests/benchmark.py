"""Speed report for Optimus on this machine: oracle, training batch, Fisher and evaluation.

Usage: python tests/benchmark.py   (from any directory; well under a minute on 2 CPU cores)

Prints one table, then one last line: ``summary:`` and oracle_vs_sympy, oracle_Mps, batch_s,
step_ms, label_share (in %), fisher_s and eval_100k_s as name=value pairs.
Targets are marked PASS or MISS and the exit status is 0 either way: this is a report. It is
non-zero when something crashes, when the oracle disagrees with sympy, or when the compiled
step was traced more than once. Timings are wall clock and move with the machine's load,
printed at the start and the end. pytest does not collect this file (it is not ``test_*.py``).

Measured, all with fixed seeds:
- ``utils.is_prime`` against a plain Python loop of ``sympy.isprime`` on the same values;
- default training batches through ``train.run_batch`` with ``train.DEFAULTS`` on fresh default
  models: one warm-up batch compiles, the next TIMED_BATCHES are timed. Timing shims around the
  functions run_batch calls give the breakdown and the labelling share;
- one more batch under cProfile, split into TensorFlow's native execution, the oracle, Python;
- ``training_utils.compute_fisher`` alone (both networks, ``nb_samples`` latents, warm);
- ``test.test_models`` on EVAL_SAMPLES latents, cold: building the models and all first calls
  count, only the TensorFlow import does not;
- an arithmetic floor for one step: its matmul FLOPs over the best float32 matmul rate that
  TensorFlow reaches here.
"""
import contextlib
import cProfile
import functools
import io
import os
import pstats
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # ahead of the standard library's own `test` package
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")

import utils  # noqa: E402

_import_start = time.perf_counter()
utils.import_quietly("tensorflow", "keras")
import absl.logging  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import sympy  # noqa: E402
import tensorflow as tf  # noqa: E402

import test  # noqa: E402
from training import model, train, training_utils  # noqa: E402

IMPORT_SECONDS = time.perf_counter() - _import_start

# -- constants ------------------------------------------------------------------------------------
SEED = 0                        # seeds the oracle's values, the weights, latents and dropout
ORACLE_SMALL = 10**6            # random odd n < 2**32 for the oracle comparison
ORACLE_LARGE = 2 * 10**5        # random odd n in [2**32, 2**64) (fewer: the sympy loop is slow)
ORACLE_REPEATS = 3              # utils.is_prime is timed best of this many, the sympy loop once
TIMED_BATCHES = 3               # warm default batches timed after the warm-up; batch_s: median
SWEEP_SIZES = (300, 1000, 4000)  # batch sizes run afterwards to show the step is not retraced
SWEEP_STEPS = 2                 # steps per sweep batch
FISHER_REPEATS = 3              # compute_fisher timings after a warm-up call; fisher_s: median
EVAL_SAMPLES = 10**5            # latents of the test_models timing
DISPATCH_CALLS = 300            # calls of a no-op tf.function, to price one call
MATMUL_REPEATS = 20             # rounds of step and matmul probe calls; the fastest counts
MATMUL_CHAIN = 4                # forward-pass matmul groups chained in one probe call
SQUARE = 1024                   # side of the square matmul probe

# The original on 2 CPU cores (FACTS.md)
ORIGINAL_BATCH_S = 38.0         # one default batch (75 steps), seconds
ORIGINAL_FISHER_BATCH_S = 42.1  # the next batch, with its Fisher computation, seconds
ORIGINAL_LABEL_RATE = 1.3e3     # primality labels per second

# Targets on 2 cores
TARGET_ORACLE_VS_SYMPY = 10.0   # utils.is_prime / sympy loop throughput, n < 2**32, at least
TARGET_BATCH_S = 2.0            # seconds per warm default batch, at most
TARGET_LABEL_SHARE = 5.0        # % of the step loop spent labelling, at most
TARGET_EVAL_S = 3.0             # seconds for test_models on EVAL_SAMPLES latents, at most
# -------------------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


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
    """Throughputs (ints/s) of utils.is_prime and of a sympy.isprime loop, and whether they agree."""
    fast = utils.is_prime(values)  # warm-up, and the answer to check
    fast_s = best_time(lambda: utils.is_prime(values), ORACLE_REPEATS)
    start = time.perf_counter()
    slow = [sympy.isprime(int(v)) for v in values]
    slow_s = time.perf_counter() - start
    return {"n": values.size, "fast": values.size / fast_s, "sympy": values.size / slow_s,
            "agree": bool(np.array_equal(fast, np.array(slow, dtype=bool)))}


# ---------------------------------------------------------------------------------------------
# Training batches


class PhaseTimer:
    """Wall time of wrapped functions, keyed by the chain of wrapped callers.

    A call of ``label`` made inside ``train_batch`` is counted under "train_batch/label".
    """

    def __init__(self):
        self.seconds = defaultdict(float)
        self._stack = []

    def wrap(self, name: str, fn):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            self._stack.append(name)
            key = "/".join(self._stack)
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[key] += time.perf_counter() - start
                self._stack.pop()
        return timed


@contextlib.contextmanager
def timing_shims(timer: PhaseTimer, trainer: training_utils.Trainer):
    """Route the calls of run_batch through ``timer``; everything is restored on exit.

    train.py and training_utils look these functions up as module attributes when they call
    them, so replacing the attributes times the real code path. The compiled step is wrapped
    through the trainer instance, leaving the Trainer class untouched.
    """
    targets = [(utils, "random_vector_integers")]
    targets += [(training_utils, name) for name in
                ("generate", "check_outputs", "label", "sampling", "train_batch", "compute_fisher")]
    originals = [(module, name, getattr(module, name)) for module, name in targets]
    step = timer.wrap("step", trainer.step_fn())
    try:
        for module, name, fn in originals:
            setattr(module, name, timer.wrap(name, fn))
        trainer.step_fn = lambda: step
        yield timer
    finally:
        for module, name, fn in originals:
            setattr(module, name, fn)
        del trainer.step_fn


def quiet_batch(trainer: training_utils.Trainer, config: dict, rng: np.random.Generator) -> tuple:
    """train.run_batch with its progress bar captured; returns (CSV row, wall seconds)."""
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        row = train.run_batch(trainer, config, rng)
    return row, time.perf_counter() - start


def profile_split(profiler: cProfile.Profile) -> dict:
    """Seconds of a profiled run in TensorFlow's native execution, in the oracle, and the rest."""
    stats = pstats.Stats(profiler)
    native = oracle = 0.0
    for (path, _, name), (_, _, own, cumulative, _) in stats.stats.items():
        if name.startswith("<built-in method tensorflow.python._pywrap_tfe.TFE_Py") and "Execute" in name:
            native += own
        elif name == "is_prime" and Path(path).resolve() == ROOT / "utils.py":
            oracle += cumulative
    return {"total": stats.total_tt, "native": native, "oracle": oracle,
            "python": stats.total_tt - native - oracle}


def dispatch_seconds() -> float:
    """Wall time of one call of a no-op tf.function with the step's signature, outputs fetched."""
    spec = tf.TensorSpec([None, 1], tf.float32)

    @tf.function(input_signature=[spec, spec])
    def noop(z, labels):
        return tf.reduce_sum(z), tf.reduce_sum(labels), z

    z, labels = np.ones((2, 500, 1), np.float32)
    z = tf.constant(z)

    def call():
        g_loss, d_loss, x = noop(z, tf.constant(labels))
        x.numpy(), float(g_loss), float(d_loss)

    call()
    return best_time(lambda: [call() for _ in range(DISPATCH_CALLS)], 3) / DISPATCH_CALLS


def measure_training(config: dict) -> dict:
    """Warm-up, timed, profiled and sweep batches on a fresh trainer; their figures."""
    keras.utils.set_random_seed(SEED)
    trainer = training_utils.Trainer.create(
        model.initialize_generator(original=config["original_generator"],
                                    negative_l2=config["negative_l2"]),
        model.initialize_discriminator(), config["lr"], config["lambda_"],
        config["discriminator_loss"])
    rng = np.random.default_rng(SEED)
    _, warmup_s = quiet_batch(trainer, config, rng)
    timer = PhaseTimer()
    times, kept = [], []
    with timing_shims(timer, trainer):
        for _ in range(TIMED_BATCHES):
            row, seconds = quiet_batch(trainer, config, rng)
            if row["skipped"]:
                raise RuntimeError("a timed batch was skipped: no prime among its candidates")
            times.append(seconds)
            kept.append(row["kept"])
    profiler = cProfile.Profile()
    with contextlib.redirect_stdout(io.StringIO()):
        profiler.enable()
        train.run_batch(trainer, config, rng)
        profiler.disable()
    # The undersampled size differs from batch to batch; these differ more.
    for size in SWEEP_SIZES:
        quiet_batch(trainer, dict(config, batch_size=size, steps=SWEEP_STEPS), rng)
    fisher_z = utils.random_vector_integers(config["low_latent"], config["high_latent"],
                                            config["nb_samples"], rng)
    training_utils.compute_fisher(trainer, fisher_z, config["fisher_decay"])
    fisher = []
    for _ in range(FISHER_REPEATS):
        start = time.perf_counter()
        training_utils.compute_fisher(trainer, fisher_z, config["fisher_decay"])
        fisher.append(time.perf_counter() - start)
    return {"trainer": trainer, "warmup_s": warmup_s, "times": times, "kept": kept,
            "timer": timer, "profile": profile_split(profiler),
            "trace_count": trainer.trace_count, "fisher_s": statistics.median(fisher)}


# ---------------------------------------------------------------------------------------------
# Arithmetic floor


def kernel_macs(network) -> int:
    """Multiply-adds per row in the Dense kernels of ``network`` (biases, activations excluded)."""
    return sum(int(np.prod(layer.kernel.shape)) for layer in network.layers
               if isinstance(layer, keras.layers.Dense))


def step_flops(rows: int, g_macs: int, d_macs: int) -> int:
    """Matmul FLOPs of one training step on ``rows`` samples: a lower bound on its work.

    A forward pass costs 2*macs*rows; a backward pass twice that for weight and input gradients,
    once that for input gradients only. The step runs G forward twice (training pass, returned
    outputs) and D forward twice (the generator's reward, its own training pass), then
    backward: G fully, D fully for its own loss, and D's input gradients for the generator's.
    """
    forward = 2 * (2 * g_macs + 2 * d_macs)
    backward = 4 * g_macs + 4 * d_macs + 2 * d_macs
    return rows * (forward + backward)


def measure_floor(trainer: training_utils.Trainer, config: dict, rng: np.random.Generator) -> dict:
    """Best times of the compiled step and of float32 matmul probes, called in alternation.

    The step runs on one freshly drawn and undersampled default batch. Alternating the calls
    exposes all of them to the same load from other processes, so their ratio stays meaningful
    on a busy machine. Probes: a group is the matmul sequence of one forward pass of both
    networks, 10 of (rows,100)@(100,100), then (rows,100)@(100,1000), (rows,1000)@(1000,100)
    and 4 more (rows,100)@(100,100); two independent chains of groups run per call, as G and D
    can in the step, chained so that every product is needed. The other probe is one square
    matmul. Returns rows, the step's best seconds and each probe's best FLOP/s.
    """
    z = utils.random_vector_integers(config["low_latent"], config["high_latent"],
                                     config["batch_size"], rng)
    labels = training_utils.label(training_utils.generate(trainer.generator, z))
    kept = training_utils.sampling(labels, config["wanted_prime_ratio"],
                                   config["minimum_batch_size"], rng)
    rows = kept.size
    z_t = tf.constant(z[kept].astype(np.float32).reshape(-1, 1))
    y_t = tf.constant(labels[kept].reshape(-1, 1))
    step = trainer.step_fn()

    weights = np.random.default_rng(SEED)

    def matrix(k: int, m: int) -> tf.Tensor:
        return tf.constant(weights.standard_normal((k, m), dtype=np.float32) / np.sqrt(k))

    square = [matrix(100, 100) for _ in range(14)]
    widen, narrow = matrix(100, 1000), matrix(1000, 100)

    def group(a):
        for w in square[:10]:
            a = tf.matmul(a, w)
        a = tf.matmul(tf.matmul(a, widen), narrow)
        for w in square[10:]:
            a = tf.matmul(a, w)
        return a

    @tf.function
    def chains(a, b):
        for _ in range(MATMUL_CHAIN):
            a, b = group(a), group(b)
        return a + b

    a, b, big = matrix(rows, 100), matrix(rows, 100), matrix(SQUARE, SQUARE)
    product = tf.function(lambda m: tf.matmul(m, m))
    calls = {"step": lambda: step(z_t, y_t)[2].numpy(),
             "shapes": lambda: chains(a, b).numpy(),
             "square": lambda: product(big).numpy()}
    best = {name: best_time(fn, 1) for name, fn in calls.items()}  # also compiles the probes
    for _ in range(MATMUL_REPEATS):
        for name, fn in calls.items():
            best[name] = min(best[name], best_time(fn, 1))
    shaped_flops = 2 * MATMUL_CHAIN * 2 * rows * (14 * 100 * 100 + 2 * 100 * 1000)
    return {"rows": rows, "step_s": best["step"],
            "rates": {"shapes": shaped_flops / best["shapes"], "square": 2 * SQUARE**3 / best["square"]}}


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


def batch_breakdown(table: Table, timer: PhaseTimer, total_s: float, steps: int, batches: int) -> None:
    """Rows for where the timed batches' wall time went, from the timing shims."""
    def share(seconds: float) -> str:
        return f"{100 * seconds / total_s:.1f} %"

    seconds = timer.seconds
    table.title(f"  where the {batches} timed batches' {total_s:.2f} s went (timing shims):")
    table.row("  draw latents", share(seconds["random_vector_integers"]))
    before = seconds["generate"] + seconds["label"] + seconds["sampling"]
    table.row("  generate + label + sampling", share(before),
              f"{1e3 * before / batches:.0f} ms per batch, before the steps")
    loop = seconds["train_batch"]
    table.row("  train_batch (the step loop)", share(loop), f"{1e3 * loop / steps:.2f} ms per step")
    step = seconds["train_batch/step"]
    labelling = seconds["train_batch/label"] + seconds["train_batch/check_outputs"]
    table.row("    compiled step call", share(step), f"{1e3 * step / steps:.2f} ms per step "
              "(TF runtime + tf.function dispatch)")
    table.row("    labelling", share(labelling),
              f"{1e3 * labelling / steps:.2f} ms per step (check_outputs + label)")
    other = loop - step - labelling
    table.row("    Python around the call", share(other), f"{1e3 * other / steps:.2f} ms per step "
              "(tensors in and out, losses to float, progress bar)")
    fisher = seconds["compute_fisher"]
    inner = seconds["compute_fisher/generate"] + seconds["compute_fisher/label"]
    table.row("  compute_fisher", share(fisher),
              f"{1e3 * fisher / batches:.0f} ms per batch, of which generate + label "
              f"{1e3 * inner / batches:.1f} ms")
    rest = total_s - sum(seconds[k] for k in ("random_vector_integers", "generate", "label",
                                              "sampling", "train_batch", "compute_fisher"))
    table.row("  rest (progress bar, row stats)", share(rest))


def main() -> int:
    absl.logging.set_verbosity(absl.logging.ERROR)
    load_start = os.getloadavg()
    wall_start = time.perf_counter()

    rng = np.random.default_rng(SEED)
    small = compare_oracle(random_odd(rng, 0, 2**31, ORACLE_SMALL))
    large = compare_oracle(random_odd(rng, 2**31, 2**63, ORACLE_LARGE))

    keras.utils.set_random_seed(SEED)
    tf.config.experimental.enable_op_determinism()  # as train.py does
    start = time.perf_counter()
    report = test.test_models(model.initialize_generator(), model.initialize_discriminator(),
                              n_samples=EVAL_SAMPLES, seed=SEED)
    eval_s = time.perf_counter() - start

    config = dict(train.DEFAULTS)
    run = measure_training(config)
    batch_s = statistics.median(run["times"])
    total_s = sum(run["times"])
    steps = config["steps"] * TIMED_BATCHES
    timer = run["timer"]
    loop_s = timer.seconds["train_batch"]
    step_ms = 1e3 * loop_s / steps
    labelling_s = timer.seconds["train_batch/label"] + timer.seconds["train_batch/check_outputs"]
    label_share = 100 * labelling_s / loop_s
    label_rate = config["steps"] * sum(run["kept"]) / labelling_s
    call_ms = 1e3 * timer.seconds["train_batch/step"] / steps
    dispatch_ms = 1e3 * dispatch_seconds()

    floor = measure_floor(run["trainer"], config, np.random.default_rng(SEED + 1))
    rows, rates = floor["rows"], floor["rates"]
    g_macs = kernel_macs(run["trainer"].generator)
    d_macs = kernel_macs(run["trainer"].discriminator)
    flops = step_flops(rows, g_macs, d_macs)
    rate = max(rates.values())
    floor_ms = 1e3 * flops / rate
    alone_ms = 1e3 * floor["step_s"]
    load_end = os.getloadavg()

    table = Table()
    table.title(f"Optimus benchmark: {os.cpu_count()} CPU cores, TensorFlow {tf.__version__}, "
                f"numpy {np.__version__}, sympy {sympy.__version__}, seed {SEED}")
    table.title("  load average (1, 5, 15 min): at start " + " ".join(f"{v:.2f}" for v in load_start)
                + ", at end " + " ".join(f"{v:.2f}" for v in load_end)
                + " (other processes slow every timing)")
    table.title(f"  imports (TensorFlow, Keras, the project) {IMPORT_SECONDS:.1f} s, not counted below")

    table.title("Primality oracle: utils.is_prime (best of "
                f"{ORACLE_REPEATS}) vs [sympy.isprime(int(v)) for v in a], same values")
    oracle_ratio = small["fast"] / small["sympy"]
    for text, result in (("n < 2^32", small), ("2^32 <= n < 2^64", large)):
        table.row(f"oracle_vs_sympy, {text}", f"{result['fast'] / result['sympy']:.1f}x",
                  f"{result['n']:,} random odd n; {result['fast'] / 1e6:.2f} vs "
                  f"{result['sympy'] / 1e6:.2f} M ints/s; same answers: {result['agree']}")
    table.row("  target, n < 2^32", f">= {TARGET_ORACLE_VS_SYMPY:g}x",
              verdict(oracle_ratio >= TARGET_ORACLE_VS_SYMPY))

    table.title(f"Training batch: train.run_batch with train.DEFAULTS (batch_size="
                f"{config['batch_size']}, steps={config['steps']}), fresh default models, "
                "op determinism on")
    table.row("warm-up batch (traces, compiles)", f"{run['warmup_s']:.2f} s")
    table.row("batch_s, median of timed batches", f"{batch_s:.2f} s",
              f"each {', '.join(f'{t:.2f}' for t in run['times'])} s; undersampled to "
              f"{', '.join(map(str, run['kept']))} rows")
    table.row("  target", f"<= {TARGET_BATCH_S:g} s", verdict(batch_s <= TARGET_BATCH_S))
    table.row("  speed-up vs the original", f"{ORIGINAL_BATCH_S / batch_s:.1f}x",
              f"its {ORIGINAL_BATCH_S:g} s per batch")
    table.row("step_ms, train_batch / steps", f"{step_ms:.2f} ms")
    table.row("label_share of the step loop", f"{label_share:.2f} %",
              "check_outputs + label on each step's outputs")
    table.row("  target", f"<= {TARGET_LABEL_SHARE:g} %", verdict(label_share <= TARGET_LABEL_SHARE))
    table.row("  label speed-up vs the original", f"{label_rate / ORIGINAL_LABEL_RATE:,.0f}x",
              f"{label_rate / 1e3:,.0f} thousand ints/s in the loop vs its "
              f"{ORIGINAL_LABEL_RATE / 1e3:g}; bulk oracle {small['fast'] / ORIGINAL_LABEL_RATE:,.0f}x")
    batch_breakdown(table, timer, total_s, steps, TIMED_BATCHES)
    table.row("  tf.function call, no-op body", f"{dispatch_ms:.2f} ms",
              "price of one dispatch with the step's signature, outputs fetched")
    split = run["profile"]
    table.title(f"  cProfile of one more batch ({split['total']:.2f} s, profiler overhead included):")
    for key, text in (("native", "TensorFlow native execution"), ("oracle", "utils.is_prime"),
                      ("python", "Python: dispatch, numpy, keras")):
        table.row(f"  {text}", f"{100 * split[key] / split['total']:.1f} %", f"{split[key]:.2f} s")
    table.row("step traces after more batch sizes", str(run["trace_count"]),
              f"batch_size {', '.join(map(str, SWEEP_SIZES))}; must be 1: "
              f"{verdict(run['trace_count'] == 1)}")

    table.title("Arithmetic floor of one training step")
    table.row("matmul FLOPs per step", f"{flops / 1e9:.2f} GFLOP",
              f"{rows} rows (one more default batch, undersampled); {g_macs:,} (G) + {d_macs:,} (D) kernel multiply-adds per row")
    table.row("float32 matmul rate, best", f"{rate / 1e9:.0f} GFLOP/s",
              f"tf.matmul on the step's shapes {rates['shapes'] / 1e9:.0f}, "
              f"{SQUARE}x{SQUARE} square {rates['square'] / 1e9:.0f}; best of {MATMUL_REPEATS}")
    table.row("floor_ms = FLOPs / rate", f"{floor_ms:.2f} ms")
    table.row("compiled step alone, best", f"{alone_ms:.2f} ms",
              f"{alone_ms / floor_ms:.2f}x the floor (below 1: faster than the probes' matmuls)")
    table.row("  in the timed batches", f"{call_ms:.2f} ms",
              f"mean step call; step_ms {step_ms:.2f} ms is {step_ms / floor_ms:.2f}x the floor")

    table.title("Fisher and evaluation")
    table.row("fisher_s, compute_fisher (warm)", f"{run['fisher_s']:.3f} s",
              f"both networks, nb_samples={config['nb_samples']}, median of {FISHER_REPEATS}; "
              f"{(ORIGINAL_FISHER_BATCH_S - ORIGINAL_BATCH_S) / run['fisher_s']:.0f}x the "
              f"original's ~{ORIGINAL_FISHER_BATCH_S - ORIGINAL_BATCH_S:.1f} s")
    table.row("eval_100k_s, test.test_models", f"{eval_s:.2f} s",
              f"{EVAL_SAMPLES:,} latents, untrained models (score {report['score']:.3f}); "
              "model building and first calls included, TF import not")
    table.row("  target", f"<= {TARGET_EVAL_S:g} s", verdict(eval_s <= TARGET_EVAL_S))
    table.row("benchmark wall time", f"{time.perf_counter() - wall_start:.0f} s",
              "imports excluded")

    failures = [text for ok, text in (
        (small["agree"] and large["agree"], "utils.is_prime disagrees with sympy.isprime"),
        (run["trace_count"] == 1, f"the compiled step was traced {run['trace_count']} times"),
    ) if not ok]
    print(table, flush=True)
    for text in failures:
        print(f"error: {text}", file=sys.stderr, flush=True)
    print(f"summary: oracle_vs_sympy={oracle_ratio:.1f} oracle_Mps={small['fast'] / 1e6:.2f} "
          f"batch_s={batch_s:.2f} step_ms={step_ms:.2f} label_share={label_share:.2f}% "
          f"fisher_s={run['fisher_s']:.3f} eval_100k_s={eval_s:.2f}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
