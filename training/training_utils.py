"""Training pieces of Optimus: undersampling, losses, EWC, the compiled step and checkpoints.

One training batch (see ``train.py``): draw latent integers, label the generator's candidates
with the exact primality oracle, undersample the non-primes, train both networks for a number of
steps, then compute the Fisher diagonal and keep the weights as the EWC anchor theta*.

A checkpoint is a set of files written as one unit: each file goes to a temporary name in the
checkpoint folder, a journal then lists the renames, and the renames follow. A crash before the
journal lands leaves the previous checkpoint; a crash after it is rolled forward on the next start.
"""
import fcntl
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import utils
from training import model as model_lib  # imports TensorFlow quietly, so it goes first

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

# Losses
FOCAL_ALPHA = 0.65              # class balancing of the discriminator's focal loss (weight of primes)
FOCAL_GAMMA = 2.0               # focusing parameter of both focal losses
DISCRIMINATOR_LOSSES = ("focal", "bce")
LOG_EPSILON = 1e-7              # probabilities are clipped to [eps, 1-eps] before a log

# Outputs beyond this have no integer resolution even in float64: treated as divergence.
OUTPUT_LIMIT = 2.0**53
FORWARD_CHUNK = 65536           # rows per network call when evaluating many inputs

# Checkpoint files
GENERATOR_FILE = "Optimus_Generator.h5"
DISCRIMINATOR_FILE = "Optimus_Discriminator.h5"
FISHER_GENERATOR_FILE = "fisher_generator.npy"
FISHER_DISCRIMINATOR_FILE = "fisher_discriminator.npy"
OPTIMIZER_FILE = "optimizer_state.npz"   # Adam moments and step counters, dropout seed states
STATE_FILE = "state.json"               # batch counter, metrics history, RNG state, constants
CHECKPOINT_FILES = (GENERATOR_FILE, DISCRIMINATOR_FILE, FISHER_GENERATOR_FILE,
                    FISHER_DISCRIMINATOR_FILE, OPTIMIZER_FILE, STATE_FILE)
REQUIRED_FILES = CHECKPOINT_FILES[:4]    # their presence means "resume"
JOURNAL_FILE = ".optimus-journal.json"
TEMP_PREFIX = ".optimus-tmp-"
STATE_FORMAT = 1
RESTORE_HINT = "restore it, or move the checkpoint away to start fresh"
_UMASK = os.umask(0)
os.umask(_UMASK)


class GeneratorDivergedError(utils.OptimusError):
    """The generator emitted NaN, inf, a non-positive value or a value beyond OUTPUT_LIMIT."""


# ---------------------------------------------------------------------------------------------
# Generating and labelling


def check_outputs(x: np.ndarray, where: str = "generator") -> np.ndarray:
    """Return x as float64 if every value is finite and in (0, OUTPUT_LIMIT]; else raise.

    Runs before any primality label is computed, so nothing downstream sees a bad value.
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    bad = ~(np.isfinite(x) & (x > 0) & (x <= OUTPUT_LIMIT))
    if bad.any():
        raise GeneratorDivergedError(
            f"{where} emitted {int(bad.sum())} of {x.size} outputs that are NaN, inf, <= 0 or "
            f"> {OUTPUT_LIMIT:.0e} (first: {x[bad][0]!r})")
    return x


def forward(network, inputs) -> np.ndarray:
    """A network's output on scalar inputs (shape (n,) or (n, 1)), in inference mode.

    Fed as float32 rows, FORWARD_CHUNK at a time; returns shape (n,).
    """
    rows = np.asarray(inputs, dtype=np.float32).reshape(-1, 1)
    parts = [np.asarray(network(rows[i:i + FORWARD_CHUNK], training=False)).reshape(-1)
             for i in range(0, len(rows), FORWARD_CHUNK)]
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def generate(generator, z) -> np.ndarray:
    """Generator outputs for latent integers z (shape (n,) or (n, 1)), as float64 of shape (n,).

    Raises GeneratorDivergedError on any NaN, inf, non-positive or huge output.
    """
    return check_outputs(forward(generator, z))


def label(x: np.ndarray) -> np.ndarray:
    """Exact primality of the candidates 2*round(x)+1, as float32 0/1 of the shape of x."""
    return utils.is_prime(utils.to_odd_integer(x)).astype(np.float32)


def sampling(labels: np.ndarray, wanted_prime_ratio: float, minimum_batch_size: int,
             rng: np.random.Generator) -> np.ndarray | None:
    """Undersample non-primes so that primes make up ``wanted_prime_ratio`` of the batch.

    Non-primes are dropped at random, but the batch never shrinks below ``minimum_batch_size``
    (or the whole batch, if smaller). Returns the sorted kept indices into ``labels`` (shape
    (n,)), or None when the batch holds no prime and must be skipped.
    """
    labels = np.asarray(labels).reshape(-1)
    primes = np.flatnonzero(labels > 0.5)
    others = np.flatnonzero(labels <= 0.5)
    if primes.size == 0:
        return None
    wanted_others = int(np.floor(primes.size * (1.0 - wanted_prime_ratio) / wanted_prime_ratio))
    keep_others = min(others.size, max(wanted_others, minimum_batch_size - primes.size))
    kept = rng.choice(others, size=keep_others, replace=False) if keep_others else others[:0]
    return np.sort(np.concatenate([primes, kept]))


# ---------------------------------------------------------------------------------------------
# Losses and EWC


def discriminator_base_loss(name: str) -> keras.losses.Loss:
    """The discriminator's base loss: "focal" (class-balanced, as the original) or "bce"."""
    if name == "focal":
        return keras.losses.BinaryFocalCrossentropy(
            apply_class_balancing=True, alpha=FOCAL_ALPHA, gamma=FOCAL_GAMMA)
    if name == "bce":
        return keras.losses.BinaryCrossentropy()
    raise ValueError(f"discriminator loss must be one of {DISCRIMINATOR_LOSSES}, got {name!r}")


def ewc_penalty(weights, fisher, anchor, lambda_) -> tf.Tensor:
    """EWC penalty lambda_/2 * sum_i F_i (theta_i - theta*_i)**2 over lists of matching tensors."""
    total = tf.add_n([tf.reduce_sum(f * tf.square(w - a))
                      for w, f, a in zip(weights, fisher, anchor)])
    return 0.5 * lambda_ * total


def log_prob_prime(discriminator, x) -> tf.Tensor:
    """log D(x) per sample, shape (n,): the generator's log-likelihood for EWC."""
    p = tf.reshape(discriminator(x, training=False), [-1])
    return tf.math.log(tf.clip_by_value(p, LOG_EPSILON, 1.0 - LOG_EPSILON))


def log_likelihood(discriminator, x, labels) -> tf.Tensor:
    """log P(true label | x) under the discriminator, shape (n,): its log-likelihood for EWC."""
    p = tf.clip_by_value(tf.reshape(discriminator(x, training=False), [-1]),
                         LOG_EPSILON, 1.0 - LOG_EPSILON)
    y = tf.reshape(tf.cast(labels, p.dtype), [-1])
    return y * tf.math.log(p) + (1.0 - y) * tf.math.log(1.0 - p)


def fisher_from_log_probs(variables, log_prob_fn) -> list:
    """Diagonal Fisher E_n[(d log p_n / d theta)**2] from per-sample gradients.

    ``log_prob_fn()`` returns the n per-sample log-probabilities; the per-sample gradients come
    from one vectorized Jacobian (pfor), not from a Python loop of single-sample tapes.
    Returns one tensor per variable, of the variable's shape.
    """
    with tf.GradientTape() as tape:
        log_p = log_prob_fn()
    jacobians = tape.jacobian(log_p, variables, experimental_use_pfor=True)
    return [tf.reduce_mean(tf.square(j), axis=0) for j in jacobians]


@dataclass
class EWC:
    """Online EWC state of one network: Fisher diagonal F and anchor weights theta*.

    Both are non-trainable variables, so the compiled step reads the current values without
    retracing when they change.
    """
    fisher: list
    anchor: list

    @classmethod
    def zeros(cls, network) -> "EWC":
        """No consolidation yet: F = 0 and theta* = the current weights."""
        return cls([tf.Variable(tf.zeros_like(w), trainable=False) for w in network.trainable_weights],
                   [tf.Variable(w, trainable=False) for w in network.trainable_weights])

    def consolidate(self, network, new_fisher, fisher_decay: float) -> None:
        """F <- fisher_decay * F + F_new, and theta* <- the network's current weights."""
        for f, new in zip(self.fisher, new_fisher):
            f.assign(fisher_decay * f + new)
        for a, w in zip(self.anchor, network.trainable_weights):
            a.assign(w)

    def flat_fisher(self) -> np.ndarray:
        """The Fisher diagonal as one float32 vector, in trainable-weight order."""
        return np.concatenate([np.asarray(f).reshape(-1) for f in self.fisher]).astype(np.float32)

    def set_flat_fisher(self, flat: np.ndarray) -> None:
        """Inverse of ``flat_fisher``; the length must match."""
        sizes = [int(np.prod(f.shape)) for f in self.fisher]
        if flat.shape != (sum(sizes),):
            raise ValueError(f"expected {sum(sizes)} values, got shape {flat.shape}")
        for f, part in zip(self.fisher, np.split(flat, np.cumsum(sizes)[:-1])):
            f.assign(part.reshape(f.shape))


# ---------------------------------------------------------------------------------------------
# The training state and the compiled step


@dataclass
class Trainer:
    """Everything one training run updates: both networks, their optimizers and EWC states."""
    generator: keras.Model
    discriminator: keras.Model
    generator_optimizer: keras.optimizers.Optimizer
    discriminator_optimizer: keras.optimizers.Optimizer
    ewc_generator: EWC
    ewc_discriminator: EWC
    discriminator_loss: str = "focal"
    lambda_: float = 1.0
    _compiled: dict = field(default_factory=dict, repr=False)

    @classmethod
    def create(cls, generator, discriminator, lr: float, lambda_: float,
               discriminator_loss: str = "focal") -> "Trainer":
        """Adam for both networks at learning rate ``lr``; EWC starts with F = 0."""
        discriminator_base_loss(discriminator_loss)  # validate early
        g_opt = keras.optimizers.Adam(learning_rate=lr)
        d_opt = keras.optimizers.Adam(learning_rate=lr)
        g_opt.build(generator.trainable_variables)
        d_opt.build(discriminator.trainable_variables)
        return cls(generator, discriminator, g_opt, d_opt, EWC.zeros(generator),
                   EWC.zeros(discriminator), discriminator_loss, lambda_)

    def step_fn(self):
        """The compiled training step (built once, traced once per input shape)."""
        if "step" not in self._compiled:
            self._compiled["step"] = _make_step(self)
            self._compiled["traces"] = 0
        return self._compiled["step"]

    def fisher_fns(self):
        """Compiled Fisher computations for the generator and the discriminator."""
        if "fisher" not in self._compiled:
            g, d = self.generator, self.discriminator
            g_fn = tf.function(lambda z: fisher_from_log_probs(
                g.trainable_variables, lambda: log_prob_prime(d, g(z, training=False))),
                reduce_retracing=True)
            d_fn = tf.function(lambda x, y: fisher_from_log_probs(
                d.trainable_variables, lambda: log_likelihood(d, x, y)), reduce_retracing=True)
            self._compiled["fisher"] = (g_fn, d_fn)
        return self._compiled["fisher"]

    @property
    def trace_count(self) -> int:
        """How many times the step has been traced (1 per distinct batch shape; more is a bug)."""
        return self._compiled.get("traces", 0)


def _make_step(trainer: Trainer):
    g, d = trainer.generator, trainer.discriminator
    g_opt, d_opt = trainer.generator_optimizer, trainer.discriminator_optimizer
    ewc_g, ewc_d = trainer.ewc_generator, trainer.ewc_discriminator
    g_base = keras.losses.BinaryFocalCrossentropy(gamma=FOCAL_GAMMA)
    d_base = discriminator_base_loss(trainer.discriminator_loss)
    lambda_ = float(trainer.lambda_)

    @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.float32),
                                  tf.TensorSpec([None, 1], tf.float32)])
    def step(z, labels):
        """One update of both networks. z: (n, 1) latents; labels: (n, 1) primality of G(z)."""
        trainer._compiled["traces"] += 1  # Python side effect: runs only while tracing
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            x = g(z, training=True)
            g_reg = tf.add_n(g.losses) if g.losses else 0.0  # the negative L2 acts here
            reward = d(x, training=False)
            g_loss = (g_base(tf.ones_like(reward), reward) + g_reg
                      + ewc_penalty(g.trainable_weights, ewc_g.fisher, ewc_g.anchor, lambda_))
            p = d(tf.stop_gradient(x), training=True)
            d_loss = (d_base(labels, p) + tf.add_n(d.losses)
                      + ewc_penalty(d.trainable_weights, ewc_d.fisher, ewc_d.anchor, lambda_))
        g_opt.apply_gradients(zip(g_tape.gradient(g_loss, g.trainable_weights), g.trainable_weights))
        d_opt.apply_gradients(zip(d_tape.gradient(d_loss, d.trainable_weights), d.trainable_weights))
        return g_loss, d_loss, g(z, training=False)

    return step


def train_batch(trainer: Trainer, z: np.ndarray, labels: np.ndarray, steps: int,
                on_step=None) -> dict:
    """Train both networks together for ``steps`` steps on one undersampled batch.

    z: (n,) latent integers; labels: (n,) primality of the current G(z). Labels are recomputed
    after every step from the updated generator, outside the compiled graph, after the outputs
    pass ``check_outputs``. ``on_step(i, logs)`` is called after each step (progress bar).
    Returns per-step arrays: generator_loss, discriminator_loss, prime_ratio (shape (steps,)).
    """
    step = trainer.step_fn()
    z_t = tf.constant(np.asarray(z, np.float32).reshape(-1, 1))
    y = np.asarray(labels, np.float32).reshape(-1, 1)
    logs = {"generator_loss": [], "discriminator_loss": [], "prime_ratio": []}
    for i in range(steps):
        g_loss, d_loss, x_next = step(z_t, tf.constant(y))
        y = label(check_outputs(x_next.numpy())).reshape(-1, 1)
        logs["generator_loss"].append(float(g_loss))
        logs["discriminator_loss"].append(float(d_loss))
        logs["prime_ratio"].append(float(y.mean()))
        if on_step is not None:
            on_step(i, {k: v[-1] for k, v in logs.items()})
    return {k: np.asarray(v) for k, v in logs.items()}


def compute_fisher(trainer: Trainer, z: np.ndarray, fisher_decay: float) -> tuple:
    """Diagonal Fisher of both networks on latents z (shape (n,)), then consolidate.

    Generator: log p = log D(G(z)). Discriminator: log p = log-likelihood of the true primality
    label of G(z). Then F <- fisher_decay * F + F_new and theta* <- the current weights.
    Returns the new (generator, discriminator) Fisher lists.
    """
    g_fn, d_fn = trainer.fisher_fns()
    z_t = tf.constant(np.asarray(z, np.float32).reshape(-1, 1))
    x = generate(trainer.generator, z)
    y = tf.constant(label(x).reshape(-1, 1))
    new_g = g_fn(z_t)
    new_d = d_fn(tf.constant(x.astype(np.float32).reshape(-1, 1)), y)
    trainer.ewc_generator.consolidate(trainer.generator, new_g, fisher_decay)
    trainer.ewc_discriminator.consolidate(trainer.discriminator, new_d, fisher_decay)
    return new_g, new_d


# ---------------------------------------------------------------------------------------------
# Checkpoints


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _stage(directory: Path, name: str, write) -> Path:
    """Write one file through ``write(path)`` to a fresh temporary name in ``directory``."""
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=TEMP_PREFIX, suffix="-" + name)
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual mode
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
    except BaseException:
        os.unlink(tmp)
        raise
    return Path(tmp)


def recover_checkpoint(directory) -> None:
    """Finish or discard an interrupted checkpoint write in ``directory``.

    A journal means every new file was complete: the renames are finished. Without one, any
    temporary file belongs to an unfinished write and is deleted; the previous checkpoint stands.
    """
    directory = Path(directory)
    journal = directory / JOURNAL_FILE
    if journal.exists():
        try:
            renames = json.loads(journal.read_text())
            assert isinstance(renames, dict) and all(
                n in CHECKPOINT_FILES and isinstance(t, str) and t.startswith(TEMP_PREFIX)
                and "/" not in t for n, t in renames.items())
        except (OSError, ValueError, AssertionError):
            raise utils.OptimusError(f"{journal}: unreadable checkpoint journal; "
                                     "delete it to fall back to the previous checkpoint")
        for name, tmp in renames.items():
            if (directory / tmp).exists():
                os.replace(directory / tmp, directory / name)
        _fsync_dir(directory)
        journal.unlink()
    for stray in directory.glob(TEMP_PREFIX + "*"):
        stray.unlink()


def check_writable(directory) -> None:
    """Raise OptimusError unless files can be created in ``directory`` (created if missing)."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=directory, prefix=TEMP_PREFIX, suffix="-probe")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise utils.OptimusError(f"{directory}: checkpoint directory is not writable "
                                 f"({err.strerror}); choose another with --checkpoint_dir=DIR")


def lock_directory(directory) -> int:
    """Hold an exclusive lock on ``directory`` for the life of this process; refuse if taken.

    Two runs saving into one folder would interleave their checkpoints. The lock is on the folder
    itself (flock), so no lock file is left behind and a killed process releases it.
    Returns the descriptor that holds the lock.
    """
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise utils.OptimusError(f"{directory}: another train.py is using this checkpoint "
                                 "directory; wait for it to stop, or choose another --checkpoint_dir")
    return fd


def save_checkpoint(directory, trainer: Trainer, state: dict) -> None:
    """Write the whole checkpoint to ``directory`` as one unit (see the module docstring).

    ``state`` is JSON-serialisable: batch counter, metrics history, RNG state, constants.
    The EWC anchors are not stored apart: after ``compute_fisher`` they equal the saved weights.
    """
    directory = Path(directory)
    opt_arrays = {}
    for prefix, variables in _optimizer_file_groups(trainer):
        for i, v in enumerate(variables):
            opt_arrays[f"{prefix}{i:03d}"] = np.asarray(v)
    writers = {
        GENERATOR_FILE: lambda p: trainer.generator.save(p),
        DISCRIMINATOR_FILE: lambda p: trainer.discriminator.save(p),
        FISHER_GENERATOR_FILE: lambda p: _save_npy(p, trainer.ewc_generator.flat_fisher()),
        FISHER_DISCRIMINATOR_FILE: lambda p: _save_npy(p, trainer.ewc_discriminator.flat_fisher()),
        OPTIMIZER_FILE: lambda p: _save_npz(p, opt_arrays),
        STATE_FILE: lambda p: Path(p).write_text(json.dumps(state, indent=1)),
    }
    staged = {}
    try:
        for name, write in writers.items():
            # Keras picks the format from the suffix, so the temporary name ends like the final one.
            staged[name] = _stage(directory, name, write)
        journal_tmp = _stage(directory, JOURNAL_FILE, lambda p: Path(p).write_text(
            json.dumps({n: t.name for n, t in staged.items()})))
    except BaseException:
        for tmp in staged.values():
            tmp.unlink(missing_ok=True)
        raise
    os.replace(journal_tmp, directory / JOURNAL_FILE)
    _fsync_dir(directory)
    recover_checkpoint(directory)


def _save_npy(path, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)


def _save_npz(path, arrays: dict) -> None:
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def has_checkpoint(directory) -> bool:
    """True when ``directory`` holds the four files whose presence means "resume"."""
    return all((Path(directory) / n).is_file() for n in REQUIRED_FILES)


def _load_weights(network, path: Path) -> None:
    if not path.is_file():
        raise utils.OptimusError(f"{path}: missing checkpoint file; {RESTORE_HINT}")
    try:
        network.load_weights(path)
    except Exception as err:  # h5py and Keras raise many types for a bad file
        raise utils.OptimusError(
            f"{path}: not a weights file of this architecture ({type(err).__name__}: "
            f"{str(err).splitlines()[0][:120] if str(err) else 'unreadable'}); {RESTORE_HINT}")
    if not all(np.isfinite(np.asarray(w)).all() for w in network.weights):
        raise utils.OptimusError(f"{path}: holds non-finite weights; {RESTORE_HINT}")


def load_fisher(path: Path, ewc: EWC) -> None:
    """Load a flat float Fisher vector into ``ewc``, refusing pickles and wrong shapes."""
    try:
        flat = np.load(path, allow_pickle=False)
    except Exception as err:
        raise utils.OptimusError(f"{path}: not a plain float .npy array ({err}); {RESTORE_HINT}")
    expected = sum(int(np.prod(f.shape)) for f in ewc.fisher)
    if (not isinstance(flat, np.ndarray) or flat.dtype.kind != "f" or flat.shape != (expected,)
            or not np.isfinite(flat).all() or (flat < 0).any()):
        raise utils.OptimusError(
            f"{path}: expected {expected} finite non-negative floats, found dtype "
            f"{getattr(flat, 'dtype', '?')} shape {getattr(flat, 'shape', '?')}; {RESTORE_HINT}")
    ewc.set_flat_fisher(flat.astype(np.float32))


def read_state(directory) -> dict:
    """The checkpoint's state.json, or {} when absent (a checkpoint from elsewhere)."""
    path = Path(directory) / STATE_FILE
    if not path.exists():
        return {}
    try:
        state = json.loads(path.read_text())
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise ValueError("unknown format")
        if not isinstance(state.get("batch"), int) or state["batch"] < 0:
            raise ValueError("bad batch counter")
        return state
    except (OSError, ValueError) as err:
        raise utils.OptimusError(f"{path}: unreadable training state ({err}); {RESTORE_HINT}")


def load_models(directory) -> tuple:
    """Build both networks and load their weights from ``directory``.

    Only weights are read (no model config is deserialised), so a crafted file cannot run
    code. The generator's form (default or original) is taken from state.json, else tried in turn.
    A journal left by a crash refuses the load: its renames may be half done. Returns (generator,
    discriminator).
    """
    directory = Path(directory)
    if (directory / JOURNAL_FILE).exists():
        raise utils.OptimusError(
            f"{directory / JOURNAL_FILE}: a checkpoint write was interrupted, so the files may "
            "mix two versions; run training/train.py with this checkpoint_dir to complete it")
    g_path, d_path = directory / GENERATOR_FILE, directory / DISCRIMINATOR_FILE
    if not g_path.is_file() and not d_path.is_file():
        raise utils.OptimusError(f"no pre-trained models in {directory}: run training/train.py first")
    state = read_state(directory)
    forms = [state["original_generator"]] if "original_generator" in state else [False, True]
    for i, original in enumerate(forms):
        generator = model_lib.initialize_generator(original=bool(original))
        try:
            _load_weights(generator, g_path)
            break
        except utils.OptimusError:
            if i == len(forms) - 1:
                raise
    discriminator = model_lib.initialize_discriminator()
    _load_weights(discriminator, d_path)
    return generator, discriminator


def load_checkpoint(directory, trainer: Trainer) -> dict:
    """Load a full checkpoint into ``trainer`` (weights, Fisher, anchors, optimizer state).

    Returns the state dict. Raises OptimusError naming the first bad file.
    """
    directory = Path(directory)
    _load_weights(trainer.generator, directory / GENERATOR_FILE)
    _load_weights(trainer.discriminator, directory / DISCRIMINATOR_FILE)
    load_fisher(directory / FISHER_GENERATOR_FILE, trainer.ewc_generator)
    load_fisher(directory / FISHER_DISCRIMINATOR_FILE, trainer.ewc_discriminator)
    for ewc, network in ((trainer.ewc_generator, trainer.generator),
                         (trainer.ewc_discriminator, trainer.discriminator)):
        for a, w in zip(ewc.anchor, network.trainable_weights):
            a.assign(w)
    opt_path = directory / OPTIMIZER_FILE
    if opt_path.exists():
        rates = [float(o.learning_rate) for o in (trainer.generator_optimizer,
                                                   trainer.discriminator_optimizer)]
        _load_optimizers(opt_path, trainer)
        # the moments carry over, but the learning rate is this run's: --lr may have changed
        trainer.generator_optimizer.learning_rate, trainer.discriminator_optimizer.learning_rate = rates
    return read_state(directory)


def _optimizer_file_groups(trainer: Trainer) -> tuple:
    """(key prefix, variables) kept in OPTIMIZER_FILE: both optimizers and the dropout seed states.

    The seed states are the networks' only variables outside the weight files; without them a
    resumed run would draw other dropout masks than an uninterrupted one.
    """
    seeds = [v for network in (trainer.generator, trainer.discriminator)
             for v in network.variables if not any(v is w for w in network.weights)]
    return (("g", trainer.generator_optimizer.variables),
            ("d", trainer.discriminator_optimizer.variables), ("s", seeds))


def _load_optimizers(path: Path, trainer: Trainer) -> None:
    try:
        with np.load(path, allow_pickle=False) as saved:
            arrays = {k: saved[k] for k in saved.files}
        for prefix, variables in _optimizer_file_groups(trainer):
            keys = sorted(k for k in arrays if k.startswith(prefix))
            if prefix == "s" and not keys:  # written before the seed states were kept
                continue
            if len(keys) != len(variables):
                raise ValueError(f"{len(keys)} arrays for {len(variables)} optimizer variables")
            for key, v in zip(keys, variables):
                if tuple(arrays[key].shape) != tuple(v.shape):
                    raise ValueError(f"shape {arrays[key].shape} for {tuple(v.shape)}")
                v.assign(arrays[key])
    except Exception as err:
        raise utils.OptimusError(f"{path}: unusable optimizer state ({err}); restore it, or "
                                 "delete it to resume with fresh Adam moments")


def write_atomic(path, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one step: a reader sees the old file or the new one."""
    path = Path(path)
    tmp = _stage(path.parent, path.name, lambda p: Path(p).write_bytes(data))
    os.replace(tmp, path)
