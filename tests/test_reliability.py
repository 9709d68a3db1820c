"""Reliability of training/train.py and test.py: crashes, Ctrl-C, bad input, hostile files, divergence.

Fast tests call the scripts' ``main`` in-process. The slow ones start real processes, each paying
seconds of TensorFlow import, so runs that do not depend on one another start together.
"""
import contextlib
import ctypes
import hashlib
import importlib.util
import io
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import utils
from support import error_line, own_lines, whole_state
from training import bookkeeping, checkpoint, model, registry, train
from training import training_utils as tu

ROOT = Path(__file__).resolve().parents[1]
# Loaded by path: the name "test" would also match the standard library's test package.
_spec = importlib.util.spec_from_file_location("optimus_test", ROOT / "test.py")
optimus_test = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(optimus_test)
TRAIN_SCRIPT = ROOT / "training" / "train.py"
STEPS = 3                       # discriminator steps per batch in every run below
TINY = ("--batch_size=200", f"--steps={STEPS}", "--generator_steps=1", "--nb_samples=10",
        "--test_samples=200", "--minimum_batch_size=20")
REAL_HEAD = ("--generator_head=real", "--discriminator=seed", "--discriminator_input=scalar")  # the seed's method
SEED_TINY = tuple(a for a in TINY if not a.startswith("--generator_steps")) + REAL_HEAD
RUN_TIMEOUT = 180               # seconds for one script run to end on its own
WAIT_TIMEOUT = 60               # seconds to wait for a line of output or a file
PR_CAPBSET_DROP = 24            # prctl option (linux/prctl.h)
CAPABILITIES_OVERRIDING_MODES = (1, 2, 3)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
START_LINE = re.compile(r"Resuming from .* at batch (\d+)|No checkpoint in .*: starting fresh")


# ---------------------------------------------------------------------------------------------
# Helpers


def make_trainer(argv=(), seed: int = 0) -> tuple:
    """(trainer, config) for train.py's constants with ``argv`` overrides."""
    config = train.parse_config(list(argv))
    keras.utils.set_random_seed(seed)
    return registry.build_trainer(config), config


def save(directory: Path, made: tuple, batch: int = 1) -> Path:
    """A checkpoint as train.py leaves it after ``batch`` batches (history left empty)."""
    trainer, config = made
    checkpoint.save(directory, trainer, whole_state(config, batch))
    return directory


def network_weights(trainer: tu.Trainer) -> list:
    return trainer.generator.model.weights + trainer.discriminator.model.weights


def digests(directory: Path) -> dict:
    """{relative path: sha256} of every file under ``directory``."""
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def leftovers(directory: Path) -> list:
    """Temporary files and journal of an unfinished checkpoint write."""
    return sorted(p.name for p in directory.glob(".optimus-*"))


def snapshot(trainer: tu.Trainer) -> list:
    """Every array a checkpoint restores: weights, Fisher diagonals, EWC anchors and estimates,
    optimizer variables.

    The learning rate is left out: a resumed run keeps the one it was given (--lr).
    """
    optimizer_variables = [v for opt in (trainer.generator_optimizer, trainer.discriminator_optimizer)
                           for v in opt.variables if not v.path.endswith("learning_rate")]
    variables = network_weights(trainer) + optimizer_variables
    return ([np.array(v.numpy()) for v in variables]
            + [ewc.flat(name) for ewc in (trainer.ewc_generator, trainer.ewc_discriminator)
               for name in ("fisher", "anchor", "estimate")])


def assert_same_arrays(a: list, b: list) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def script_env() -> dict:
    """The environment of a script run: without the test suite's TF_CPP settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}


STARTED = []                    # the processes ``start`` made: killed after each test, so that a
                                # failed assertion leaves no train.py running on


@pytest.fixture(autouse=True)
def no_process_outlives_its_test():
    yield
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def start(args, log: Path, script: Path = TRAIN_SCRIPT, **kwargs) -> subprocess.Popen:
    """Start a script with stdout and stderr going to ``log`` and ``log``.err."""
    with open(log, "w") as out, open(log.with_suffix(".err"), "w") as err:
        proc = subprocess.Popen([sys.executable, str(script), *args], stdout=out, stderr=err,
                                cwd=ROOT, env=kwargs.pop("env", script_env()), **kwargs)
    STARTED.append(proc)
    return proc


def wait_for_output(proc: subprocess.Popen, log: Path, pattern) -> re.Match:
    """Poll ``log`` until ``pattern`` appears; fail if the process ends or time runs out."""
    deadline = time.monotonic() + WAIT_TIMEOUT
    while time.monotonic() < deadline:
        match = re.search(pattern, log.read_text())
        if match:
            return match
        if proc.poll() is not None:
            break
        time.sleep(0.005)
    proc.kill()
    proc.wait()
    pytest.fail(f"{pattern!r} never appeared (exit {proc.returncode}):\n{log.read_text()}\n"
                f"{log.with_suffix('.err').read_text()}")


def finish(proc: subprocess.Popen, log: Path) -> tuple:
    """(exit status, stdout, stderr) once the process has ended."""
    proc.wait(timeout=RUN_TIMEOUT)
    return proc.returncode, log.read_text(), log.with_suffix(".err").read_text()


def check_checkpoint(directory: Path, batch: int, reader: tuple) -> None:
    """The checkpoint in ``directory`` loads whole, is at ``batch``, and its files agree."""
    trainer, _ = reader
    state = checkpoint.load(directory, trainer)
    assert state["batch"] == batch == len(state["history"])
    trained = sum(1 for row in state["history"] if not row["skipped"])
    # the optimizer file and state.json come from the same commit
    assert int(trainer.discriminator_optimizer.iterations) == trained * STEPS


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A valid default checkpoint at batch 1 (do not modify: copy it)."""
    return save(tmp_path_factory.mktemp("base"), make_trainer(TINY))


@pytest.fixture
def copy_of(base, tmp_path):
    return lambda: Path(shutil.copytree(base, tmp_path / "checkpoint"))


@pytest.fixture
def run_main(monkeypatch, capsys):
    """Call a script's main(argv) in-process; returns (exit status, stdout, stderr)."""
    # train() turns on TensorFlow's op determinism, which would outlive the test in this process
    monkeypatch.setattr(tf.config.experimental, "enable_op_determinism", lambda: None)

    def run(module, argv):
        status = module.main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return status, out, err
    return run


class Payload:
    """Unpickling this creates the file ``path``: a harmless stand-in for running code."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def plant_pickle(path: Path, marker: Path) -> None:
    np.save(path, np.array([Payload(marker)], dtype=object), allow_pickle=True)


# ---------------------------------------------------------------------------------------------
# Bad constants: exit 2 and one line naming the constant and what it may be, before any work

BAD_CONSTANTS = [  # (arguments, what the one line must name)
    (["--batch_size=0"], ["batch_size"]),
    (["--low_latent=10", "--high_latent=5"], ["low_latent", "high_latent"]),
    (["--wanted_prime_ratio=1.5"], ["wanted_prime_ratio"]),
    (["--steps=-1"], ["steps"]),
    (["--steps=abc"], ["steps", "'abc'"]),
    (["--lr=-1"], ["lr"]),
    (["--name=1"], ["'name'", "nb_batches"]),
    (["--steps"], ["--steps=VALUE"]),
    (["--name"], ["'name'"]),
    (["steps=3"], ["steps=3", "--name=value"]),
    (["--batch_size=2001", "--high_latent=2000"], ["batch_size", "high_latent"]),
    (["--seed=1.5"], ["seed"]),
    (["--discriminator_loss=mse"], ["discriminator_loss", "'focal'"]),
    (["--fisher_decay=2"], ["fisher_decay"]),
    (["--checkpoint_dir="], ["checkpoint_dir"]),
    (["--test_samples=0"], ["test_samples"]),
    (["--high_latent=10**6"], ["high_latent"]),
    (["--steps=3\n4"], ["steps"]),
    (["--generator_head=gan"], ["generator_head", "'offset'"]),
    (["--reward=profit"], ["reward", "'belief'"]),
    (["--offsets=1"], ["offsets"]),
    (["--largest_prime=2"], ["largest_prime"]),
    (["--discriminator_fisher=diagonal"], ["discriminator_fisher"]),
    (["--generator_head=real", "--offsets=8"], ["offsets", "generator_head"]),
    (["--negative_l2=0.1"], ["negative_l2", "generator_head"]),
    (["--generator_head=original"], ["generator_head", "discriminator", "'seed'"]),
    (["--discriminator=gln", "--generator_head=real"], ["gln", "generator_head"]),
    (["--discriminator=gln", "--discriminator_input=scalar"], ["gln", "discriminator_input"]),
    (["--discriminator=gln", "--discriminator_fisher=model"], ["discriminator_fisher"]),
    (["--discriminator=svm"], ["discriminator", "'mlp'"]),
]


@pytest.mark.parametrize("argv, fragments", BAD_CONSTANTS, ids=[" ".join(a) for a, _ in BAD_CONSTANTS])
def test_bad_constant_exits_2_with_one_line_naming_it_and_the_allowed_values(
        argv, fragments, run_main, tmp_path):
    with pytest.raises(utils.OptimusError):
        train.parse_config(argv)
    status, out, err = run_main(train, [f"--checkpoint_dir={tmp_path / 'unused'}", *argv])
    assert status == 2 and out == ""
    line = error_line(err)
    for fragment in fragments:
        assert fragment in line
    assert not (tmp_path / "unused").exists()  # refused before touching the disk


# ---------------------------------------------------------------------------------------------
# Hostile or broken checkpoints: exit 2, one line naming the file, every file left as it was


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


CORRUPTIONS = {
    "truncated generator": (checkpoint.GENERATOR_FILE, lambda d: _truncate(d / checkpoint.GENERATOR_FILE)),
    "truncated discriminator": (checkpoint.DISCRIMINATOR_FILE,
                                lambda d: _truncate(d / checkpoint.DISCRIMINATOR_FILE)),
    "empty generator": (checkpoint.GENERATOR_FILE, lambda d: (d / checkpoint.GENERATOR_FILE).write_bytes(b"")),
    "generator file as discriminator": (
        checkpoint.DISCRIMINATOR_FILE,
        lambda d: shutil.copy(d / checkpoint.GENERATOR_FILE, d / checkpoint.DISCRIMINATOR_FILE)),
    "another architecture's generator": (
        checkpoint.GENERATOR_FILE,
        lambda d: checkpoint.save_network(model.real_generator(original=True), d / checkpoint.GENERATOR_FILE,
                                     {"generator_head": "original"})),
    "a keras model that names no architecture": (
        checkpoint.GENERATOR_FILE,
        lambda d: keras.Sequential([keras.Input((1,)), keras.layers.Dense(7),
                                    keras.layers.Dense(1)]).save(d / checkpoint.GENERATOR_FILE)),
    "fisher of the wrong length": (
        checkpoint.FISHER_DISCRIMINATOR_FILE,
        lambda d: np.save(d / checkpoint.FISHER_DISCRIMINATOR_FILE, np.zeros(10, np.float32))),
    "fisher with a negative entry": (
        checkpoint.FISHER_GENERATOR_FILE,
        lambda d: np.save(d / checkpoint.FISHER_GENERATOR_FILE,
                          -np.load(d / checkpoint.FISHER_GENERATOR_FILE) - 1.0)),
    "truncated fisher": (checkpoint.FISHER_GENERATOR_FILE,
                         lambda d: _truncate(d / checkpoint.FISHER_GENERATOR_FILE)),
    "garbage state": (checkpoint.STATE_FILE, lambda d: (d / checkpoint.STATE_FILE).write_text("{\n")),
    "garbage journal": (checkpoint.JOURNAL_FILE, lambda d: (d / checkpoint.JOURNAL_FILE).write_text("[")),
    "journal pointing outside": (
        checkpoint.JOURNAL_FILE,
        lambda d: (d / checkpoint.JOURNAL_FILE).write_text(json.dumps({checkpoint.STATE_FILE: "../state.json"}))),
    "missing discriminator": (checkpoint.DISCRIMINATOR_FILE,
                              lambda d: (d / checkpoint.DISCRIMINATOR_FILE).unlink()),
}


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_broken_checkpoint_is_refused_with_one_line_and_left_unchanged(case, copy_of, run_main):
    named, corrupt = CORRUPTIONS[case]
    directory = copy_of()
    corrupt(directory)
    before = digests(directory.parent)
    status, out, err = run_main(train, [f"--checkpoint_dir={directory}", *TINY])
    assert status == 2 and out == ""
    assert named in error_line(err)
    assert digests(directory.parent) == before


@pytest.mark.parametrize("name", [checkpoint.FISHER_GENERATOR_FILE, checkpoint.OPTIMIZER_FILE])
def test_a_pickle_in_a_checkpoint_is_refused_without_running(name, copy_of, run_main, tmp_path):
    directory = copy_of()
    control, marker = tmp_path / "control-marker", tmp_path / "marker"
    plant_pickle(tmp_path / "control.npy", control)
    np.load(tmp_path / "control.npy", allow_pickle=True)  # the payload is live: it runs when loaded
    assert control.exists()
    if name.endswith(".npz"):
        with open(directory / name, "wb") as f:
            np.savez(f, g000=np.array([Payload(marker)], dtype=object))
    else:
        plant_pickle(directory / name, marker)
    before = digests(directory)
    status, out, err = run_main(train, [f"--checkpoint_dir={directory}", *TINY])
    assert status == 2 and name in error_line(err)
    assert not marker.exists()
    assert digests(directory) == before


# ---------------------------------------------------------------------------------------------
# Crashes inside the commit of a checkpoint: the next start sees one whole version


class Crash(BaseException):
    """Stands for the process dying at that point (not an Exception: nothing catches it)."""


def test_a_crash_at_any_point_of_the_commit_leaves_one_whole_checkpoint(base, tmp_path, monkeypatch):
    writer, reader = make_trainer(TINY), make_trainer(TINY, seed=7)
    checkpoint.load(base, writer[0])  # same weights, and the optimizer as saved
    old = snapshot(writer[0])
    for v in network_weights(writer[0]):
        v.assign(v * 1.5 + 0.25)
    for opt in (writer[0].generator_optimizer, writer[0].discriminator_optimizer):
        for v in opt.variables:
            v.assign(v + tf.cast(1, v.dtype))
    for ewc in (writer[0].ewc_generator, writer[0].ewc_discriminator):
        for name in ("fisher", "anchor", "estimate"):
            ewc.set_flat(ewc.flat(name) + 1.0, name)
    new = snapshot(writer[0])
    real_replace, real_fsync = os.replace, checkpoint._fsync_dir
    # the commit's steps: journal rename, directory sync, one rename per file, directory sync
    for crash_at in range(len(checkpoint.FILES) + 3):
        directory = Path(shutil.copytree(base, tmp_path / f"crash{crash_at}"))
        steps = []

        def step(run, *args):
            if len(steps) == crash_at:
                raise Crash
            steps.append(args)
            return run(*args)
        monkeypatch.setattr(os, "replace", lambda src, dst: step(real_replace, src, dst)
                            if Path(dst).parent == directory else real_replace(src, dst))
        monkeypatch.setattr(checkpoint, "_fsync_dir", lambda d: step(real_fsync, d))
        with pytest.raises(Crash):
            save(directory, writer, batch=2)
        monkeypatch.undo()
        assert leftovers(directory)  # the crash left work for the next start
        if crash_at == 0:  # test.py reads the checkpoint that stands
            generator, discriminator = checkpoint.load_networks(directory)
            loaded = generator.model.weights + discriminator.model.weights
            assert_same_arrays([w.numpy() for w in loaded], old[:len(loaded)])
        else:  # some files may be renamed already: test.py must not read a mixed pair
            with pytest.raises(utils.OptimusError, match=checkpoint.JOURNAL_FILE):
                checkpoint.load_networks(directory)
        checkpoint.recover(directory)  # what the next start does first
        assert leftovers(directory) == []
        state = checkpoint.load(directory, reader[0])
        assert state["batch"] == (1 if crash_at == 0 else 2)
        assert_same_arrays(snapshot(reader[0]), old if crash_at == 0 else new)


# ---------------------------------------------------------------------------------------------
# A misbehaving generator: caught before any label, one line, checkpoint untouched


def diverging_checkpoint(directory: Path, kind: str) -> tuple:
    """(directory, the run's arguments): a checkpoint with finite weights whose generator emits
    NaN, 0, huge values or inf (the real head: the offset head cannot diverge)."""
    argv = [*SEED_TINY] if kind == "nan" else [*TINY[:-1], "--generator_head=original",
                                                "--discriminator=seed", "--discriminator_input=scalar"]
    argv = [a for a in argv if not a.startswith("--generator_steps")]
    directory.mkdir()
    made = make_trainer(argv)
    for layer in made[0].generator.model.layers:
        if isinstance(layer, keras.layers.Dense):
            shape = layer.kernel.shape
            if kind == "nan":  # +-1e30 in a checkerboard: inf - inf in the second layer
                value = np.where(np.indices(shape).sum(0) % 2 == 0, 1e30, -1e30)
            else:  # the original form computes G(z) = 100**10 * c**11 * z
                c = {"zero": 0.0, "huge": 10 ** (-6 / 11), "inf": 100.0}[kind]
                value = np.full(shape, c)
            layer.kernel.assign(value.astype(np.float32))
    return save(directory, made), argv


DIVERGENCES = {  # kind: what check_outputs reports first
    "nan": "nan", "zero": "0.0", "huge": "e+1", "inf": "inf"}


@pytest.mark.parametrize("kind", list(DIVERGENCES))
def test_diverging_generator_stops_training_before_labels_with_one_line(
        kind, tmp_path, run_main, monkeypatch):
    directory, argv = diverging_checkpoint(tmp_path / "checkpoint", kind)
    before = digests(directory)

    def forbidden(*args, **kwargs):
        raise AssertionError("a generator output reached the primality labels")
    monkeypatch.setattr(tu, "label", forbidden)
    monkeypatch.setattr(utils, "to_odd_integer", forbidden)
    status, out, err = run_main(train, [f"--checkpoint_dir={directory}", *argv])
    assert status == 2 and "at batch 1" in out
    line = error_line(err)
    assert re.search(r"generator emitted \d+ of 200 outputs", line) and DIVERGENCES[kind] in line
    assert digests(directory) == before


def test_outputs_past_the_limit_are_refused_before_the_uint64_map():
    for bad in (utils.OUTPUT_LIMIT * 2, 2.0**63, 2.0**64, -1.0, 0.0, np.nan, -np.inf):
        with pytest.raises(utils.GeneratorDivergedError):
            utils.check_outputs(np.array([3.0, bad]))
    assert utils.check_outputs(np.array([utils.OUTPUT_LIMIT])).tolist() == [utils.OUTPUT_LIMIT]
    for bad in (2.0**63, 2.0**64):  # the map itself refuses rather than wrapping around
        with pytest.raises(ValueError):
            utils.to_odd_integer(np.array([bad]))


# ---------------------------------------------------------------------------------------------
# test.py on a missing or broken checkpoint, or too many samples: exit 2, one line


def test_test_script_refuses_bad_checkpoints_and_sample_counts(copy_of, tmp_path, run_main):
    good = copy_of()
    broken = Path(shutil.copytree(good, tmp_path / "broken"))
    shutil.copy(broken / checkpoint.GENERATOR_FILE, broken / checkpoint.DISCRIMINATOR_FILE)
    diverging, _ = diverging_checkpoint(tmp_path / "diverging", "huge")
    interrupted, _ = diverging_checkpoint(tmp_path / "interrupted", "nan")
    (interrupted / checkpoint.JOURNAL_FILE).write_text("{}")
    cases = [
        ([f"--checkpoint_dir={tmp_path / 'absent'}"], "no pre-trained models"),
        ([f"--checkpoint_dir={broken}"], checkpoint.DISCRIMINATOR_FILE),
        ([f"--checkpoint_dir={interrupted}"], checkpoint.JOURNAL_FILE),
        ([f"--checkpoint_dir={diverging}", "--n_samples=50"], "generator emitted"),
        ([f"--checkpoint_dir={good}", "--n_samples=11", "--high_latent=10"], "n_samples"),
        ([f"--checkpoint_dir={good}", "--candidates=/nonexistent/dir/out.csv", "--n_samples=50"],
         "out.csv"),
    ]
    for argv, fragment in cases:
        before = digests(tmp_path)
        status, out, err = run_main(optimus_test, argv)
        assert status == 2 and out == "" and fragment in error_line(err), argv
        assert digests(tmp_path) == before


# ---------------------------------------------------------------------------------------------
# The same refusals from real processes: nothing but the one line reaches stderr


def drop_file_mode_override() -> None:
    """In a child about to run as root: drop the capabilities that let root ignore file modes.

    Root cannot simply become another user here: the interpreter may live in /root. Dropped from
    the bounding set, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH and CAP_FOWNER are gone after exec.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in CAPABILITIES_OVERRIDING_MODES:
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


@pytest.fixture(scope="module")
def cli(tmp_path_factory, base):
    """{name: (exit status, stdout, stderr, checkpoint dir or None, digests before)}."""
    root = tmp_path_factory.mktemp("cli")
    diverging, diverging_argv = diverging_checkpoint(root / "diverging", "nan")
    # read-only: mode 0o555 and, for root, no capability that overrides file modes
    read_only = Path(shutil.copytree(base, root / "read_only"))
    read_only.chmod(0o555)
    unprivileged = {"preexec_fn": drop_file_mode_override} if os.geteuid() == 0 else {}
    try:
        probe = subprocess.run([sys.executable, "-c", f"open({str(read_only / 'probe')!r}, 'w')"],
                               capture_output=True, **unprivileged)
        writable = probe.returncode == 0
    except subprocess.SubprocessError:  # no right to drop capabilities: root writes anyway
        writable, unprivileged = True, {}
    (read_only / "probe").unlink(missing_ok=True)
    runs = {  # name: (checkpoint dir, arguments, Popen options)
        "steps_abc": (None, ["--steps=abc"], {}),
        "latent_order": (None, ["--low_latent=10", "--high_latent=5"], {}),
        "diverging": (diverging, diverging_argv, {}),
        "read_only": (read_only, list(TINY), unprivileged),
    }
    before = {name: directory and digests(directory) for name, (directory, _, _) in runs.items()}
    procs = {}
    for name, (directory, argv, kwargs) in runs.items():
        where = [f"--checkpoint_dir={directory}"] if directory else []
        procs[name] = start([*where, *argv], root / f"{name}.out", **kwargs)
    results = {}
    for name, proc in procs.items():
        results[name] = (*finish(proc, root / f"{name}.out"), runs[name][0], before[name])
    results["read_only_writable"] = writable
    yield results
    read_only.chmod(0o755)


def _assert_refused(result, *fragments):
    status, out, err, directory, before = result
    assert status == 2, err
    line = error_line(err)
    for fragment in fragments:
        assert fragment in line
    if directory is not None:
        assert digests(directory) == before


@pytest.mark.slow
def test_cli_bad_constants_exit_2_with_only_one_line_on_stderr(cli):
    _assert_refused(cli["steps_abc"], "steps", "'abc'")
    _assert_refused(cli["latent_order"], "low_latent", "high_latent")
    assert cli["steps_abc"][1] == cli["latent_order"][1] == ""


@pytest.mark.slow
def test_cli_diverging_generator_exits_2_with_one_line_and_keeps_the_checkpoint(cli):
    _assert_refused(cli["diverging"], "generator emitted", "NaN")


@pytest.mark.slow
def test_cli_read_only_checkpoint_dir_exits_2_and_changes_nothing(cli):
    if cli["read_only_writable"]:
        pytest.skip("this user can write to a mode 0o555 directory")
    status, out, err, directory, before = cli["read_only"]
    _assert_refused(cli["read_only"], str(directory), "not writable")
    assert out == ""


# ---------------------------------------------------------------------------------------------
# kill -9 at random moments, during checkpoint writes included


def landed_batch(directory: Path) -> int | None:
    """The batch of the last checkpoint that fully landed: a journal's, else state.json's."""
    journal = directory / checkpoint.JOURNAL_FILE
    if journal.exists():
        staged = directory / json.loads(journal.read_text()).get(checkpoint.STATE_FILE, "-")
        if staged.exists():
            return json.loads(staged.read_text())["batch"]
    state = directory / checkpoint.STATE_FILE
    return json.loads(state.read_text())["batch"] if state.exists() else None


POLL_SECONDS = 0.001            # between looks for a file: a checkpoint file is written in ~10 ms


def wait_for_file(proc, directory: Path, pattern: str, timeout: float) -> bool:
    """Poll until a file matching ``pattern`` appears; False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if any(directory.glob(pattern)):
            return True
        time.sleep(POLL_SECONDS)
    return False


@pytest.mark.slow
def test_kill_9_at_random_moments_resumes_from_the_last_complete_checkpoint(tmp_path):
    rng = random.Random(9)
    directory = tmp_path / "checkpoint"
    argv = [f"--checkpoint_dir={directory}", *TINY, "--nb_batches=100000"]
    reader = make_trainer(TINY, seed=7)
    expected, hit_a_write = None, 0
    # (batches to finish first, when to stop it, how): the first batch takes seconds of tracing.
    # SIGTERM, unhandled, ends the process as abruptly as SIGKILL.
    plan = [(0, "staging", signal.SIGKILL), (rng.randint(2, 4), "random", signal.SIGKILL),
            (rng.randint(2, 4), "journal", signal.SIGKILL),
            (rng.randint(2, 4), "staging", signal.SIGKILL), (0, "random", signal.SIGTERM)]
    for run, (batches, mode, stop) in enumerate(plan):
        log = tmp_path / f"run{run}.out"
        previous = set(leftovers(directory)) if directory.exists() else set()
        proc = start(argv, log)
        match = wait_for_output(proc, log, START_LINE)
        resumed = None if match.group(1) is None else int(match.group(1))
        assert resumed == expected, log.read_text()
        # the previous run's temporaries are gone (the new run may be writing its own meanwhile,
        # under new random names; the journal's name is fixed, so it is left to the checks below)
        assert (previous - {checkpoint.JOURNAL_FILE}) & set(leftovers(directory)) == set()
        if batches:
            wait_for_output(proc, log, rf"batch {(resumed or 0) + batches}/")
        if mode == "random":
            time.sleep(rng.uniform(0.0, 0.2 if batches else 2.5))
        elif mode == "staging":  # while one of the checkpoint files is being written
            name = rng.choice(checkpoint.FILES[:-1])  # state.json is staged in microseconds
            assert wait_for_file(proc, directory, f"{checkpoint.TEMP_PREFIX}*-{name}", WAIT_TIMEOUT)
        else:  # the journal exists for about a millisecond per commit: often missed
            wait_for_file(proc, directory, checkpoint.JOURNAL_FILE, 3.0)
        proc.send_signal(stop)
        assert proc.wait() == -stop
        landed = landed_batch(directory)
        hit_a_write += bool(leftovers(directory))
        assert (landed or 0) >= (expected or 0)  # never goes back
        copy = Path(shutil.copytree(directory, tmp_path / f"copy{run}"))
        checkpoint.recover(copy)
        if landed is None:
            assert not any((copy / name).exists() for name in checkpoint.REQUIRED_FILES)
        else:
            check_checkpoint(copy, landed, reader)
        expected = landed
    assert expected is not None and expected >= 3 and hit_a_write >= 2, (expected, hit_a_write)
    log = tmp_path / "last.out"
    proc = start([*argv[:-1], f"--nb_batches={expected + 1}"], log)
    status, out, err = finish(proc, log)
    assert status == 0, err
    assert f"at batch {expected}\n" in out and f"batch {expected + 1}/{expected + 1}" in out
    assert leftovers(directory) == []
    check_checkpoint(directory, expected + 1, reader)


# ---------------------------------------------------------------------------------------------
# Ctrl-C


@pytest.mark.slow
def test_first_ctrl_c_finishes_the_batch_saves_and_exits_0(tmp_path):
    directory, log = tmp_path / "checkpoint", tmp_path / "run.out"
    proc = start([f"--checkpoint_dir={directory}", *TINY, "--nb_batches=100000"], log)
    wait_for_output(proc, log, r"batch 2/")
    proc.send_signal(signal.SIGINT)
    status, out, err = finish(proc, log)
    assert status == 0 and own_lines(err) == []
    last = int(re.findall(r"batch (\d+)/", out)[-1])
    assert f"Stopped after batch {last}; checkpoint saved" in out
    assert "Run the same command to resume" in out
    assert checkpoint.read_state(directory)["batch"] == last
    assert leftovers(directory) == []
    rows = (directory / train.CSV_FILE).read_text().splitlines()
    assert len(rows) == 1 + last


@pytest.mark.slow
def test_second_ctrl_c_abandons_the_batch_with_exit_130(tmp_path):
    directory, log = tmp_path / "checkpoint", tmp_path / "run.out"
    # the seed's step loop, 100 steps: a batch lasts seconds, so both signals land inside batch 2
    argv = [f"--checkpoint_dir={directory}", *SEED_TINY, "--steps=100", "--nb_batches=100000"]
    proc = start(argv, log)
    wait_for_output(proc, log, r"batch 2/")
    proc.send_signal(signal.SIGINT)
    wait_for_output(proc, log, r"Ctrl-C: finishing this batch")
    proc.send_signal(signal.SIGINT)
    status, out, err = finish(proc, log)
    assert status == 130
    lines = [line for line in own_lines(err) if line]
    assert len(lines) == 1 and lines[0].startswith("Abandoned the batch in progress")
    assert "Traceback" not in out + err
    assert leftovers(directory) == []
    state = checkpoint.read_state(directory)
    assert state["batch"] == 1 == len(state["history"])
    reader = make_trainer([*SEED_TINY, "--steps=100"], seed=7)
    checkpoint.load(directory, reader[0])


# A child that installs train.py's handler and keeps TensorFlow busy (ops on its thread pools and
# Python calls between them), so that each Ctrl-C lands at a different point of TensorFlow's work.
BUSY_CHILD = """
import signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})  # as train.py does, before any thread
sys.path.insert(0, sys.argv[1])
import utils
utils.watch_ctrl_c("stopped early")
from training import bookkeeping
import tensorflow as tf
with utils.on_ctrl_c(bookkeeping.StopFlag()):
    a = tf.random.normal((256, 256))
    print("ready", flush=True)
    while True:
        a = tf.linalg.matmul(a, a)
        a = a / (tf.norm(a) + 1.0)
"""
CTRL_C_REPETITIONS, CTRL_C_AT_ONCE = 20, 5


@pytest.mark.slow
def test_a_second_ctrl_c_always_ends_the_process_with_130(tmp_path):
    """20 repetitions: the second Ctrl-C ends the process with status 130 and one line, never a
    SIGABRT or SIGSEGV from an exception unwinding through TensorFlow or its shutdown."""
    outcomes = []
    for first in range(0, CTRL_C_REPETITIONS, CTRL_C_AT_ONCE):
        runs = []
        for index in range(first, first + CTRL_C_AT_ONCE):
            log = tmp_path / f"child{index}.out"
            proc = start([BUSY_CHILD, str(ROOT)], log, script=Path("-c"))
            runs.append((proc, log))
        for index, (proc, log) in enumerate(runs):
            wait_for_output(proc, log, r"ready")
            time.sleep(0.05 * index)  # each one in a different phase of its loop
            proc.send_signal(signal.SIGINT)
            wait_for_output(proc, log, r"Ctrl-C: finishing this batch")
            proc.send_signal(signal.SIGINT)
        for proc, log in runs:
            status, out, err = finish(proc, log)
            outcomes.append((status, own_lines(err)[-1:]))
    assert outcomes == [(130, [bookkeeping.ABANDONED])] * CTRL_C_REPETITIONS


def test_ctrl_c_inside_a_print_does_not_crash(monkeypatch):
    """Python runs a signal handler while a print to stdout holds the stream's lock; the
    handler's own message must not print to that stream (a reentrant print raises)."""
    stop = bookkeeping.StopFlag()
    read_end, write_end = os.pipe()

    class Raw(io.RawIOBase):
        def writable(self):
            return True

        def fileno(self):
            return write_end

        def write(self, data):  # the handler lands while BufferedWriter holds its lock
            if not stop.requested:
                stop()
            return os.write(write_end, data)

    stream = io.TextIOWrapper(io.BufferedWriter(Raw()), write_through=False)
    monkeypatch.setattr(sys, "stdout", stream)
    try:
        print("batch 2/100", flush=True)
        os.close(write_end)
        with os.fdopen(read_end) as pipe:
            text = pipe.read()
    finally:
        monkeypatch.undo()
    assert stop.requested
    assert "Ctrl-C: finishing this batch" in text and "batch 2/100" in text


# ---------------------------------------------------------------------------------------------
# Repeatability


@pytest.mark.slow
def test_same_seed_repeats_every_number_and_a_resumed_run_matches_an_uninterrupted_one(tmp_path):
    def run(name, seed, nb_batches):
        return start([f"--checkpoint_dir={tmp_path / name}", *TINY, f"--nb_batches={nb_batches}",
                      "--test_session_occurrences=1", f"--seed={seed}"], tmp_path / f"{name}.out")

    def outcome(name):
        """Per batch: the CSV row less its timing, and the test session's report."""
        state = checkpoint.read_state(tmp_path / name)
        rows = [{k: v for k, v in row.items() if k != "seconds"} for row in state["history"]]
        return list(zip(rows, state["tests"]))
    procs = {"straight": run("straight", 0, 3), "other": run("other", 1, 3),
             "resumed": run("resumed", 0, 2)}
    for name, proc in procs.items():
        status, _, err = finish(proc, tmp_path / f"{name}.out")
        assert status == 0, err
    two = outcome("resumed")
    proc = run("resumed", 0, 3)  # the same command again, with one more batch to go
    status, out, err = finish(proc, tmp_path / "resumed.out")
    assert status == 0 and "at batch 2" in out, err
    straight, resumed = outcome("straight"), outcome("resumed")
    assert len(straight) == 3 and "generator_loss_first" in straight[0][0]
    assert two == straight[:2]  # two fresh runs, equal floats to the last digit
    assert resumed == straight  # stopping and resuming changes nothing
    other = outcome("other")
    assert other[0][0]["generator_loss_first"] != straight[0][0]["generator_loss_first"]
    assert other[-1][1] != straight[-1][1]

    def csv_without_seconds(name):  # seconds is the last column
        return [row.rsplit(",", 1)[0]
                for row in (tmp_path / name / train.CSV_FILE).read_text().splitlines()]
    assert csv_without_seconds("resumed") == csv_without_seconds("straight")


@pytest.mark.parametrize("changed", ["--reward=log", "--discriminator_fisher=model", "--offsets=8",
                                     "--discriminator=gln"])
def test_resuming_with_another_method_is_refused(changed, copy_of, run_main):
    directory = copy_of()
    before = digests(directory)
    status, out, err = run_main(train, [f"--checkpoint_dir={directory}", *TINY, changed])
    name = changed[2:].partition("=")[0]
    assert status == 2 and out == ""
    assert f"{name}=" in error_line(err) and str(directory) in error_line(err)
    assert digests(directory) == before


def test_resuming_with_other_stream_constants_is_allowed(copy_of, run_main):
    directory = copy_of()
    status, out, err = run_main(train, [f"--checkpoint_dir={directory}", *TINY, "--nb_batches=2",
                                        "--lr=5e-4", "--steps=2"])
    assert status == 0 and "at batch 1" in out, err


def test_a_second_run_on_a_locked_directory_is_refused(copy_of, run_main):
    directory = copy_of()
    before = digests(directory)
    held = checkpoint.lock(directory)  # stands in for a train.py already running there
    try:
        status, out, err = run_main(train, [f"--checkpoint_dir={directory}", "--nb_batches=2"])
    finally:
        os.close(held)
    line = error_line(err)
    assert status == 2 and "another train.py" in line and str(directory) in line
    assert digests(directory) == before


def test_a_failed_save_is_one_line_and_keeps_the_previous_checkpoint(copy_of, run_main, monkeypatch):
    directory = copy_of()
    before = digests(directory)
    real_stage = checkpoint._stage

    def disk_full(folder, name, write):
        if name == checkpoint.STATE_FILE:
            raise OSError(28, "No space left on device")
        return real_stage(folder, name, write)
    monkeypatch.setattr(checkpoint, "_stage", disk_full)
    status, out, err = run_main(train, [f"--checkpoint_dir={directory}", "--nb_batches=2",
                                        "--batch_size=200", "--steps=2", "--nb_samples=10",
                                        "--minimum_batch_size=20", "--test_samples=100"])
    line = error_line(err)
    assert status == 2 and "No space left on device" in line and "batch 1 is intact" in line
    assert digests(directory) == before and leftovers(directory) == []


# ---------------------------------------------------------------------------------------------
# A state that is not finite, once loaded or once trained: refused, never saved


def set_array(path: Path, key: str, value: float) -> None:
    """Replace one array of an .npz by the same shape filled with ``value`` (a plain savez)."""
    with np.load(path, allow_pickle=False) as saved:
        arrays = {k: saved[k] for k in saved.files}
    arrays[key] = np.full(arrays[key].shape, value, dtype=np.float64)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


NOT_FINITE = {  # case: (what to plant, the file the one line names)
    "NaN Adam moment": (lambda d: set_array(d / checkpoint.OPTIMIZER_FILE, "d001", np.nan),
                        checkpoint.OPTIMIZER_FILE),
    "Adam moment beyond float32": (lambda d: set_array(d / checkpoint.OPTIMIZER_FILE, "g001", 1e300),
                                   checkpoint.OPTIMIZER_FILE),
    "Fisher beyond float32": (lambda d: np.save(d / checkpoint.FISHER_GENERATOR_FILE, np.full(
        np.load(d / checkpoint.FISHER_GENERATOR_FILE).shape, 1e300)), checkpoint.FISHER_GENERATOR_FILE),
    "NaN EWC anchor": (lambda d: set_array(d / checkpoint.EWC_FILE, "d_anchor", np.nan), checkpoint.EWC_FILE),
    "EWC state a FIFO": (lambda d: replace_state(d, lambda p: os.mkfifo(p), checkpoint.EWC_FILE),
                         checkpoint.EWC_FILE),
    "negative Fisher estimate": (lambda d: set_array(d / checkpoint.EWC_FILE, "g_estimate", -1.0),
                                 checkpoint.EWC_FILE),
    "Fisher inf": (lambda d: np.save(d / checkpoint.FISHER_DISCRIMINATOR_FILE, np.full(
        np.load(d / checkpoint.FISHER_DISCRIMINATOR_FILE).shape, np.inf, np.float32)),
                   checkpoint.FISHER_DISCRIMINATOR_FILE),
}


@pytest.mark.parametrize("case", list(NOT_FINITE))
def test_a_loaded_state_that_is_not_finite_in_float32_is_refused_and_kept(case, copy_of, run_main):
    plant, named = NOT_FINITE[case]
    directory = copy_of()
    plant(directory)
    before = digests(directory)
    status, out, err = run_main(train, [f"--checkpoint_dir={directory}", *TINY, "--nb_batches=3"])
    assert status == 2 and named in error_line(err)
    assert digests(directory) == before


def huge_weights(directory: Path, network: str, value: float) -> None:
    """Weights finite in float32 but so large that the network's outputs overflow."""
    trainer, config = make_trainer(TINY)
    checkpoint.load(directory, trainer)
    for w in getattr(trainer, network).model.trainable_weights:
        w.assign(np.full(w.shape, value, np.float32))
    checkpoint.save(directory, trainer, checkpoint.read_state(directory))


@pytest.mark.parametrize("network, fragment", [("generator", "policy is not finite"),
                                               ("discriminator", "diverged")])
def test_weights_that_overflow_stop_the_run_before_any_save(network, fragment, copy_of, run_main):
    directory = copy_of()
    huge_weights(directory, network, 3e38)
    before = digests(directory)
    status, out, err = run_main(train, [f"--checkpoint_dir={directory}", *TINY, "--nb_batches=3"])
    line = error_line(err)
    assert status == 2 and fragment in line
    assert "Traceback" not in out + err
    assert digests(directory) == before  # the last good checkpoint stays


def test_a_trained_state_that_is_not_finite_is_never_saved(copy_of, run_main, monkeypatch):
    directory = copy_of()
    before = digests(directory)
    real = tu.consolidate

    def poisoned(trainer, *args):
        real(trainer, *args)
        trainer.discriminator.model.trainable_weights[0].assign(
            np.full(trainer.discriminator.model.trainable_weights[0].shape, np.nan, np.float32))
    monkeypatch.setattr(tu, "consolidate", poisoned)
    status, out, err = run_main(train, [f"--checkpoint_dir={directory}", *TINY, "--nb_batches=3"])
    line = error_line(err)
    assert status == 2 and "batch 2 diverged" in line and "discriminator weights" in line
    assert "batch 1 is intact" in line
    assert digests(directory) == before
    trainer, _ = make_trainer(TINY)  # and the save itself refuses, writing nothing
    trainer.generator.model.trainable_weights[0].assign(
        np.full(trainer.generator.model.trainable_weights[0].shape, np.inf, np.float32))
    with pytest.raises(checkpoint.NotFiniteError):
        checkpoint.save(directory, trainer, checkpoint.read_state(directory))
    assert digests(directory) == before and leftovers(directory) == []


@pytest.mark.parametrize("argv, named", [(["--lambda_=1e39"], "lambda_"), (["--seed=4294967296"], "seed"),
                                         (["--offsets=4096", "--high_latent=16777216"], "GiB")])
def test_constants_that_would_overflow_or_run_out_of_memory_are_refused(argv, named, run_main, tmp_path):
    status, out, err = run_main(train, [f"--checkpoint_dir={tmp_path / 'new'}", *argv])
    assert status == 2 and named in error_line(err)
    assert not (tmp_path / "new").exists()


def test_a_fresh_run_that_fails_before_its_first_save_leaves_no_folder(run_main, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise utils.GeneratorDivergedError("generator emitted 1 of 1 outputs that are NaN")
    monkeypatch.setattr(tu, "train_score_function", broken)
    folder = tmp_path / "a" / "b"
    status, out, err = run_main(train, [f"--checkpoint_dir={folder}", *TINY, "--nb_batches=2"])
    assert status == 2 and "NaN" in error_line(err)
    assert not (tmp_path / "a").exists()


# ---------------------------------------------------------------------------------------------
# A damaged state.json: one line and exit 2 from both scripts, no hang, nothing changed


def edit_state(directory: Path, change) -> None:
    state = json.loads((directory / checkpoint.STATE_FILE).read_text())
    change(state)
    (directory / checkpoint.STATE_FILE).write_text(json.dumps(state))


def replace_state(directory: Path, make, name: str = checkpoint.STATE_FILE) -> None:
    (directory / name).unlink()
    make(directory / name)


DAMAGED_STATES = {
    "no rng": lambda d: edit_state(d, lambda s: s.pop("rng")),
    "no history": lambda d: edit_state(d, lambda s: s.pop("history")),
    "no tests": lambda d: edit_state(d, lambda s: s.pop("tests")),
    "history a string": lambda d: edit_state(d, lambda s: s.update(history="rows")),
    "a row without its batch": lambda d: edit_state(d, lambda s: s.update(history=[{"kept": 3}])),
    "tests of a later batch": lambda d: edit_state(d, lambda s: s.update(tests=[{"batch": 99}])),
    "rng of the wrong kind": lambda d: edit_state(d, lambda s: s.update(rng={"bit_generator": "MT19937"})),
    "rng a number": lambda d: edit_state(d, lambda s: s.update(rng=7)),
    "batch true": lambda d: edit_state(d, lambda s: s.update(batch=True)),
    "config a list": lambda d: edit_state(d, lambda s: s.update(config=[1, 2])),
    "anchor switches a number": lambda d: edit_state(d, lambda s: s.update(anchor_switches=3)),
    "anchor range a string": lambda d: edit_state(d, lambda s: s.update(anchor_range="1..9")),
    "deeply nested": lambda d: (d / checkpoint.STATE_FILE).write_text("[" * 100_000 + "]" * 100_000),
    "a FIFO": lambda d: replace_state(d, lambda p: os.mkfifo(p)),
    "a link to an endless file": lambda d: replace_state(d, lambda p: p.symlink_to("/dev/zero")),
    "a folder": lambda d: replace_state(d, lambda p: p.mkdir()),
}


HANG_SECONDS = 300               # a refusal not given by then is a hang (one takes seconds)


@contextlib.contextmanager
def failing_if_hung(seconds: int = HANG_SECONDS):
    """Turn a hang (a read of a FIFO or of /dev/zero that never ends) into a failure."""
    def hung(signum, frame):
        raise AssertionError(f"no answer after {seconds} s: hung")
    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_a_hang_is_a_failure_not_a_wait(tmp_path):
    os.mkfifo(tmp_path / "fifo")  # opening it for reading blocks until a writer comes: never
    with pytest.raises(AssertionError, match="hung"), failing_if_hung(1):
        (tmp_path / "fifo").read_text()


@pytest.mark.parametrize("case", list(DAMAGED_STATES))
def test_a_damaged_state_is_one_line_from_both_scripts_without_a_hang(case, copy_of, run_main):
    directory = copy_of()
    DAMAGED_STATES[case](directory)
    before = digests(directory)
    for script, argv in ((train, [*TINY, "--nb_batches=3"]), (optimus_test, ["--n_samples=20"])):
        with failing_if_hung():
            status, out, err = run_main(script, [f"--checkpoint_dir={directory}", *argv])
        assert status == 2 and checkpoint.STATE_FILE in error_line(err), (script, err)
    assert digests(directory) == before


def test_a_folder_named_like_a_temporary_file_is_left_alone(copy_of, run_main):
    directory = copy_of()
    odd = directory / f"{checkpoint.TEMP_PREFIX}not-ours"
    odd.mkdir()
    (odd / "inside").write_text("kept")
    status, out, err = run_main(train, [f"--checkpoint_dir={directory}", *TINY, "--nb_batches=2"])
    assert status == 0, err
    assert (odd / "inside").read_text() == "kept"


# ---------------------------------------------------------------------------------------------
# A full disk, another process's files, a kill after the last save


def test_a_full_disk_while_writing_a_weight_file_keeps_the_last_checkpoint(copy_of, run_main, monkeypatch):
    directory = copy_of()
    before = digests(directory)
    real = Path.write_bytes

    def full(path, data):
        if path.name.endswith(".h5"):
            real(path, data[: len(data) // 3])
            raise OSError(28, "No space left on device")
        return real(path, data)
    monkeypatch.setattr(Path, "write_bytes", full)
    status, out, err = run_main(train, [f"--checkpoint_dir={directory}", *TINY, "--nb_batches=3"])
    line = error_line(err)
    assert status == 2 and "No space left on device" in line and "batch 1 is intact" in line
    assert digests(directory) == before and leftovers(directory) == []


def test_a_fresh_runs_full_disk_says_no_checkpoint_was_saved_yet(tmp_path, run_main, monkeypatch):
    real = checkpoint._stage

    def full(folder, name, write, prefix=checkpoint.TEMP_PREFIX):
        if name == checkpoint.STATE_FILE:
            raise OSError(28, "No space left on device")
        return real(folder, name, write, prefix)
    monkeypatch.setattr(checkpoint, "_stage", full)
    status, out, err = run_main(train, [f"--checkpoint_dir={tmp_path / 'new'}", *TINY, "--nb_batches=2"])
    line = error_line(err)
    assert status == 2 and "no checkpoint was saved yet" in line and "batch 0" not in line


def test_another_processes_probe_and_files_survive_a_save_and_vanishing_ones_are_no_error(
        copy_of, run_main, monkeypatch):
    directory = copy_of()
    probe = directory / f"{checkpoint.WRITE_PREFIX}0123-probe"  # what a second train.py makes first
    probe.write_text("")
    real_glob = Path.glob

    def glob_then_vanish(self, pattern):  # a temporary file removed between listing and unlink
        found = list(real_glob(self, pattern))
        ghost = self / f"{checkpoint.TEMP_PREFIX}ghost-state.json"
        return iter(found + [ghost])
    monkeypatch.setattr(Path, "glob", glob_then_vanish)
    status, out, err = run_main(train, [f"--checkpoint_dir={directory}", *TINY, "--nb_batches=2"])
    assert status == 0, err
    assert probe.exists()
    assert checkpoint.read_state(directory)["batch"] == 2


@pytest.mark.slow
def test_the_log_and_plot_follow_the_state_after_a_kill_just_after_the_last_save(tmp_path, run_main):
    directory = tmp_path / "run"
    argv = [f"--checkpoint_dir={directory}", *TINY, "--nb_batches=2", "--test_session_occurrences=1"]
    assert run_main(train, argv)[0] == 0
    csv_path, plot_path = directory / train.CSV_FILE, directory / train.PLOT_FILE
    whole_csv, whole_plot = csv_path.read_text(), plot_path.read_bytes()
    csv_path.write_text("\n".join(whole_csv.splitlines()[:-1]) + "\n")  # the last row never landed
    plot_path.write_bytes(b"stale")
    status, out, err = run_main(train, argv)
    assert status == 0 and "nothing to train" in out
    assert csv_path.read_text() == whole_csv and plot_path.read_bytes() == whole_plot


# ---------------------------------------------------------------------------------------------
# Architectures too large for memory: bounded before anything is allocated


def test_an_architecture_too_large_to_measure_is_refused_by_test_py(tmp_path, run_main):
    config = train.parse_config(["--offsets=4096", "--batch_size=10"])
    trainer = registry.build_trainer(config)
    (tmp_path / "huge").mkdir()
    directory = save(tmp_path / "huge", (trainer, config))
    status, out, err = run_main(optimus_test, [f"--checkpoint_dir={directory}", "--n_samples=10000"])
    assert status == 2 and "candidates measured at once" in error_line(err)


# ---------------------------------------------------------------------------------------------
# Output: closed pipes, full devices, files that are not the candidates'


def test_candidates_to_a_folder_or_over_a_checkpoint_file_are_refused_and_leave_nothing(
        copy_of, run_main, tmp_path):
    directory = copy_of()
    (tmp_path / "out").mkdir()
    before = digests(tmp_path)
    for target in (tmp_path / "out", directory / checkpoint.STATE_FILE, directory / checkpoint.GENERATOR_FILE):
        status, out, err = run_main(optimus_test, [f"--checkpoint_dir={directory}", "--n_samples=20",
                                                   f"--candidates={target}"])
        assert status == 2 and str(target) in error_line(err)
        assert digests(tmp_path) == before
    assert not list((tmp_path / "out").iterdir()) and not list(tmp_path.glob(".optimus-*"))


def test_a_one_latent_range_gives_strict_json(copy_of, run_main):
    directory = copy_of()
    status, out, err = run_main(optimus_test, [f"--checkpoint_dir={directory}", "--n_samples=1",
                                               "--low_latent=5", "--high_latent=5", "--json"])
    assert status == 0, err
    json.loads(out, parse_constant=lambda name: pytest.fail(f"{name} in the JSON"))


@pytest.fixture(scope="module")
def closed_outputs(tmp_path_factory, base):
    """{case: (exit status, stderr)} of scripts whose stdout is closed at once or is /dev/full."""
    root = tmp_path_factory.mktemp("outputs")
    pair = Path(shutil.copytree(base, root / "pair"))
    runs = {
        "test.py --candidates=- | (closed)": ([ROOT / "test.py", f"--checkpoint_dir={pair}", "--n_samples=20",
                                               "--candidates=-"], "pipe"),
        "test.py --verbose=3 | (closed)": ([ROOT / "test.py", f"--checkpoint_dir={pair}", "--n_samples=20",
                                            "--verbose=3"], "pipe"),
        "test.py --json > /dev/full": ([ROOT / "test.py", f"--checkpoint_dir={pair}", "--n_samples=20",
                                        "--json"], "full"),
        "train.py | (closed)": ([TRAIN_SCRIPT, f"--checkpoint_dir={root / 'run'}", *TINY, "--nb_batches=2"], "pipe"),
    }
    procs = {}
    for case, (args, kind) in runs.items():
        out = subprocess.PIPE if kind == "pipe" else open("/dev/full", "w")
        procs[case] = subprocess.Popen([sys.executable, *map(str, args)], stdout=out, stderr=subprocess.PIPE,
                                       text=True, cwd=ROOT, env=script_env())
        if kind == "pipe":
            procs[case].stdout.close()  # the reader is gone before the first line
    return {case: (proc.wait(timeout=RUN_TIMEOUT), proc.stderr.read()) for case, proc in procs.items()}


@pytest.mark.slow
@pytest.mark.parametrize("case", ["test.py --candidates=- | (closed)", "test.py --verbose=3 | (closed)",
                                  "test.py --json > /dev/full", "train.py | (closed)"])
def test_a_closed_pipe_or_a_full_device_is_one_line_and_exit_2(closed_outputs, case):
    status, err = closed_outputs[case]
    assert status == 2, err
    line = error_line(err)
    assert "closed" in line or "No space left" in line
    assert "Traceback" not in err and "Exception ignored" not in err
