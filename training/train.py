"""Train Optimus online: a generator of prime candidates against a primality discriminator.

Each batch draws ``batch_size`` latent integers, takes the generator's candidates for them, labels
those with the exact oracle, undersamples the non-primes into the discriminator's batch, trains
both networks, then estimates the EWC Fisher diagonal and moves the anchor as ewc_anchor says.
After every batch the whole checkpoint is saved; running the same command again resumes up to
``nb_batches``.
"""
import os
import signal
import sys
import time
from pathlib import Path

if __name__ == "__main__":  # before numpy or TensorFlow start threads: they inherit the mask
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})  # Ctrl-C: see utils.watch_ctrl_c
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import utils  # noqa: E402
from training import rules  # noqa: E402

# -- constants (override any as --name=value) ---------------------------------------------------
# The method: each selector's values are listed by --help, from training/registry.py's tables
generator_head = "offset"       # the generator: how it makes an output x from a latent z
generator_input = "candidates"  # offset head: what its policy network reads
reader = "digits"               # bits input (either network): the trainable layer that reads the digits
reader_snap = 0.5               # phases reader: share of nb_batches after which its weights snap to k/d
reader_frequencies = "0 1/2 1/3 1/4 1/5 2/5 1/6 1/7"  # frequencies, rotation readers: the learned
                                # frequencies' starts, in turns per digit (2**i mod p has period 2 for
                                # p = 3, 4 for 5, 3 for 7); each gives 2 features (rotation: 1)
frequency_step = 0.001          # frequencies, rotation: the frequencies move at this share of Adam's step
                                # (at the full step they drift to fit the training range and stop carrying over)
reader_periods = 12             # periods, phases readers: the periods q = 2..reader_periods of the positions
phase_units = 12                # phases reader: sine units per period q (6 missed 5 or 7 in 2 of 3 seeds)
max_denominator = 13            # phases reader: its weights snap to fractions k/d with d at most this ...
snap_tolerance = 0.04           # ... the smallest d that puts every weight of a unit within this many
                                # turns of a common shift plus k/d (1/26: d = 13 always does)
offsets = 16                    # offset head: choices k per latent (a power of 2 keeps k = 0 at chance)
generator_layers = 2            # offset head: hidden layers of its scorer (0: linear)
generator_units = 64            # offset head: units per hidden layer
generator_activation = "relu"   # offset head: of its hidden layers, "relu", "sin" or "snake" (x + sin(x)**2)
acceptance = "window"           # offset head, sampled: how likely a latent is kept
reward = "entropy"              # offset head: the reward of a candidate, from D's belief
policy_gradient = "exact"       # offset head: the estimate of the policy's gradient
generator_steps = 20            # offset head: generator updates per batch, after the discriminator's
discriminator_batch = "windows"  # offset head: what D learns from
discriminator_minibatch = 1000  # offset head: rows of D's undersampled batch per update, drawn afresh
                                # each step (0: all of it at every step)
negative_l2 = 1e-2              # real head: pull of the outputs toward OUTPUT_CAP (0 = off)
negative_l2_cap = 0.5           # real head: the pull stops at x = negative_l2_cap * OUTPUT_CAP
discriminator = "mlp"           # the discriminator's network and how it learns
discriminator_input = "residues"  # what the discriminator reads of a candidate
discriminator_layers = 2        # mlp: hidden layers (0: logistic regression on the input)
discriminator_units = 64        # mlp: units per hidden layer; recurrent: the GRU's units
discriminator_activation = "relu"  # mlp: of its hidden layers, "relu", "sin" or "snake"
largest_prime = 31              # largest odd prime of the residue encoding (both networks)
discriminator_loss = "focal"    # the discriminator's loss (the gradient-trained ones)
focal_alpha = 0.65              # focal loss: class balancing, the weight of the primes (the seed's)
focal_gamma = 2.0               # focusing parameter of every focal term: D's focal loss, the focal
                                # reward, the real heads' generator loss (the seed's)
discriminator_fisher = "empirical"  # the discriminator's Fisher for EWC (the gradient-trained ones)
gln_layers = 2                  # gln (Veness et al. 2021): hidden layers, then one neuron for P(prime)
gln_units = 16                  # gln: neurons per hidden layer
gln_context_bits = 4            # gln: hyperplanes per neuron: 2**4 weight vectors to choose from
gln_epsilon = 0.01              # gln: probabilities are clipped to [eps, 1 - eps] (Veness et al.)
gln_weight_limit = 200.0        # gln: weights are clipped to [-limit, limit] (Veness et al.)
gln_lr = 0.1                    # gln: step of the local rule at first (on the batch-mean gradient) ...
gln_decay = 1e-3                # ... then gln_lr / (1 + gln_decay * t), t in updates
gln_bias_logit = 1.0            # gln: the constant input every layer also sees, as a logit
gln_input_scale = 5.0           # gln: base inputs are sigmoid(scale * feature): their logits reach +-scale
gln_offset_scale = 0.5          # gln: sd of the hyperplanes' offsets (a projection of the features has sd ~0.7)
# The stream
nb_batches = 100                # batch counter to reach; a resumed run continues up to it
batch_size = 2000               # latent integers drawn per batch
low_latent = 1                  # smallest latent integer
high_latent = 10**6             # largest latent integer
wanted_prime_ratio = 0.5        # share of primes after undersampling, in (0, 1]
minimum_batch_size = 100        # undersampling never keeps fewer samples than this
steps = 75                      # discriminator updates per batch (real head: each updates both)
curriculum_batches = 0          # batches over which the latents' range grows geometrically from
                                # curriculum_start to high_latent (0: the whole range from the start)
curriculum_start = 16           # with curriculum_batches: the first batch's largest latent
lambda_ = 1.0                   # EWC strength
ewc_anchor = "batch"            # EWC's anchor theta* and penalty Fisher: "batch" (the weights and Fisher
                                # after each batch: the seed's), "switch" (held from the batch where a
                                # resumed run's latent range changed, Kirkpatrick's; no penalty before
                                # the first switch) or "average" (an exponential average of the weights)
anchor_decay = 0.99             # average anchor: theta* <- anchor_decay * theta* + (1 - anchor_decay) *
                                # the weights, after each batch
lr = 1e-3                       # Adam learning rate, both networks
nb_samples = 75                 # latents per Fisher estimate
fisher_decay = 0.9              # online EWC: F <- fisher_decay * F + F_new (0 = replace each batch)
# Bookkeeping
test_session_occurrences = 10   # a test session every this many batches (and after the last)
test_samples = 10_000           # latents per test session in each range, the training range and
                                # beyond it (at most as many as the smaller range holds)
test_sampling = "sampled"       # how test sessions use the generator: "sampled" or "greedy"
checkpoint_dir = str(ROOT / "training")  # where checkpoints, log and plot live
seed = 0                        # seeds latents, initial weights, sampling and dropout
# -------------------------------------------------------------------------------------------------
DEFAULTS = {k: v for k, v in dict(globals()).items()
            if not k.startswith("_") and k.islower() and isinstance(v, (int, float, str, bool))}
USAGE = "usage: python training/train.py [--name=value ...]   (train, or resume up to nb_batches)"
REGISTRY = Path(__file__).resolve().parent / "registry.py"  # its tables' values are listed by --help

from training import checkpoint, measuring, registry  # noqa: E402  (none imports TensorFlow)


MEMORY_LIMIT = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2  # bytes a batch may hold
EWC_ANCHORS = ("batch", "switch", "average")  # training_utils.ANCHORS's keys (a test keeps them in step)
MAX_LAMBDA = 1e6                # lambda_ at most: beyond it the penalty only pins both networks
                                # (in float32, 1e39 is already inf)
RULES = {  # the method's constants: their values come from the registry
    **registry.method_rules(),
    **{name: rules.at_least(1) for name in ("nb_batches", "batch_size", "low_latent", "minimum_batch_size",
                                            "steps", "curriculum_start", "nb_samples",
                                            "test_session_occurrences", "test_samples")},
    "high_latent": rules.between(1, utils.LATENT_LIMIT, "an integer"),
    "wanted_prime_ratio": rules.between(0, 1, brackets="(]"),
    "curriculum_batches": rules.at_least(0),
    "lambda_": rules.between(0, MAX_LAMBDA),
    "lr": rules.between(0, 1, brackets="()"),
    "fisher_decay": rules.between(0, 1),
    "ewc_anchor": rules.one_of(*EWC_ANCHORS),
    "anchor_decay": rules.between(0, 1),
    "test_sampling": rules.one_of(*measuring.SAMPLINGS),
    "checkpoint_dir": rules.Rule(lambda v: v.strip() != "", "a directory path"),
    "seed": rules.between(0, 2**32 - 1, "an integer"),  # Keras seeds its generators with 32 bits
}
METHOD_CONSTANTS = registry.method_constants()  # a resumed run must keep these
CSV_FILE, PLOT_FILE = checkpoint.CSV_FILE, checkpoint.PLOT_FILE
LOSSES = ("discriminator_loss", "generator_loss")  # a batch's logs; the others are per-step means


def parse_config(argv: list) -> dict:
    """Defaults updated by ``--name=value`` arguments, with the cross-checks between constants."""
    config = rules.parse_overrides(argv, DEFAULTS, RULES)
    registry.check_method(config, rules.given_names(argv))
    if "curriculum_start" in rules.given_names(argv) and not config["curriculum_batches"]:
        raise utils.OptimusError("--curriculum_start: acts only with curriculum_batches > 0; leave it out")
    if "anchor_decay" in rules.given_names(argv) and config["ewc_anchor"] != "average":
        raise utils.OptimusError("--anchor_decay: acts only with ewc_anchor='average'; leave it out")
    if config["low_latent"] > config["high_latent"]:
        raise utils.OptimusError(
            f"--low_latent={config['low_latent']} --high_latent={config['high_latent']}: "
            "low_latent must be <= high_latent")
    if config["batch_size"] > config["high_latent"] - config["low_latent"] + 1:
        raise utils.OptimusError(
            f"--batch_size={config['batch_size']}: batch_size must be <= high_latent - "
            "low_latent + 1, the number of distinct latent integers")
    needed = registry.memory_bytes(config)
    if needed > MEMORY_LIMIT:
        raise utils.OptimusError(
            f"--batch_size={config['batch_size']} --offsets={config['offsets']}: a batch would hold "
            f"about {needed / 2**30:.1f} GiB, more than the {MEMORY_LIMIT / 2**30:.1f} GiB allowed "
            "(half of this machine's memory); lower batch_size, offsets or the networks' units")
    return config


if __name__ == "__main__":  # --help and every refusal of the arguments answer before TensorFlow is imported
    if rules.wants_help(sys.argv[1:]):
        sys.exit(rules.print_help(USAGE, DEFAULTS, rules.constant_docs(__file__), rules.table_docs(REGISTRY)))
    try:
        parse_config(sys.argv[1:])
    except utils.OptimusError as err:
        utils.print_error(err)
        sys.exit(2)
    utils.watch_ctrl_c("Stopped before the first batch; the last saved checkpoint is intact.")
    utils.quiet_startup()
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from training import bookkeeping, readers, training_utils  # noqa: E402


def test_session(generator, discriminator, config: dict) -> dict:
    """measuring.evaluate on ``test_samples`` latents in the training range and beyond it, seeded."""
    low, high = config["low_latent"], config["high_latent"]
    spans = [high - low + 1] + [b[1] - b[0] + 1 for b in [measuring.beyond_range(high)] if b]
    return measuring.evaluate(generator, discriminator, min(config["test_samples"], *spans), low, high,
                         config["seed"], sampling=config["test_sampling"])


def latent_ceiling(config: dict, batch: int) -> int:
    """The largest latent of a batch: high_latent, or under the curriculum the geometric way from
    curriculum_start (batch 1) to high_latent (batch curriculum_batches + 1 and after)."""
    if not config["curriculum_batches"]:
        return config["high_latent"]
    start = max(config["curriculum_start"], config["low_latent"])
    share = min(1.0, (batch - 1) / config["curriculum_batches"])
    return max(start, min(config["high_latent"], round(start * (config["high_latent"] / start) ** share)))


def run_batch(trainer: training_utils.Trainer, config: dict, rng: np.random.Generator,
              batch: int) -> dict:
    """Draw the latents of one batch; its method's step (``training_utils.BATCHES``) labels,
    undersamples, trains and refreshes the EWC state. Returns the batch's CSV row."""
    start = time.perf_counter()
    low, high = config["low_latent"], latent_ceiling(config, batch)
    z = utils.random_vector_integers(low, high, min(config["batch_size"], high - low + 1), rng)
    try:  # the batch step of the generator's method, from candidates to the EWC consolidation
        x, labels, kept, logs = training_utils.BATCHES[config["generator_head"]](trainer, z, rng, batch)
    except tf.errors.InvalidArgumentError as err:  # an index drawn from a policy gone NaN
        raise utils.GeneratorDivergedError(f"batch {batch} diverged in its compiled steps "
                                              f"({utils.one_line(err)[:160]})") from None
    row = {"primes": int(labels.sum()), "prime_share": round(float(labels.mean()), 6),
           "output_min": float(x.min()), "output_median": float(np.median(x)),
           "output_max": float(x.max())}
    if kept is None:
        row.update(skipped=1, kept=0, seconds=round(time.perf_counter() - start, 3))
        return row
    beliefs = trainer.discriminator.beliefs(x)
    choices = trainer.generator.choices(z, x)
    row.update(skipped=0, kept=int(kept.size),
               **{f"{name}_{end}": float(logs[name][i])
                  for name in LOSSES for end, i in (("first", 0), ("last", -1))},
               **{f"{name}_last": float(values[-1]) for name, values in logs.items() if name not in LOSSES},
               belief_counts=np.histogram(beliefs, bookkeeping.BELIEF_BINS, (0.0, 1.0))[0].tolist(),
               offset_counts=None if choices is None else np.bincount(choices[0], minlength=choices[1]).tolist(),
               seconds=round(time.perf_counter() - start, 3))
    return row


def train(config: dict) -> dict:
    """Run the online loop up to ``config["nb_batches"]``, under the folder's lock; returns the final
    state dict. A folder this run created is removed again if the run fails before saving in it."""
    directory = Path(config["checkpoint_dir"]).resolve()
    created = checkpoint.check_writable(directory)
    try:
        lock = checkpoint.lock(directory)
        try:
            trainer, state, rng = start(config, directory)
            stop = bookkeeping.StopFlag()
            with utils.on_ctrl_c(stop):
                report = train_loop(trainer, config, directory, state, rng, stop, bookkeeping.Events(directory, state))
            finish(trainer, config, directory, state, report, stop.requested)
            return state
        finally:
            os.close(lock)
    except BaseException:
        checkpoint.remove_if_empty(created)
        raise


def start(config: dict, directory: Path) -> tuple:
    """(trainer, state, rng): a fresh run, or the checkpoint in ``directory`` resumed after finishing
    or discarding an interrupted save; refuses an incomplete checkpoint or one of another method."""
    checkpoint.recover(directory)
    checkpoint.remove_stale_writes(directory)
    present = [n for n in checkpoint.REQUIRED_FILES if (directory / n).exists()]
    if present and len(present) < len(checkpoint.REQUIRED_FILES):
        missing = sorted(set(checkpoint.REQUIRED_FILES) - set(present))
        raise utils.OptimusError(
            f"{directory}: incomplete checkpoint, missing {', '.join(missing)}; restore them, "
            "or move the checkpoint files away to start fresh")
    keras.utils.set_random_seed(config["seed"])
    tf.config.experimental.enable_op_determinism()
    trainer = registry.build_trainer(config)
    rng = np.random.default_rng(config["seed"])
    if present:
        previous = checkpoint.read_state(directory).get("config", {})
        for name in METHOD_CONSTANTS:
            if name in previous and previous[name] != config[name]:
                raise utils.OptimusError(
                    f"{directory}: checkpoint was trained with {name}={previous[name]!r}; pass "
                    f"--{name}={previous[name]!r} to resume it, or choose another --checkpoint_dir")
        state = checkpoint.load(directory, trainer)
        rng.bit_generator.state = state["rng"]
        print(f"Resuming from {directory} at batch {state['batch']}", flush=True)
        try:  # a kill after the last save can leave them a batch behind: they follow state.json
            if state["history"]:
                bookkeeping.write_log_files(directory, state, plot=bool(state["tests"]))
        except OSError as err:
            raise utils.OptimusError(f"{directory}: cannot rewrite the log ({err.strerror or err})") from err
    else:
        state = {"batch": 0, "history": [], "tests": []}
        print(f"No checkpoint in {directory}: starting fresh", flush=True)
    switch_anchors(trainer, config, state, bool(present))
    # the folder is where state.json lies: recording its path would tie the file to this machine
    state.update(format=checkpoint.STATE_FORMAT,
                 config={k: v for k, v in config.items() if k != "checkpoint_dir"})
    return trainer, state, rng


def switch_anchors(trainer, config: dict, state: dict, resumed: bool) -> None:
    """Under ewc_anchor="switch", hold the EWC anchors and Fisher when a resumed run's latent range
    differs from the one they were held on (or were never held: a checkpoint of another anchor), and
    record the batch. Under "batch", hold them at once: a checkpoint of another anchor resumes as the
    per-batch anchor leaves it (for one of its own, this changes nothing)."""
    here = [config["low_latent"], config["high_latent"]]
    switch = config["ewc_anchor"] == "switch" and resumed and state.get("anchor_range") != here
    if switch or config["ewc_anchor"] == "batch":
        trainer.ewc_generator.hold(trainer.generator.model)
        trainer.ewc_discriminator.hold(trainer.discriminator.model)
    if switch:
        state.setdefault("anchor_switches", []).append(state["batch"])
        print(f"EWC anchors and Fisher held at batch {state['batch']}, for the range "
              f"{here[0]}..{here[1]}", flush=True)
    if config["ewc_anchor"] == "switch":
        state["anchor_range"] = here
    else:
        state.pop("anchor_range", None)  # a later switch run holds its anchors when it resumes


def train_loop(trainer, config: dict, directory: Path, state: dict, rng, stop, events) -> dict | None:
    """Train, test, save and write the TensorBoard ``events`` batch after batch up to nb_batches or a
    Ctrl-C (``stop``). Updates ``state`` in place; returns the last test report (None if none ran)."""
    report = None
    snaps = any("reader_snap" in part.reads for part in registry.chosen(config).values())
    while state["batch"] < config["nb_batches"] and not stop.requested:
        batch = state["batch"] + 1
        print(f"batch {batch}/{config['nb_batches']}", end="  ", flush=True)
        row = run_batch(trainer, config, rng, batch)
        if snaps and batch >= max(1, round(config["reader_snap"] * config["nb_batches"])):
            readers.snap_readers(trainer, config, batch)  # a reader not yet snapped snaps now
        check_batch(directory, trainer, batch)
        row["batch"] = batch
        print(bookkeeping.progress(row), flush=True)
        state["history"].append(row)
        state["batch"] = batch
        state["rng"] = rng.bit_generator.state
        session = batch % config["test_session_occurrences"] == 0 or batch == config["nb_batches"]
        if session:
            report = test_session(trainer.generator, trainer.discriminator, config)
            report["batch"] = batch
            state["tests"].append(report)
            print(bookkeeping.session_line(batch, report), flush=True)
        save_batch(directory, trainer, state, session)
        events.batch(row)
        if session:
            events.session(report)
    return report


def _intact(batch: int) -> str:
    """What is left on disk when batch + 1 could not be saved."""
    return f"the checkpoint of batch {batch} is intact" if batch else "no checkpoint was saved yet"


def _diverged(directory: Path, batch: int, err: Exception) -> utils.OptimusError:
    return utils.OptimusError(f"{directory}: batch {batch} diverged ({err}): not saved; {_intact(batch - 1)}")


def check_batch(directory: Path, trainer, batch: int) -> None:
    """Stop, with one line, when the batch just trained left NaN or inf anywhere in the state."""
    try:
        checkpoint.check_finite(trainer)
    except checkpoint.NotFiniteError as err:
        raise _diverged(directory, batch, err) from err


def save_batch(directory: Path, trainer, state: dict, plot: bool) -> None:
    """Save the checkpoint of the batch just trained, then the CSV log (and the plot)."""
    batch, saved = state["batch"], False
    try:  # OSError here is a full disk or a folder gone read-only
        checkpoint.save(directory, trainer, _jsonable(state))
        saved = True
        bookkeeping.write_log_files(directory, state, plot)
    except checkpoint.NotFiniteError as err:
        raise _diverged(directory, batch, err) from err
    except OSError as err:
        raise utils.OptimusError(
            f"{directory}: could not write batch {batch}'s {'log or plot' if saved else 'checkpoint'} "
            f"({err.strerror or err}); {_intact(batch if saved else batch - 1)}") from err


def finish(trainer, config: dict, directory: Path, state: dict, report: dict | None, stopped: bool) -> None:
    """Print how the run ended: how to resume after a Ctrl-C, else the evaluation report."""
    if stopped:
        print(f"Stopped after batch {state['batch']}; checkpoint saved in {directory}. "
              "Run the same command to resume.", flush=True)
        return
    if report is None:  # nothing left to train: evaluate the checkpoint as it is
        print(f"Checkpoint is at batch {state['batch']} >= nb_batches={config['nb_batches']}: "
              "nothing to train (raise --nb_batches to continue)", flush=True)
        report = test_session(trainer.generator, trainer.discriminator, config)
    print(f"\nEvaluation after batch {state['batch']}:\n{measuring.format_report(report)}", flush=True)
    print(f"Log: {directory / CSV_FILE}   plot: {directory / PLOT_FILE}", flush=True)


def _jsonable(value):
    """Numpy scalars and arrays as plain Python values, for state.json."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.generic, np.ndarray)):  # a numpy scalar's tolist() is its item()
        return value.tolist()
    return value


def main(argv: list) -> int:
    """Command-line entry: exit 0 when done, 2 on a user error, 130 when abandoned by Ctrl-C."""
    if rules.wants_help(argv):
        return rules.print_help(USAGE, DEFAULTS, rules.constant_docs(__file__), rules.table_docs(REGISTRY))
    try:
        train(parse_config(argv))
        sys.stdout.flush()
    except utils.OptimusError as err:
        utils.print_error(err)
        return 2
    except OSError as err:  # printing the progress: a closed pipe, a full device
        return utils.output_failed(err)
    except KeyboardInterrupt:
        print(f"\n{bookkeeping.ABANDONED}", file=sys.stderr, flush=True)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
