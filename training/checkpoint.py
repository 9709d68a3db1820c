"""Checkpoints of Optimus: a set of files written as one unit, read back without pickles.

A checkpoint is written file by file to temporary names in its folder; a journal then lists the
renames, and the renames follow. A crash before the journal lands leaves the previous checkpoint;
a crash after it is rolled forward by ``recover`` on the next start. ``lock`` keeps a second
train.py out of a folder in use. The weight files come from ``model.save_network`` and are read by
``registry.load_network``; everything else is plain JSON, .npy or .npz, loaded with allow_pickle=False.
"""
import fcntl
import json
import os
import secrets
from pathlib import Path

import numpy as np

import utils
from training import model as model_lib
from training import registry

GENERATOR_FILE = "Optimus_Generator.h5"
DISCRIMINATOR_FILE = "Optimus_Discriminator.h5"
FISHER_GENERATOR_FILE = "fisher_generator.npy"
FISHER_DISCRIMINATOR_FILE = "fisher_discriminator.npy"
OPTIMIZER_FILE = "optimizer_state.npz"   # Adam moments and step counters, dropout seed states
STATE_FILE = "state.json"               # batch counter, metrics history, RNG state, constants
FILES = (GENERATOR_FILE, DISCRIMINATOR_FILE, FISHER_GENERATOR_FILE, FISHER_DISCRIMINATOR_FILE,
         OPTIMIZER_FILE, STATE_FILE)
REQUIRED_FILES = FILES[:4]              # their presence means "resume"
JOURNAL_FILE = ".optimus-journal.json"
TEMP_PREFIX = ".optimus-tmp-"
STATE_FORMAT = 2                        # 2: the method constants and architectures are recorded
RESTORE_HINT = model_lib.RESTORE_HINT


# ---------------------------------------------------------------------------------------------
# Writing several files as one unit


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


def _fresh_file(directory: Path, name: str) -> Path:
    """Create an empty file with a new temporary name in ``directory``, with the usual mode.

    Opened with mode 0o666, the process's umask applies as for any file it writes (mkstemp
    would give 0600, and reading the umask would mean changing it).
    """
    while True:
        path = directory / f"{TEMP_PREFIX}{secrets.token_hex(8)}-{name}"
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return path
        except FileExistsError:
            continue


def _stage(directory: Path, name: str, write) -> Path:
    """Write one file through ``write(path)`` to a fresh temporary name in ``directory``."""
    tmp = _fresh_file(Path(directory), name)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


def commit(directory, writers: dict) -> None:
    """Write the files ``{name: write(path)}`` into ``directory`` as one unit (see the docstring)."""
    directory = Path(directory)
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
    recover(directory)


def recover(directory) -> None:
    """Finish or discard an interrupted ``commit`` in ``directory``.

    A journal means every new file was complete: the renames are finished. Without one, any
    temporary file belongs to an unfinished write and is deleted; the previous checkpoint stands.
    """
    directory = Path(directory)
    journal = directory / JOURNAL_FILE
    if journal.exists():
        try:
            renames = json.loads(journal.read_text())
            assert isinstance(renames, dict) and all(
                n in FILES and isinstance(t, str) and t.startswith(TEMP_PREFIX)
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


def refuse_interrupted(directory) -> None:
    """Raise OptimusError if a commit in ``directory`` was interrupted: its files may be mixed."""
    journal = Path(directory) / JOURNAL_FILE
    if journal.exists():
        raise utils.OptimusError(
            f"{journal}: a checkpoint write was interrupted, so the files may mix two versions; "
            "run training/train.py with this checkpoint_dir to complete it")


def write_atomic(path, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one step: a reader sees the old file or the new one."""
    path = Path(path)
    os.replace(_stage(path.parent, path.name, lambda p: Path(p).write_bytes(data)), path)


def check_writable(directory) -> None:
    """Raise OptimusError unless files can be created in ``directory`` (created if missing)."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        _fresh_file(directory, "probe").unlink()
    except OSError as err:
        raise utils.OptimusError(f"{directory}: checkpoint directory is not writable "
                                 f"({err.strerror}); choose another with --checkpoint_dir=DIR")


def lock(directory) -> int:
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


# ---------------------------------------------------------------------------------------------
# Plain files, read without pickles


def _save_npy(path, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)


def _save_npz(path, arrays: dict) -> None:
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def load_vector(path: Path, size: int) -> np.ndarray:
    """A flat float .npy of ``size`` finite non-negative values, as float32; refuses pickles."""
    try:
        flat = np.load(path, allow_pickle=False)
    except Exception as err:
        raise utils.OptimusError(f"{path}: not a plain float .npy array ({err}); {RESTORE_HINT}")
    if (not isinstance(flat, np.ndarray) or flat.dtype.kind != "f" or flat.shape != (size,)
            or not np.isfinite(flat).all() or (flat < 0).any()):
        raise utils.OptimusError(
            f"{path}: expected {size} finite non-negative floats, found dtype "
            f"{getattr(flat, 'dtype', '?')} shape {getattr(flat, 'shape', '?')}; {RESTORE_HINT}")
    return flat.astype(np.float32)


def read_state(directory) -> dict:
    """The checkpoint's state.json, or {} when absent."""
    path = Path(directory) / STATE_FILE
    if not path.exists():
        return {}
    try:
        state = json.loads(path.read_text())
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise ValueError(f"not a format-{STATE_FORMAT} training state")
        if not isinstance(state.get("batch"), int) or state["batch"] < 0:
            raise ValueError("bad batch counter")
        if not isinstance(state.get("config"), dict):
            raise ValueError("no constants recorded")
        return state
    except (OSError, ValueError) as err:
        raise utils.OptimusError(f"{path}: unreadable training state ({err}); {RESTORE_HINT}")


def load_networks(directory) -> tuple:
    """(generator, discriminator) of a checkpoint, from their weight files alone.

    Each file names its architecture, which is rebuilt in code; only weights are read, so a
    crafted file cannot run code. Refuses a folder whose last write was interrupted.
    """
    directory = Path(directory)
    refuse_interrupted(directory)
    g_path, d_path = directory / GENERATOR_FILE, directory / DISCRIMINATOR_FILE
    if not g_path.is_file() and not d_path.is_file():
        raise utils.OptimusError(f"no pre-trained models in {directory}: run training/train.py first")
    return registry.load_network(g_path, "generator"), registry.load_network(d_path, "discriminator")


# ---------------------------------------------------------------------------------------------
# A trainer's whole checkpoint (the trainer: see training_utils.Trainer)


def _variable_groups(trainer) -> tuple:
    """(key prefix, variables) kept in OPTIMIZER_FILE: both optimizers and the dropout seed states.

    The seed states are the networks' only variables outside the weight files; without them a
    resumed run would draw other dropout masks than an uninterrupted one.
    """
    seeds = [v for network in (trainer.generator.model, trainer.discriminator.model)
             for v in network.variables if not any(v is w for w in network.weights)]
    return (("g", trainer.generator_optimizer.variables),
            ("d", trainer.discriminator_optimizer.variables), ("s", seeds))


def save(directory, trainer, state: dict) -> None:
    """Write the trainer's whole checkpoint to ``directory`` as one unit.

    state: JSON-serialisable (batch counter, metrics history, RNG state, constants). Each weight
    file records its network's architecture. The EWC anchors are not stored apart: after
    consolidation they equal the saved weights.
    """
    g, d = trainer.generator, trainer.discriminator
    arrays = {f"{prefix}{i:03d}": np.asarray(v)
              for prefix, variables in _variable_groups(trainer) for i, v in enumerate(variables)}
    commit(directory, {
        GENERATOR_FILE: lambda p: model_lib.save_network(g.model, p, g.architecture),
        DISCRIMINATOR_FILE: lambda p: model_lib.save_network(d.model, p, d.architecture),
        FISHER_GENERATOR_FILE: lambda p: _save_npy(p, trainer.ewc_generator.flat_fisher()),
        FISHER_DISCRIMINATOR_FILE: lambda p: _save_npy(p, trainer.ewc_discriminator.flat_fisher()),
        OPTIMIZER_FILE: lambda p: _save_npz(p, arrays),
        STATE_FILE: lambda p: Path(p).write_text(json.dumps(state, indent=1)),
    })


def _load_variables(path: Path, trainer) -> None:
    try:
        with np.load(path, allow_pickle=False) as saved:
            arrays = {k: saved[k] for k in saved.files}
        for prefix, variables in _variable_groups(trainer):
            keys = sorted(k for k in arrays if k.startswith(prefix))
            if len(keys) != len(variables):
                raise ValueError(f"{len(keys)} arrays for {len(variables)} variables")
            for key, v in zip(keys, variables):
                if tuple(arrays[key].shape) != tuple(v.shape):
                    raise ValueError(f"shape {arrays[key].shape} for {tuple(v.shape)}")
                v.assign(arrays[key])
    except Exception as err:
        raise utils.OptimusError(f"{path}: unusable optimizer state ({err}); restore it, or "
                                 "delete it to resume with fresh Adam moments")


def load(directory, trainer) -> dict:
    """Load a whole checkpoint into ``trainer`` (weights, Fisher, anchors, optimizer state).

    The weight files must hold the trainer's architectures. Returns the state dict. Raises
    OptimusError naming the first bad file; the trainer may then be partly loaded.
    """
    directory = Path(directory)
    state = read_state(directory)
    g, d = trainer.generator, trainer.discriminator
    for network, name in ((g, GENERATOR_FILE), (d, DISCRIMINATOR_FILE)):
        model_lib.load_weights(network.model, directory / name, network.architecture)
    for ewc, network, name in ((trainer.ewc_generator, g.model, FISHER_GENERATOR_FILE),
                               (trainer.ewc_discriminator, d.model, FISHER_DISCRIMINATOR_FILE)):
        ewc.set_flat_fisher(load_vector(directory / name, ewc.flat_fisher().size))
        ewc.reset_anchor(network)
    path = directory / OPTIMIZER_FILE
    if path.exists():
        rates = [float(o.learning_rate) for o in (trainer.generator_optimizer,
                                                   trainer.discriminator_optimizer)]
        _load_variables(path, trainer)
        # the moments carry over, but the learning rate is this run's: --lr may have changed
        trainer.generator_optimizer.learning_rate, trainer.discriminator_optimizer.learning_rate = rates
    return state
