"""training_utils: undersampling, EWC and the Fisher, and that each method learns from its signal.

Each method test has a positive control (the signal is there and the generator follows it)
beside a negative control (the signal is cut and nothing moves), so that neither can pass by
construction.
"""
import contextlib
import copy
import io
import math
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import utils
from training import oracle
from training import calibration, checkpoint, measuring, model, registry, train
from training import training_utils as tu

HELD_OUT = (10**6 + 1, 10**7)   # latents beyond the training range [1, 10**6]


def make_trainer(argv=(), seed=0) -> tuple:
    """(trainer, config) for train.py's constants with ``argv`` overrides."""
    config = train.parse_config(list(argv))
    keras.utils.set_random_seed(seed)
    return registry.build_trainer(config), config


def with_discriminator(trainer, network, lr=None) -> tu.Trainer:
    """A trainer of the same generator and method whose discriminator computes ``network``."""
    part = copy.copy(trainer.discriminator)
    part.model = network
    config = trainer.config if lr is None else dict(trainer.config, lr=lr)
    return tu.Trainer.create(trainer.generator, part, config, reward=trainer.reward,
                             objective=trainer.objective, pool=trainer.pool, loss=trainer.loss,
                             fisher=trainer.fisher, fisher_rows=trainer.fisher_rows)


def weights_of(network) -> list:
    return [np.array(w) for w in network.trainable_weights]


def moved(before: list, network) -> float:
    return sum(float(np.abs(a - np.asarray(b)).sum()) for a, b in zip(before, network.trainable_weights))


# -- undersampling ------------------------------------------------------------------------------

def test_sampling_reaches_the_wanted_prime_ratio():
    labels = np.r_[np.ones(100), np.zeros(900)]
    kept = tu.undersample(labels, 0.5, 10, np.random.default_rng(0))
    assert labels[kept].sum() == 100 and kept.size == 200
    kept = tu.undersample(labels, 0.25, 10, np.random.default_rng(0))
    assert kept.size == 400 and labels[kept].mean() == 0.25


def test_sampling_never_goes_below_minimum_batch_size():
    labels = np.r_[np.ones(5), np.zeros(995)]
    kept = tu.undersample(labels, 0.5, 100, np.random.default_rng(0))
    assert kept.size == 100 and labels[kept].sum() == 5
    assert len(set(kept)) == kept.size


def test_sampling_keeps_everything_when_the_batch_is_small():
    labels = np.r_[np.ones(3), np.zeros(20)]
    assert tu.undersample(labels, 0.5, 100, np.random.default_rng(0)).size == 23


def test_sampling_skips_a_batch_without_primes():
    assert tu.undersample(np.zeros(50), 0.5, 10, np.random.default_rng(0)) is None


# -- EWC and the Fisher ---------------------------------------------------------------------------

def test_ewc_penalty_is_zero_at_the_anchor_and_grows_with_the_fisher():
    w = [tf.constant([1.0, 2.0]), tf.constant([[3.0]])]
    anchor = [tf.constant([1.0, 2.0]), tf.constant([[3.0]])]
    f = [tf.constant([0.5, 0.1]), tf.constant([[2.0]])]
    assert float(tu.ewc_penalty(w, f, anchor, 1.0)) == 0.0
    shifted = [tf.constant([2.0, 2.0]), tf.constant([[1.0]])]
    p1 = float(tu.ewc_penalty(shifted, f, anchor, 1.0))
    assert p1 == pytest.approx(0.5 * (0.5 * 1.0 + 2.0 * 4.0))
    assert float(tu.ewc_penalty(shifted, [3 * x for x in f], anchor, 1.0)) == pytest.approx(3 * p1)
    assert float(tu.ewc_penalty(shifted, f, anchor, 4.0)) == pytest.approx(4 * p1)


def test_consolidate_accumulates_with_decay_and_moves_the_anchor():
    trainer, _ = make_trainer()
    ewc, g = trainer.ewc_generator, trainer.generator.model
    ones = [tf.ones_like(w) for w in g.trainable_weights]
    ewc.consolidate(g, ones, 0.5, "batch", 0.0)
    ewc.consolidate(g, ones, 0.5, "batch", 0.0)
    np.testing.assert_allclose(np.asarray(ewc.fisher[0]), 1.5)
    g.trainable_weights[0].assign_add(tf.ones_like(g.trainable_weights[0]))
    ewc.consolidate(g, ones, 0.0, "batch", 0.0)
    np.testing.assert_allclose(np.asarray(ewc.fisher[0]), 1.0)
    np.testing.assert_allclose(np.asarray(ewc.anchor[0]), np.asarray(g.trainable_weights[0]))


@pytest.mark.parametrize("anchor", train.EWC_ANCHORS)
def test_each_anchor_moves_as_its_mode_says(anchor):
    trainer, _ = make_trainer()
    ewc, g = trainer.ewc_generator, trainer.generator.model
    start = np.asarray(g.trainable_weights[0]).copy()
    g.trainable_weights[0].assign_add(tf.ones_like(g.trainable_weights[0]))
    ewc.consolidate(g, [2 * tf.ones_like(w) for w in g.trainable_weights], 0.9, anchor, 0.75)
    np.testing.assert_allclose(np.asarray(ewc.estimate[0]), 2.0)  # every mode keeps estimating
    expected = {"batch": start + 1, "average": start + 0.25, "switch": start}[anchor]
    np.testing.assert_allclose(np.asarray(ewc.anchor[0]), expected, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(ewc.fisher[0]), 0.0 if anchor == "switch" else 2.0)
    ewc.hold(g)  # the switch: the penalty takes the estimate and the weights
    np.testing.assert_allclose(np.asarray(ewc.fisher[0]), 2.0)
    np.testing.assert_allclose(np.asarray(ewc.anchor[0]), start + 1)


def test_the_anchor_modes_are_train_pys_values():
    assert tuple(tu.ANCHORS) == train.EWC_ANCHORS


STREAM = ("--batch_size=200", "--steps=3", "--generator_steps=1", "--nb_samples=10", "--test_samples=50",
          "--minimum_batch_size=20", "--test_session_occurrences=100")
SECOND_RANGE = ("--low_latent=100000", "--high_latent=200000")


def two_phase_stream(directory, anchor: str, lambda_: float, second=SECOND_RANGE) -> tuple:
    """Two batches on latents 1..5000 at lambda_ 0, then two more resumed on ``second``: (D's weights
    after the first phase, after the second, the saved EWC state of D, the run's state)."""
    common = [*STREAM, f"--checkpoint_dir={directory}", f"--ewc_anchor={anchor}"]
    with contextlib.redirect_stdout(io.StringIO()):
        train.train(train.parse_config([*common, "--lambda_=0", "--nb_batches=2", "--high_latent=5000"]))
        first = flat_weights(checkpoint.load_networks(directory)[1].model)
        state = train.train(train.parse_config([*common, f"--lambda_={lambda_}", "--nb_batches=4", *second]))
    with np.load(Path(directory) / checkpoint.EWC_FILE) as saved:
        ewc = {k: saved[k] for k in saved.files if k.startswith("d_")}
    return first, flat_weights(checkpoint.load_networks(directory)[1].model), ewc, state


def flat_weights(network) -> np.ndarray:
    return np.concatenate([np.asarray(w).ravel() for w in network.trainable_weights])


@pytest.mark.slow
def test_a_switch_holds_the_anchor_where_the_range_changes_and_the_step_pulls_to_it(tmp_path):
    first, free, ewc, state = two_phase_stream(tmp_path / "free", "switch", 0.0)
    assert state["anchor_switches"] == [2] and state["anchor_range"] == [100000, 200000]
    np.testing.assert_array_equal(ewc["d_anchor"], first)  # held at the switch, not after it
    assert np.abs(free - first).max() > 1e-3               # while the weights moved on
    _, pulled, _, _ = two_phase_stream(tmp_path / "pulled", "switch", 1e6)
    assert np.linalg.norm(pulled - first) < 0.5 * np.linalg.norm(free - first)
    _, _, _, same = two_phase_stream(tmp_path / "same", "switch", 0.0, second=("--high_latent=5000",))
    assert "anchor_switches" not in same  # the same range: nothing to hold


@pytest.mark.slow
def test_the_batch_anchor_follows_the_weights_across_a_switch(tmp_path):
    first, after, ewc, state = two_phase_stream(tmp_path, "batch", 0.0)
    assert "anchor_switches" not in state
    np.testing.assert_array_equal(ewc["d_anchor"], after)


def test_the_average_anchor_starts_at_the_first_batch_and_then_averages():
    trainer, config = make_trainer([*STREAM[:5], "--ewc_anchor=average", "--anchor_decay=0.25"])
    rng, d = np.random.default_rng(0), trainer.discriminator.model
    train.run_batch(trainer, config, rng, 1)
    first = flat_weights(d)
    np.testing.assert_array_equal(trainer.ewc_discriminator.flat("anchor"), first)  # not the random start
    train.run_batch(trainer, config, rng, 2)
    second = flat_weights(d)
    assert np.abs(second - first).max() > 1e-3
    np.testing.assert_allclose(trainer.ewc_discriminator.flat("anchor"), 0.25 * first + 0.75 * second,
                               rtol=1e-5, atol=1e-7)


# -- the method's numbers are train.py constants, used by the step and recorded ------------------

def test_the_focal_constants_reach_the_loss_and_the_reward():
    trainer, _ = make_trainer(["--focal_alpha=0.3", "--focal_gamma=1.0", "--reward=focal"])
    loss = trainer.loss()
    assert (loss.alpha, loss.gamma) == (0.3, 1.0)
    p, log_pi = tf.constant([0.5]), tf.constant([0.0])
    assert float(trainer.reward(p, log_pi)[0]) == pytest.approx(0.5 * math.log(0.5))
    default, _ = make_trainer(["--reward=focal"])  # the control: gamma 2
    assert float(default.reward(p, log_pi)[0]) == pytest.approx(0.25 * math.log(0.5))
    assert (default.loss().alpha, default.loss().gamma) == (0.65, 2.0)


@pytest.mark.parametrize("cap, pulled", [(0.5, True), (1e-30, False)])
def test_the_negative_l2_pulls_up_to_its_cap(cap, pulled):
    x = tf.constant([[1e5], [1e6]], tf.float64)
    grad = tf.GradientTape()
    with grad:
        grad.watch(x)
        value = tu.negative_l2(x, 1.0, cap)
    assert (float(tf.reduce_sum(tf.abs(grad.gradient(value, x)))) > 0) is pulled


@pytest.mark.slow
def test_a_run_records_the_method_numbers_it_was_given(tmp_path):
    argv = [*STREAM, "--nb_batches=3", "--focal_alpha=0.5", "--focal_gamma=1.5", f"--checkpoint_dir={tmp_path / 'mlp'}"]
    real = ["--generator_head=real", "--discriminator=seed", "--discriminator_input=scalar", "--steps=2",
            "--batch_size=200", "--nb_samples=10", "--test_samples=50", "--nb_batches=3",
            "--negative_l2_cap=0.25", f"--checkpoint_dir={tmp_path / 'real'}"]
    with contextlib.redirect_stdout(io.StringIO()):
        recorded = train.train(train.parse_config(argv))["config"]
        seed = train.train(train.parse_config(real))["config"]
    assert (recorded["focal_alpha"], recorded["focal_gamma"], seed["negative_l2_cap"]) == (0.5, 1.5, 0.25)
    assert checkpoint.read_state(tmp_path / "mlp")["config"]["focal_alpha"] == 0.5


# -- one batch reads top to bottom: the files a default batch passes through ------------------------

PATH_ASIDE = {"utils.py", "training/oracle.py"}  # the shared helpers and the oracle, not counted


def files_of_a_batch(trainer, config) -> set:
    """The project files whose Python functions run during train.run_batch's first batch (tracing
    and compiling included), the PATH_ASIDE ones left out."""
    import sys
    root, files = str(Path(__file__).resolve().parents[1]) + "/", set()

    def profile(frame, event, arg):
        name = frame.f_code.co_filename
        if event == "call" and name.startswith(root) and "/.venv/" not in name:
            files.add(name[len(root):])
    sys.setprofile(profile)
    try:
        train.run_batch(trainer, config, np.random.default_rng(0), 1)
    finally:
        sys.setprofile(None)
    return files - PATH_ASIDE


def test_one_default_batch_crosses_at_most_four_project_files(monkeypatch):
    trainer, config = make_trainer()
    files = files_of_a_batch(trainer, config)
    assert {"training/train.py", "training/training_utils.py"} <= files and len(files) <= 4, sorted(files)
    # the control: a step that calls into one more module is seen doing so
    real = tu.label
    monkeypatch.setattr(tu, "label", lambda x: measuring.percent(0.5) and real(x))
    again, config = make_trainer()
    assert "training/measuring.py" in files_of_a_batch(again, config)
