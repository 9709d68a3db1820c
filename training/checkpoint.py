"""Checkpoints of Optimus: a set of files written as one unit, read back without pickles.

A checkpoint is written file by file to temporary names in its folder; a journal then lists the
renames, and the renames follow. A crash before the journal lands leaves the previous checkpoint;
a crash after it is rolled forward by ``recover`` on the next start. ``lock`` keeps a second
train.py out of a folder in use. The weight files come from ``save_network`` and are read by
``load_network``; everything else is plain JSON, .npy or .npz, loaded with allow_pickle=False.
"""
import contextlib
import fcntl
import io
import json
import os
import secrets
import stat
import sys
from pathlib import Path

import h5py
import numpy as np

import utils
from training import registry, rules, sampling

GENERATOR_FILE = "Optimus_Generator.h5"
DISCRIMINATOR_FILE = "Optimus_Discriminator.h5"
FISHER_GENERATOR_FILE = "fisher_generator.npy"
FISHER_DISCRIMINATOR_FILE = "fisher_discriminator.npy"
EWC_FILE = "ewc_state.npz"               # EWC anchors theta* and online Fisher estimates (absent
                                        # from older checkpoints: the weights and the Fisher then)
OPTIMIZER_FILE = "optimizer_state.npz"   # Adam moments and step counters, dropout seed states
STATE_FILE = "state.json"               # batch counter, metrics history, RNG state, constants
FILES = (GENERATOR_FILE, DISCRIMINATOR_FILE, FISHER_GENERATOR_FILE, FISHER_DISCRIMINATOR_FILE,
         EWC_FILE, OPTIMIZER_FILE, STATE_FILE)
REQUIRED_FILES = FILES[:4]              # their presence means "resume"
CSV_FILE = "training_log.csv"           # the run's per-batch log and plot (bookkeeping.py), beside it
PLOT_FILE = "training_metrics.png"
JOURNAL_FILE = ".optimus-journal.json"
TEMP_PREFIX = ".optimus-tmp-"           # a checkpoint file being written: recover() removes strays
WRITE_PREFIX = ".optimus-write-"        # a file write_atomic replaces (log, plot, CSV) or a probe:
                                        # recover(), which may run meanwhile, leaves it alone
MAX_STATE_BYTES = 1 << 30               # a state.json larger than this is refused, not read
CHECKPOINT_NAMES = (*FILES, CSV_FILE, PLOT_FILE, JOURNAL_FILE)  # nothing else may write over these
STATE_FORMAT = 2                        # 2: the method constants and architectures are recorded
ARCHITECTURE_ATTRIBUTE = "optimus_architecture"  # JSON in each weight file: how to rebuild it
RESTORE_HINT = "restore it, or move the checkpoint away to start fresh"


# ---------------------------------------------------------------------------------------------
# Writing several files as one unit


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _fresh_file(directory: Path, name: str, prefix: str = TEMP_PREFIX) -> Path:
    """Create an empty file with a new temporary name in ``directory``; mode 0o666 under the umask
    (mkstemp would give 0600)."""
    while True:
        path = directory / f"{prefix}{secrets.token_hex(8)}-{name}"
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return path


def _stage(directory: Path, name: str, write, prefix: str = TEMP_PREFIX) -> Path:
    """Write one file through ``write(path)`` to a fresh temporary name in ``directory``."""
    tmp = _fresh_file(Path(directory), name, prefix)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
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
    """Finish or discard an interrupted ``commit``: a journal means every new file was complete, so the
    renames are finished; without one, temporary files are deleted and the previous checkpoint stands."""
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
            if (directory / tmp).is_file():  # else renamed already, before a crash
                os.replace(directory / tmp, directory / name)
        _fsync_dir(directory)
        journal.unlink(missing_ok=True)
    _remove_strays(directory, TEMP_PREFIX + "*")


def _remove_strays(directory, pattern: str) -> None:
    for stray in Path(directory).glob(pattern):
        if stray.is_file() and not stray.is_symlink():  # a folder of that name is not ours
            stray.unlink(missing_ok=True)


def remove_stale_writes(directory) -> None:
    """Delete the half-written log and plot a killed train.py left; call under the folder's lock."""
    for name in (CSV_FILE, PLOT_FILE):
        _remove_strays(directory, f"{WRITE_PREFIX}*-{name}")


def write_atomic(path, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one step: a reader sees the old file or the new one.
    Raises IsADirectoryError for a folder; leaves nothing behind when it fails."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(21, "Is a directory", str(path))
    tmp = _stage(path.parent, path.name, lambda p: Path(p).write_bytes(data), WRITE_PREFIX)
    try:
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # gone already once replaced


def write_if_changed(path, data: bytes) -> None:
    """``write_atomic``, unless ``path`` already holds exactly ``data``."""
    path = Path(path)
    with contextlib.suppress(OSError):
        if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
            return
    write_atomic(path, data)


def check_writable(directory) -> Path | None:
    """Raise OptimusError unless files can be created in ``directory`` (created if missing).
    Returns the outermost folder this created (for ``remove_if_empty``), or None."""
    directory = Path(directory)
    created = next((d for d in reversed([directory, *directory.parents]) if not d.exists()), None)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        _fresh_file(directory, "probe", WRITE_PREFIX).unlink()
    except OSError as err:
        remove_if_empty(created)
        raise utils.OptimusError(f"{directory}: checkpoint directory is not writable "
                                 f"({err.strerror}); choose another with --checkpoint_dir=DIR")
    return created


def remove_if_empty(folder) -> None:
    """Remove ``folder`` (None: nothing) if it holds nothing but empty folders."""
    if folder is None or not Path(folder).is_dir():
        return
    for root, dirs, files in os.walk(folder, topdown=False):
        if files:
            return
        try:
            os.rmdir(root)
        except OSError:
            return


def lock(directory) -> int:
    """Hold an exclusive lock on ``directory`` (flock on the folder itself: no lock file, a killed
    process releases it) for this process's life; refuse if taken. Returns the locked descriptor."""
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
    with open(path, "wb") as f:  # through a file: numpy would add ".npz" to a path without it
        np.savez(f, **arrays)


def load_vector(path: Path, size: int) -> np.ndarray:
    """A flat float .npy of ``size`` non-negative values finite in float32, as float32; no pickles."""
    try:
        flat = np.load(path, allow_pickle=False)
    except Exception as err:
        raise utils.OptimusError(f"{path}: not a plain float .npy array ({err}); {RESTORE_HINT}")
    if (not isinstance(flat, np.ndarray) or flat.dtype.kind != "f" or flat.shape != (size,)
            or not finite32(flat) or (flat < 0).any()):
        raise utils.OptimusError(
            f"{path}: expected {size} non-negative floats, finite in float32, found dtype "
            f"{getattr(flat, 'dtype', '?')} shape {getattr(flat, 'shape', '?')}; {RESTORE_HINT}")
    return flat.astype(np.float32)


def finite32(array) -> bool:
    """Whether every value stays finite once cast to float32 (what the networks compute in);
    integer arrays (counters, seeds) always do."""
    array = np.asarray(array)
    if array.dtype.kind not in "fc":
        return True
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(array.astype(np.float32)).all())


def _checked_state(state) -> dict:
    """``state`` if it is a whole training state as train.py writes it; else ValueError saying why."""
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise ValueError(f"not a format-{STATE_FORMAT} training state")
    if type(state.get("batch")) is not int or state["batch"] < 0:  # True is not batch 1
        raise ValueError("bad batch counter")
    if not isinstance(state.get("config"), dict):
        raise ValueError("no constants recorded")
    for key in ("history", "tests"):
        rows = state.get(key)
        if not isinstance(rows, list) or not all(
                isinstance(row, dict) and type(row.get("batch")) is int and 0 < row["batch"] <= state["batch"]
                for row in rows):
            raise ValueError(f"no list of batch records under {key!r}")
    switches, span = state.get("anchor_switches", []), state.get("anchor_range", [0, 0])
    if not isinstance(switches, list) or not all(type(b) is int and 0 <= b <= state["batch"] for b in switches):
        raise ValueError("anchor_switches is not a list of batch numbers")
    if not isinstance(span, list) or len(span) != 2 or not all(type(v) is int for v in span):
        raise ValueError("anchor_range is not a pair of latents")
    if state["batch"] and not isinstance(state.get("rng"), dict):
        raise ValueError("no random generator state")
    if "rng" in state:
        try:
            np.random.default_rng().bit_generator.state = state["rng"]
        except (TypeError, ValueError, KeyError) as err:
            raise ValueError(f"unusable random generator state ({type(err).__name__})") from None
    return state


def read_state(directory) -> dict:
    """The checkpoint's state.json, checked whole (``_checked_state``), or {} when absent. Only a
    regular file of at most MAX_STATE_BYTES is read: a FIFO, a device or an endless file is refused."""
    path = Path(directory) / STATE_FILE
    if not os.path.lexists(path):
        return {}
    try:
        info = os.stat(path)  # through a symlink: what it points to
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("not a regular file")
        if info.st_size > MAX_STATE_BYTES:
            raise ValueError(f"larger than {MAX_STATE_BYTES} bytes")
        with open(path, "rb") as f:
            text = f.read(MAX_STATE_BYTES + 1)
        if len(text) > MAX_STATE_BYTES:
            raise ValueError(f"larger than {MAX_STATE_BYTES} bytes")
        return _checked_state(json.loads(text))
    except RecursionError:
        raise utils.OptimusError(f"{path}: unreadable training state (nested too deeply); {RESTORE_HINT}")
    except (OSError, ValueError) as err:
        raise utils.OptimusError(f"{path}: unreadable training state ({utils.one_line(err)[:200]}); "
                                 f"{RESTORE_HINT}")


def save_network(network, path, architecture: dict) -> None:
    """Save the whole Keras model to ``path`` (.h5, Keras's legacy format) recording ``architecture``.
    Built in memory, then written in one plain write: a full disk is an OSError here, never HDF5
    failing halfway through its own writes."""
    from keras.src.legacy.saving import legacy_h5_format  # the .h5 writer behind model.save, to memory
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        legacy_h5_format.save_model_to_hdf5(network, f)
        f.attrs[ARCHITECTURE_ATTRIBUTE] = json.dumps(architecture)
    Path(path).write_bytes(buffer.getvalue())


def read_architecture(path):
    """The JSON value recorded in a weight file as its architecture, unchecked; ValueError if absent."""
    with h5py.File(path, "r") as f:
        text = f.attrs.get(ARCHITECTURE_ATTRIBUTE)
    if text is None:
        raise ValueError(f"no {ARCHITECTURE_ATTRIBUTE} attribute")
    return json.loads(text.decode() if isinstance(text, bytes) else str(text))


def require_file(path: Path) -> None:
    """Raise OptimusError naming ``path`` unless it is a file."""
    if not path.is_file():
        raise utils.OptimusError(f"{path}: missing checkpoint file; {RESTORE_HINT}")


def unusable(path: Path, what: str, err: Exception) -> utils.OptimusError:
    """The one-line error for a weight file that is not ``what``, with the first line of ``err``."""
    message = str(err).splitlines()[0][:200] if str(err) else "unreadable"
    return utils.OptimusError(f"{path}: not a weight file of {what} ({type(err).__name__}: "
                              f"{message}); {RESTORE_HINT}")


def load_weights(network, path, architecture: dict) -> None:
    """Load a weight file into the Keras ``network``, built for ``architecture``; never runs its config.
    Raises OptimusError naming the file when it is missing, unreadable, of another architecture
    or not finite."""
    path = Path(path)
    require_file(path)
    try:
        recorded = read_architecture(path)
        if recorded != architecture:
            raise ValueError(f"it holds {recorded}, not {architecture}")
        network.load_weights(path)
    except Exception as err:  # h5py, json and Keras raise many types for a bad file
        raise unusable(path, "this architecture", err)
    if not all(np.isfinite(np.asarray(w)).all() for w in network.weights):
        raise utils.OptimusError(f"{path}: holds non-finite weights; {RESTORE_HINT}")


def checked_architecture(recorded, role: str) -> dict:
    """A weight file's architecture record, validated for ``role``: what a registered part of that role
    writes, with values of the right types and rules, whose parts support each other; else ValueError."""
    if not isinstance(recorded, dict):
        raise ValueError("not a JSON object")
    root = registry.ROLES[role]
    if root not in recorded:
        raise ValueError(f"it holds no {role}")
    specs = {**{constant: (str, rules.one_of(*table)) for constant, table in registry.TABLES.items()}, **registry.PARAMETERS}
    for key, value in recorded.items():
        if key not in specs:
            raise ValueError(f"{key}={value!r} is not a known setting")
        kind, rule = specs[key]
        if type(value) is not kind:  # strict: True is not the integer 1
            raise ValueError(f"{key}={value!r} is not {kind.__name__}")
        rules.check(key, value, kind(), rule)
    try:
        expected = registry.ARCHITECTURES[role](recorded)
    except KeyError as missing:
        raise ValueError(f"a setting is missing: {missing}") from None
    if set(recorded) != set(expected):
        raise ValueError(f"expected the settings {sorted(expected)}")
    broken = registry.unmet({c: v for c, v in recorded.items() if c in registry.TABLES})
    if broken is not None:
        constant, other, text = broken
        raise ValueError(f"{constant}={recorded[constant]!r} needs {other} to be {text}")
    return recorded


def load_network(path, role: str):
    """The network part a weight file records (``save_network``), rebuilt in code, with its
    weights. role: "generator" or "discriminator", which the file must hold."""
    path = Path(path)
    architecture = _read_weight_file(path, role)[0]
    if "tensorflow" not in sys.modules:  # test.py's first network: TensorFlow starts here, quietly
        utils.quiet_startup()
    network = registry.build(architecture, role)
    load_weights(network.model, path, architecture)
    return network


def load_networks(directory) -> tuple:
    """(generator, discriminator) of a checkpoint, rebuilt in code from the architecture each weight file
    names (only weights are read: a crafted file cannot run code); refuses a half-committed folder."""
    g_path, d_path = _weight_files(directory)
    return load_network(g_path, "generator"), load_network(d_path, "discriminator")


def _weight_files(directory) -> tuple:
    """The generator's and discriminator's weight files of a checkpoint that can be loaded: refuses
    a folder whose last write was interrupted, or that holds neither."""
    directory = Path(directory)
    journal = directory / JOURNAL_FILE
    if journal.exists():
        raise utils.OptimusError(
            f"{journal}: a checkpoint write was interrupted, so the files may mix two versions; "
            "run training/train.py with this checkpoint_dir to complete it")
    g_path, d_path = directory / GENERATOR_FILE, directory / DISCRIMINATOR_FILE
    if not g_path.is_file() and not d_path.is_file():
        raise utils.OptimusError(f"no pre-trained models in {directory}: run training/train.py first")
    return g_path, d_path


def read_dense_weights(path) -> list:
    """[kernel, bias] of each layer with weights in a Keras .h5 file, in the model's order, by h5py alone."""
    with h5py.File(path, "r") as f:
        weights = f["model_weights"]
        return [[np.asarray(weights[name][w]) for w in _names(weights[name].attrs["weight_names"])]
                for name in _names(weights.attrs["layer_names"]) if len(weights[name].attrs["weight_names"])]


def _names(values) -> list:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def _read_weight_file(path: Path, role: str, dense: bool = False) -> tuple:
    """(checked architecture, each layer's [kernel, bias] read by h5py alone, or None without ``dense``)
    of a weight file; refuses one that is not a known ``role``'s or holds non-finite weights."""
    require_file(path)
    try:
        architecture = checked_architecture(read_architecture(path), role)
        arrays = read_dense_weights(path) if dense else None
    except Exception as err:  # h5py, json and the checks raise many types for a bad file
        raise unusable(path, f"a known {role}", err)
    if dense and not all(np.isfinite(w).all() for layer in arrays for w in layer):
        raise utils.OptimusError(f"{path}: holds non-finite weights; {RESTORE_HINT}")
    return architecture, arrays


def load_generator(directory):
    """The generator of a checkpoint, for drawing primes: as numpy tables when its scorer folds
    (``sampling.FoldedHead``, no TensorFlow), else rebuilt in Keras (``load_networks``). The
    discriminator's file is checked either way: a checkpoint is used whole or refused."""
    g_path, d_path = _weight_files(directory)
    architecture, dense = _read_weight_file(g_path, "generator", dense=True)
    methods = registry.methods(architecture)
    if not sampling.FoldedHead.fits(architecture, methods):
        return load_networks(directory)[0]
    _read_weight_file(d_path, "discriminator", dense=True)
    widths = ([methods["generator_input"].build.width(architecture)]
              + [architecture["generator_units"]] * architecture["generator_layers"] + [1])
    shapes = [[tuple(w.shape) for w in layer] for layer in dense]
    if shapes != [[(a, b), (b,)] for a, b in zip(widths[:-1], widths[1:])]:
        raise unusable(g_path, "a known generator", ValueError(f"its layers' shapes {shapes} are not "
                                                               "this architecture's"))
    return sampling.FoldedHead(architecture, methods, dense)


# ---------------------------------------------------------------------------------------------
# A trainer's whole checkpoint (the trainer: see training_utils.Trainer)


def _variable_groups(trainer) -> tuple:
    """(key prefix, variables) kept in OPTIMIZER_FILE: both optimizers and the dropout seed states,
    the networks' only variables outside the weight files (a resumed run draws the same masks)."""
    seeds = [v for network in (trainer.generator.model, trainer.discriminator.model)
             for v in network.variables if not any(v is w for w in network.weights)]
    return (("g", trainer.generator_optimizer.variables),
            ("d", trainer.discriminator_optimizer.variables), ("s", seeds))


class NotFiniteError(utils.OptimusError):
    """A trainer's state holds NaN or inf: it is not saved."""


def check_finite(trainer) -> None:
    """Raise NotFiniteError naming what holds NaN or inf: weights, Fisher or optimizer state."""
    for what, values in (("generator weights", trainer.generator.model.weights),
                         ("discriminator weights", trainer.discriminator.model.weights),
                         ("generator Fisher", trainer.ewc_generator.fisher),
                         ("discriminator Fisher", trainer.ewc_discriminator.fisher),
                         ("EWC anchors and estimates", [v for _, ewc in _ewc_groups(trainer)
                                                        for name in EWC_VECTORS for v in getattr(ewc, name)]),
                         ("optimizer state", [v for _, group in _variable_groups(trainer) for v in group])):
        if not all(finite32(v.numpy()) for v in values):
            raise NotFiniteError(f"the {what} hold NaN or inf values")


def save(directory, trainer, state: dict) -> None:
    """Write the trainer's whole checkpoint to ``directory`` as one unit; NotFiniteError, writing
    nothing, if any value is NaN or inf. state: JSON-serialisable."""
    check_finite(trainer)
    g, d = trainer.generator, trainer.discriminator
    arrays = {f"{prefix}{i:03d}": np.asarray(v)
              for prefix, variables in _variable_groups(trainer) for i, v in enumerate(variables)}
    commit(directory, {
        GENERATOR_FILE: lambda p: save_network(g.model, p, g.architecture),
        DISCRIMINATOR_FILE: lambda p: save_network(d.model, p, d.architecture),
        FISHER_GENERATOR_FILE: lambda p: _save_npy(p, trainer.ewc_generator.flat()),
        FISHER_DISCRIMINATOR_FILE: lambda p: _save_npy(p, trainer.ewc_discriminator.flat()),
        EWC_FILE: lambda p: _save_npz(p, {f"{prefix}_{name}": ewc.flat(name)
                                           for prefix, ewc in _ewc_groups(trainer) for name in EWC_VECTORS}),
        OPTIMIZER_FILE: lambda p: _save_npz(p, arrays),
        STATE_FILE: lambda p: Path(p).write_text(json.dumps(state, indent=1)),
    })


EWC_VECTORS = ("anchor", "estimate")     # what EWC_FILE holds of each network's EWC state


def _ewc_groups(trainer) -> tuple:
    return (("g", trainer.ewc_generator), ("d", trainer.ewc_discriminator))


def _load_ewc(directory: Path, trainer, anchor: str) -> None:
    """The EWC anchors and Fisher estimates from EWC_FILE; without it (an older checkpoint), the
    weights and the penalty's Fisher, which is what the per-batch anchor holds after every batch."""
    path = directory / EWC_FILE
    if not path.exists():
        if anchor != "batch":
            raise utils.OptimusError(f"{path}: missing, and a checkpoint of ewc_anchor={anchor!r} "
                                     f"needs its anchors; {RESTORE_HINT}")
        for (_, ewc), network in zip(_ewc_groups(trainer), (trainer.generator, trainer.discriminator)):
            ewc.set_flat(ewc.flat(), "estimate")
            ewc.hold(network.model)
        return
    require_file(path)  # not a FIFO: np.load would wait on it
    try:
        with np.load(path, allow_pickle=False) as saved:
            arrays = {f"{p}_{n}": saved[f"{p}_{n}"] for p, _ in _ewc_groups(trainer) for n in EWC_VECTORS}
        for prefix, ewc in _ewc_groups(trainer):
            for name in EWC_VECTORS:
                vector = arrays[f"{prefix}_{name}"]
                if vector.dtype.kind != "f" or not finite32(vector) or (name == "estimate" and (vector < 0).any()):
                    raise ValueError(f"{prefix}_{name} holds values that are not finite floats"
                                     + (" >= 0" if name == "estimate" else ""))
                ewc.set_flat(vector.astype(np.float32), name)
    except Exception as err:
        raise utils.OptimusError(f"{path}: unusable EWC state ({utils.one_line(err)[:200]}); {RESTORE_HINT}")


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
                if not finite32(arrays[key]):
                    raise ValueError(f"{key} holds values that are not finite in float32")
                v.assign(arrays[key])
    except Exception as err:
        raise utils.OptimusError(f"{path}: unusable optimizer state ({err}); restore it, or "
                                 "delete it to resume with fresh Adam moments")


def load(directory, trainer) -> dict:
    """Load a whole checkpoint into ``trainer`` (weights of its architectures, Fisher, anchors,
    optimizer state); returns the state dict. OptimusError names the first bad file (the trainer
    may then be partly loaded)."""
    directory = Path(directory)
    state = read_state(directory)
    g, d = trainer.generator, trainer.discriminator
    for network, name in ((g, GENERATOR_FILE), (d, DISCRIMINATOR_FILE)):
        load_weights(network.model, directory / name, network.architecture)
    for ewc, name in ((trainer.ewc_generator, FISHER_GENERATOR_FILE),
                      (trainer.ewc_discriminator, FISHER_DISCRIMINATOR_FILE)):
        ewc.set_flat(load_vector(directory / name, ewc.flat().size))
    _load_ewc(directory, trainer, state.get("config", {}).get("ewc_anchor", "batch"))
    path = directory / OPTIMIZER_FILE
    if path.exists():
        rates = [float(o.learning_rate) for o in (trainer.generator_optimizer,
                                                   trainer.discriminator_optimizer)]
        _load_variables(path, trainer)
        # the moments carry over, but the learning rate is this run's: --lr may have changed
        trainer.generator_optimizer.learning_rate, trainer.discriminator_optimizer.learning_rate = rates
    return state
