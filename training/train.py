"""Train Optimus online: a generator of prime candidates against a primality discriminator.

Each batch draws ``batch_size`` latent integers, labels the generator's candidates with the exact
oracle, undersamples the non-primes, trains both networks for ``steps`` steps, then refreshes the
EWC Fisher diagonal and anchor weights. After every batch the whole checkpoint is saved; running
the same command again resumes up to ``nb_batches``.

Usage: python training/train.py [--name=value ...]   (any constant below; e.g. --nb_batches=200)
"""
import io
import os
import signal
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow loads
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import utils  # noqa: E402

utils.import_quietly("tensorflow")
import absl.logging  # noqa: E402
import keras  # noqa: E402
import matplotlib  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import test  # noqa: E402
from training import model, training_utils  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)

# -- constants (override any as --name=value) ---------------------------------------------------
nb_batches = 100                # batch counter to reach; a resumed run continues up to it
batch_size = 2000               # latent integers drawn per batch
low_latent = 1                  # smallest latent integer
high_latent = 10**6             # largest latent integer
wanted_prime_ratio = 0.5        # share of primes after undersampling, in (0, 1]
minimum_batch_size = 100        # undersampling never keeps fewer samples than this
steps = 75                      # training steps of both networks per batch
lambda_ = 1.0                   # EWC strength
lr = 1e-3                       # Adam learning rate, both networks
nb_samples = 75                 # samples per Fisher estimate
test_session_occurrences = 10   # a test session every this many batches (and after the last)
checkpoint_dir = str(ROOT / "training")  # where checkpoints, log and plot live
seed = 0                        # seeds latents, initial weights and dropout; same seed, same run
fisher_decay = 0.9              # online EWC: F <- fisher_decay * F + F_new (0 = original's replace)
discriminator_loss = "focal"    # "focal" (class-balanced, as the original's code) or "bce"
negative_l2 = 1e-2              # pull of the generator's outputs toward OUTPUT_CAP (0 = off)
original_generator = False      # True rebuilds the original's generator, which computes k*z
test_samples = 10_000           # latent integers per test session, drawn in [1, 10**7]
# -------------------------------------------------------------------------------------------------
DEFAULTS = {k: v for k, v in dict(globals()).items()
            if not k.startswith("_") and k.islower() and isinstance(v, (int, float, str, bool))}

CHECKS = {
    "nb_batches": (lambda v: v >= 1, "an integer >= 1"),
    "batch_size": (lambda v: v >= 1, "an integer >= 1"),
    "low_latent": (lambda v: v >= 1, "an integer >= 1"),
    "high_latent": (lambda v: v <= 2**24, "an integer <= 2**24 (latents enter as float32)"),
    "wanted_prime_ratio": (lambda v: 0 < v <= 1, "a number in (0, 1]"),
    "minimum_batch_size": (lambda v: v >= 1, "an integer >= 1"),
    "steps": (lambda v: v >= 1, "an integer >= 1"),
    "lambda_": (lambda v: v >= 0, "a number >= 0"),
    "lr": (lambda v: 0 < v < 1, "a number in (0, 1)"),
    "nb_samples": (lambda v: v >= 1, "an integer >= 1"),
    "test_session_occurrences": (lambda v: v >= 1, "an integer >= 1"),
    "checkpoint_dir": (lambda v: v.strip() != "", "a directory path"),
    "fisher_decay": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "discriminator_loss": (lambda v: v in ("focal", "bce"), '"focal" or "bce"'),
    "negative_l2": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "test_samples": (lambda v: 1 <= v <= 10**7, "an integer in [1, 10**7]"),
}
CSV_FILE = "training_log.csv"
PLOT_FILE = "training_metrics.png"
CSV_COLUMNS = ("batch", "skipped", "kept", "primes", "prime_share", "output_min", "output_median",
               "output_max", "generator_loss_first", "generator_loss_last",
               "discriminator_loss_first", "discriminator_loss_last", "seconds")


def parse_config(argv: list) -> dict:
    """Defaults updated by ``--name=value`` arguments; cross-checks the latent range."""
    config = utils.parse_overrides(argv, DEFAULTS, CHECKS)
    if config["low_latent"] > config["high_latent"]:
        raise utils.OptimusError(
            f"--low_latent={config['low_latent']} --high_latent={config['high_latent']}: "
            "low_latent must be <= high_latent")
    if config["batch_size"] > config["high_latent"] - config["low_latent"] + 1:
        raise utils.OptimusError(
            f"--batch_size={config['batch_size']}: batch_size must be <= high_latent - "
            "low_latent + 1, the number of distinct latent integers")
    return config


class _StopFlag:
    """First Ctrl-C asks to stop after the batch in progress; a second one aborts at once."""

    def __init__(self):
        self.requested = False

    def __call__(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nCtrl-C: finishing this batch and saving (press again to abandon it)", flush=True)


def write_log_files(directory: Path, state: dict, plot: bool) -> None:
    """Rewrite the per-batch CSV log and, with ``plot``, the metrics plot, both atomically."""
    lines = [",".join(CSV_COLUMNS)]
    lines += [",".join(str(row.get(c, "")) for c in CSV_COLUMNS) for row in state["history"]]
    training_utils.write_atomic(directory / CSV_FILE, ("\n".join(lines) + "\n").encode())
    if plot:
        training_utils.write_atomic(directory / PLOT_FILE, plot_metrics(state))


def plot_metrics(state: dict) -> bytes:
    """PNG of the test-session metrics over the batch index, drawn headless."""
    tests = state["tests"]
    batches = [t["batch"] for t in tests]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    top.plot(batches, [100 * t["prime_ratio"] for t in tests], "o-", label="prime ratio")
    top.plot(batches, [100 * t["baseline_matched"] for t in tests], "s--",
             label="baseline (density-matched)")
    top.plot(batches, [100 * t["baseline_range"] for t in tests], "^:", label="baseline (range)")
    top.set_ylabel("% of outputs prime")
    top.legend(loc="best")
    bottom.plot(batches, [t["score"] for t in tests], "o-", color="C3", label="score")
    bottom.axhline(1.0, color="gray", lw=0.8, ls="--", label="uniform odd sampler")
    if tests:  # chance's spread: the prime count is ~Poisson, so the score's sd is 1/sqrt(mean)
        sd = 1.0 / np.sqrt(max(tests[-1]["n_samples"] * tests[-1]["baseline_matched"], 1.0))
        bottom.axhspan(1 - 2 * sd, 1 + 2 * sd, color="gray", alpha=0.15, label="chance, +-2 sd")
    bottom.set_ylabel("score")
    bottom.set_xlabel("batch")
    bottom.legend(loc="best")
    top.set_title(f"Optimus test sessions ({tests[-1]['n_samples'] if tests else 0} latents each)")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def test_session(generator, discriminator, config: dict) -> dict:
    """test.test_models on ``test_samples`` latents in test.py's default range, seeded."""
    return test.test_models(generator, discriminator, n_samples=config["test_samples"],
                            low_latent=test.LOW_LATENT, high_latent=test.HIGH_LATENT,
                            seed=config["seed"])


def run_batch(trainer: training_utils.Trainer, config: dict, rng: np.random.Generator) -> dict:
    """Draw, label, undersample and train on one batch, then refresh the EWC state.

    Returns the batch's CSV row.
    """
    start = time.perf_counter()
    z = utils.random_vector_integers(config["low_latent"], config["high_latent"],
                                     config["batch_size"], rng)
    x = training_utils.generate(trainer.generator, z)
    labels = training_utils.label(x)
    row = {"primes": int(labels.sum()), "prime_share": round(float(labels.mean()), 6),
           "output_min": float(x.min()), "output_median": float(np.median(x)),
           "output_max": float(x.max())}
    kept = training_utils.sampling(labels, config["wanted_prime_ratio"],
                                   config["minimum_batch_size"], rng)
    if kept is None:
        row.update(skipped=1, kept=0, seconds=round(time.perf_counter() - start, 3))
        return row
    bar = keras.utils.Progbar(config["steps"], stateful_metrics=["g_loss", "d_loss", "primes"])
    logs = training_utils.train_batch(
        trainer, z[kept], labels[kept], config["steps"],
        on_step=lambda i, v: bar.update(i + 1, [("g_loss", v["generator_loss"]),
                                                ("d_loss", v["discriminator_loss"]),
                                                ("primes", v["prime_ratio"])]))
    fisher_z = rng.choice(z[kept], size=min(config["nb_samples"], kept.size), replace=False)
    training_utils.compute_fisher(trainer, fisher_z, config["fisher_decay"])
    row.update(skipped=0, kept=int(kept.size),
               generator_loss_first=logs["generator_loss"][0],
               generator_loss_last=logs["generator_loss"][-1],
               discriminator_loss_first=logs["discriminator_loss"][0],
               discriminator_loss_last=logs["discriminator_loss"][-1],
               seconds=round(time.perf_counter() - start, 3))
    return row


def train(config: dict) -> dict:
    """Run the online loop up to ``config["nb_batches"]``; returns the final state dict."""

    directory = Path(config["checkpoint_dir"]).resolve()
    training_utils.check_writable(directory)
    lock = training_utils.lock_directory(directory)
    try:
        return _train_locked(config, directory)
    finally:
        os.close(lock)


def _train_locked(config: dict, directory: Path) -> dict:
    """The body of ``train``, run while this process holds the directory's lock."""
    training_utils.recover_checkpoint(directory)
    present = [n for n in training_utils.REQUIRED_FILES if (directory / n).exists()]
    if present and len(present) < len(training_utils.REQUIRED_FILES):
        missing = sorted(set(training_utils.REQUIRED_FILES) - set(present))
        raise utils.OptimusError(
            f"{directory}: incomplete checkpoint, missing {', '.join(missing)}; restore them, "
            "or move the checkpoint files away to start fresh")

    keras.utils.set_random_seed(config["seed"])
    tf.config.experimental.enable_op_determinism()
    generator = model.initialize_generator(original=config["original_generator"],
                                           negative_l2=config["negative_l2"])
    discriminator = model.initialize_discriminator()
    trainer = training_utils.Trainer.create(generator, discriminator, config["lr"],
                                            config["lambda_"], config["discriminator_loss"])
    rng = np.random.default_rng(config["seed"])
    if present:
        previous = training_utils.read_state(directory)
        if previous.get("original_generator", config["original_generator"]) != config["original_generator"]:
            raise utils.OptimusError(
                f"{directory}: checkpoint was trained with original_generator="
                f"{previous['original_generator']}; pass the same value or another --checkpoint_dir")
        state = training_utils.load_checkpoint(directory, trainer) or {}
        state.setdefault("batch", 0)
        if "rng" in state:
            rng.bit_generator.state = state["rng"]
        print(f"Resuming from {directory} at batch {state['batch']}", flush=True)
    else:
        state = {"batch": 0}
        print(f"No checkpoint in {directory}: starting fresh", flush=True)
    state.update(format=training_utils.STATE_FORMAT, original_generator=config["original_generator"],
                 config=config)
    state.setdefault("history", [])
    state.setdefault("tests", [])

    stop = _StopFlag()
    previous_handler = signal.signal(signal.SIGINT, stop)
    report = None
    try:
        while state["batch"] < config["nb_batches"] and not stop.requested:
            batch = state["batch"] + 1
            print(f"batch {batch}/{config['nb_batches']}", flush=True)
            row = run_batch(trainer, config, rng)
            row["batch"] = batch
            if row["skipped"]:
                print(f"batch {batch}: no prime among {config['batch_size']} candidates: skipped",
                      flush=True)
            state["history"].append(row)
            state["batch"] = batch
            state["rng"] = rng.bit_generator.state
            session = batch % config["test_session_occurrences"] == 0 or batch == config["nb_batches"]
            if session:
                report = test_session(generator, discriminator, config)
                report["batch"] = batch
                state["tests"].append(report)
                print(f"test session at batch {batch}: prime ratio {report['prime_ratio']:.2%}, "
                      f"density-matched baseline {report['baseline_matched']:.2%}, "
                      f"score {report['score']:.3f}", flush=True)
            saved = False
            try:  # OSError here is a full disk or a folder gone read-only
                training_utils.save_checkpoint(directory, trainer, _jsonable(state))
                saved = True
                write_log_files(directory, state, plot=session)
            except OSError as err:
                raise utils.OptimusError(
                    f"{directory}: could not write batch {batch}'s "
                    f"{'log or plot' if saved else 'checkpoint'} ({err.strerror or err}); the "
                    f"checkpoint of batch {batch if saved else batch - 1} is intact") from err
    finally:
        signal.signal(signal.SIGINT, previous_handler)
    if stop.requested:
        print(f"Stopped after batch {state['batch']}; checkpoint saved in {directory}. "
              "Run the same command to resume.", flush=True)
        return state
    if report is None:  # nothing left to train: evaluate the checkpoint as it is
        print(f"Checkpoint is at batch {state['batch']} >= nb_batches={config['nb_batches']}: "
              "nothing to train (raise --nb_batches to continue)", flush=True)
        report = test_session(generator, discriminator, config)
    print(f"\nEvaluation after batch {state['batch']}:\n{test.format_report(report)}", flush=True)
    print(f"Log: {directory / CSV_FILE}   plot: {directory / PLOT_FILE}", flush=True)
    return state


def _jsonable(value):
    """Numpy scalars and arrays as plain Python values, for state.json."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def main(argv: list) -> int:
    """Command-line entry: exit 0 when done, 2 on a user error, 130 when abandoned by Ctrl-C."""
    absl.logging.set_verbosity(absl.logging.ERROR)  # Keras warns that .h5 is a legacy format
    try:
        train(parse_config(argv))
    except utils.OptimusError as err:
        print("error: " + " ".join(str(err).splitlines()), file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        print("\nAbandoned the batch in progress; the last saved checkpoint is intact. "
              "Run the same command to resume.", file=sys.stderr, flush=True)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
