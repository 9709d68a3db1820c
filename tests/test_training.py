"""Undersampling, EWC, the compiled step and checkpoint files of training/training_utils.py."""
import json

import numpy as np
import keras
import pytest
import tensorflow as tf

import utils
from training import model, training_utils as tu


def tiny_trainer(seed=0, lr=1e-3, lambda_=1.0):
    keras.utils.set_random_seed(seed)
    return tu.Trainer.create(model.initialize_generator(), model.initialize_discriminator(),
                             lr, lambda_)


# -- undersampling ------------------------------------------------------------------------------

def test_sampling_reaches_the_wanted_prime_ratio():
    labels = np.r_[np.ones(100), np.zeros(900)]
    kept = tu.sampling(labels, 0.5, 10, np.random.default_rng(0))
    assert labels[kept].sum() == 100 and kept.size == 200
    kept = tu.sampling(labels, 0.25, 10, np.random.default_rng(0))
    assert kept.size == 400 and labels[kept].mean() == 0.25


def test_sampling_never_goes_below_minimum_batch_size():
    labels = np.r_[np.ones(5), np.zeros(995)]
    kept = tu.sampling(labels, 0.5, 100, np.random.default_rng(0))
    assert kept.size == 100 and labels[kept].sum() == 5
    assert len(set(kept)) == kept.size


def test_sampling_keeps_everything_when_the_batch_is_small():
    labels = np.r_[np.ones(3), np.zeros(20)]
    assert tu.sampling(labels, 0.5, 100, np.random.default_rng(0)).size == 23


def test_sampling_skips_a_batch_without_primes():
    assert tu.sampling(np.zeros(50), 0.5, 10, np.random.default_rng(0)) is None


# -- EWC ----------------------------------------------------------------------------------------

def test_ewc_penalty_is_zero_at_the_anchor_and_grows_with_the_fisher():
    w = [tf.constant([1.0, 2.0]), tf.constant([[3.0]])]
    anchor = [tf.constant([1.0, 2.0]), tf.constant([[3.0]])]
    f = [tf.constant([0.5, 0.1]), tf.constant([[2.0]])]
    assert float(tu.ewc_penalty(w, f, anchor, 1.0)) == 0.0
    moved = [tf.constant([2.0, 2.0]), tf.constant([[1.0]])]
    p1 = float(tu.ewc_penalty(moved, f, anchor, 1.0))
    assert p1 == pytest.approx(0.5 * (0.5 * 1.0 + 2.0 * 4.0))
    assert float(tu.ewc_penalty(moved, [3 * x for x in f], anchor, 1.0)) == pytest.approx(3 * p1)
    assert float(tu.ewc_penalty(moved, f, anchor, 4.0)) == pytest.approx(4 * p1)


def _loop_fisher(variables, log_prob_of_sample, n):
    total = [np.zeros(v.shape) for v in variables]
    for i in range(n):
        with tf.GradientTape() as tape:
            lp = log_prob_of_sample(i)
        for t, g in zip(total, tape.gradient(lp, variables)):
            t += np.square(np.asarray(g))
    return [t / n for t in total]


def test_vectorized_fisher_equals_a_loop_of_single_sample_tapes():
    keras.utils.set_random_seed(3)
    d = keras.Sequential([keras.Input((1,)), keras.layers.Dense(4, activation="sigmoid"),
                          keras.layers.Dense(1, activation="sigmoid")])
    x = tf.constant(np.linspace(0.1, 2.0, 7, dtype=np.float32).reshape(-1, 1))
    y = tf.constant(np.array([1, 0, 0, 1, 1, 0, 1], np.float32).reshape(-1, 1))
    fast = tu.fisher_from_log_probs(d.trainable_variables, lambda: tu.log_likelihood(d, x, y))
    slow = _loop_fisher(d.trainable_variables,
                        lambda i: tu.log_likelihood(d, x[i:i + 1], y[i:i + 1])[0], 7)
    for a, b in zip(fast, slow):
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-4, atol=1e-9)


def test_discriminator_fisher_depends_on_the_true_labels():
    tr = tiny_trainer()
    _, fd = tr.fisher_fns()
    x = tf.constant(np.linspace(1e3, 1e7, 20, dtype=np.float32).reshape(-1, 1))
    a = fd(x, tf.ones((20, 1)))
    b = fd(x, tf.zeros((20, 1)))
    assert not np.allclose(np.asarray(a[-1]), np.asarray(b[-1]))


def test_consolidate_accumulates_with_decay_and_moves_the_anchor():
    tr = tiny_trainer()
    ewc, g = tr.ewc_generator, tr.generator
    ones = [tf.ones_like(w) for w in g.trainable_weights]
    ewc.consolidate(g, ones, 0.5)
    ewc.consolidate(g, ones, 0.5)
    np.testing.assert_allclose(np.asarray(ewc.fisher[0]), 1.5)
    g.trainable_weights[0].assign_add(tf.ones_like(g.trainable_weights[0]))
    ewc.consolidate(g, ones, 0.0)
    np.testing.assert_allclose(np.asarray(ewc.fisher[0]), 1.0)
    np.testing.assert_allclose(np.asarray(ewc.anchor[0]), np.asarray(g.trainable_weights[0]))


def test_flat_fisher_round_trips():
    tr = tiny_trainer()
    flat = np.random.default_rng(0).random(tr.ewc_discriminator.flat_fisher().size).astype(np.float32)
    tr.ewc_discriminator.set_flat_fisher(flat)
    np.testing.assert_array_equal(tr.ewc_discriminator.flat_fisher(), flat)
    with pytest.raises(ValueError):
        tr.ewc_discriminator.set_flat_fisher(flat[:-1])


# -- training step ------------------------------------------------------------------------------

def _batch(tr, n, seed=0):
    z = utils.random_vector_integers(1, 10**6, n, np.random.default_rng(seed))
    return z, tu.label(tu.generate(tr.generator, z))


def test_train_batch_returns_per_step_losses_and_traces_once():
    tr = tiny_trainer()
    z, y = _batch(tr, 300)
    logs = tu.train_batch(tr, z, y, steps=4)
    assert set(logs) == {"generator_loss", "discriminator_loss", "prime_ratio"}
    assert all(v.shape == (4,) and np.all(np.isfinite(v)) for v in logs.values())
    z2, y2 = _batch(tr, 123, seed=1)
    tu.train_batch(tr, z2, y2, steps=3)
    assert tr.trace_count == 1


def test_train_batch_updates_both_networks():
    tr = tiny_trainer()
    g0 = [np.asarray(w).copy() for w in tr.generator.trainable_weights]
    d0 = [np.asarray(w).copy() for w in tr.discriminator.trainable_weights]
    z, y = _batch(tr, 200)
    tu.train_batch(tr, z, y, steps=2)
    assert any(not np.array_equal(a, np.asarray(b)) for a, b in zip(g0, tr.generator.trainable_weights))
    assert any(not np.array_equal(a, np.asarray(b)) for a, b in zip(d0, tr.discriminator.trainable_weights))


def test_ewc_pulls_weights_back_toward_the_anchor():
    moved = {}
    for lambda_ in (0.0, 1e6):
        tr = tiny_trainer(lambda_=lambda_)
        z, y = _batch(tr, 200)
        tu.compute_fisher(tr, z[:50], fisher_decay=0.0)
        tu.train_batch(tr, z, y, steps=5)
        moved[lambda_] = sum(float(tf.reduce_sum(tf.square(w - a))) for w, a in
                             zip(tr.discriminator.trainable_weights, tr.ewc_discriminator.anchor))
    assert moved[1e6] < moved[0.0]


def test_generate_refuses_nan_zero_and_huge_outputs():
    class Fixed:
        def __init__(self, value):
            self.value = value

        def __call__(self, z, training=False):
            return np.full((len(z), 1), self.value)
    for bad in (np.nan, np.inf, 0.0, -3.0, 1e300):
        with pytest.raises(tu.GeneratorDivergedError):
            tu.generate(Fixed(bad), np.arange(1, 5))
    assert tu.generate(Fixed(5.0), np.arange(1, 5)).tolist() == [5.0] * 4


def test_train_batch_stops_on_a_generator_made_to_emit_nan():
    tr = tiny_trainer()
    z, y = _batch(tr, 100)
    last = tr.generator.layers[-2]
    last.bias.assign([np.nan])
    with pytest.raises(tu.GeneratorDivergedError):
        tu.train_batch(tr, z, y, steps=2)


# -- checkpoints --------------------------------------------------------------------------------

def _trained(tmp_path):
    tr = tiny_trainer()
    z, y = _batch(tr, 200)
    tu.train_batch(tr, z, y, steps=2)
    tu.compute_fisher(tr, z[:30], fisher_decay=0.9)
    tu.save_checkpoint(tmp_path, tr, {"format": tu.STATE_FORMAT, "batch": 1})
    return tr


def test_checkpoint_round_trips_weights_fisher_and_optimizer(tmp_path):
    tr = _trained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(tu.CHECKPOINT_FILES)
    again = tiny_trainer(seed=7)
    state = tu.load_checkpoint(tmp_path, again)
    assert state["batch"] == 1
    for a, b in zip(tr.generator.weights + tr.discriminator.weights,
                    again.generator.weights + again.discriminator.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(tr.ewc_generator.flat_fisher(), again.ewc_generator.flat_fisher())
    for a, b in zip(tr.generator_optimizer.variables, again.generator_optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    for a, w in zip(again.ewc_discriminator.anchor, again.discriminator.trainable_weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(w))


def test_resume_keeps_this_runs_learning_rate(tmp_path):
    _trained(tmp_path)
    again = tiny_trainer(lr=5e-4)
    tu.load_checkpoint(tmp_path, again)
    assert float(again.generator_optimizer.learning_rate) == pytest.approx(5e-4)
    assert float(again.discriminator_optimizer.learning_rate) == pytest.approx(5e-4)
    assert int(again.generator_optimizer.iterations) == 2  # the two steps before the save


def test_fisher_files_are_plain_float_arrays(tmp_path):
    _trained(tmp_path)
    for name in (tu.FISHER_GENERATOR_FILE, tu.FISHER_DISCRIMINATOR_FILE):
        arr = np.load(tmp_path / name, allow_pickle=False)
        assert arr.dtype == np.float32 and arr.ndim == 1


def test_a_journal_left_by_a_crash_is_rolled_forward(tmp_path):
    _trained(tmp_path)
    staged = tmp_path / (tu.TEMP_PREFIX + "x-state.json")
    staged.write_text(json.dumps({"format": tu.STATE_FORMAT, "batch": 2}))
    (tmp_path / tu.JOURNAL_FILE).write_text(json.dumps({tu.STATE_FILE: staged.name}))
    tu.recover_checkpoint(tmp_path)
    assert tu.read_state(tmp_path)["batch"] == 2
    assert not (tmp_path / tu.JOURNAL_FILE).exists() and not staged.exists()


def test_temporaries_without_a_journal_are_discarded(tmp_path):
    _trained(tmp_path)
    stray = tmp_path / (tu.TEMP_PREFIX + "abc-Optimus_Generator.h5")
    stray.write_bytes(b"half a file")
    tu.recover_checkpoint(tmp_path)
    assert not stray.exists() and tu.read_state(tmp_path)["batch"] == 1


def test_pickled_fisher_is_refused_without_being_loaded(tmp_path):
    tr = _trained(tmp_path)
    np.save(tmp_path / tu.FISHER_GENERATOR_FILE, np.array([object()], dtype=object), allow_pickle=True)
    with pytest.raises(utils.OptimusError, match=tu.FISHER_GENERATOR_FILE):
        tu.load_checkpoint(tmp_path, tr)


def test_wrong_length_fisher_is_refused(tmp_path):
    tr = _trained(tmp_path)
    np.save(tmp_path / tu.FISHER_DISCRIMINATOR_FILE, np.zeros(10, np.float32))
    with pytest.raises(utils.OptimusError, match="expected"):
        tu.load_checkpoint(tmp_path, tr)


def test_truncated_weights_are_refused(tmp_path):
    tr = _trained(tmp_path)
    path = tmp_path / tu.GENERATOR_FILE
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(utils.OptimusError, match=tu.GENERATOR_FILE):
        tu.load_checkpoint(tmp_path, tr)


def test_load_models_reads_either_generator_form(tmp_path):
    g = model.initialize_generator(original=True)
    g.save(tmp_path / tu.GENERATOR_FILE)
    model.initialize_discriminator().save(tmp_path / tu.DISCRIMINATOR_FILE)
    g2, _ = tu.load_models(tmp_path)
    z = np.array([[5.0]], np.float32)
    np.testing.assert_allclose(np.asarray(g2(z)), np.asarray(g(z)))


def test_load_models_without_files_says_to_train_first(tmp_path):
    with pytest.raises(utils.OptimusError, match="no pre-trained models in .*run training/train.py first"):
        tu.load_models(tmp_path)


@pytest.mark.slow
def test_hundred_default_batches_stay_finite_and_under_the_cap():
    from training import train
    config = dict(train.DEFAULTS)
    keras.utils.set_random_seed(config["seed"])
    trainer = tu.Trainer.create(model.initialize_generator(negative_l2=config["negative_l2"]),
                                model.initialize_discriminator(), config["lr"], config["lambda_"])
    rng = np.random.default_rng(config["seed"])
    for _ in range(100):  # run_batch raises GeneratorDivergedError on any NaN, inf or <= 0 output
        row = train.run_batch(trainer, config, rng)
        assert 1.0 <= row["output_min"] and row["output_max"] <= model.OUTPUT_CAP
    weights = trainer.generator.weights + trainer.discriminator.weights
    assert all(np.isfinite(np.asarray(w)).all() for w in weights)
    assert np.isfinite(trainer.ewc_generator.flat_fisher()).all()


@pytest.mark.slow
def test_two_batch_run_writes_checkpoint_and_plot_and_an_identical_run_resumes(tmp_path):
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    ckpt = tmp_path / "ckpt"
    tiny = ["--batch_size=300", "--steps=3", "--nb_samples=10", "--minimum_batch_size=20",
            "--test_samples=300", f"--checkpoint_dir={ckpt}"]

    def run(args, cwd):
        return subprocess.run([sys.executable, *args, *tiny], cwd=cwd, capture_output=True,
                              text=True, timeout=300)
    first = run(["train.py", "--nb_batches=2"], cwd=root / "training")  # from inside training/
    assert first.returncode == 0, first.stderr
    assert "starting fresh" in first.stdout and "Evaluation after batch 2" in first.stdout
    for name in (*tu.REQUIRED_FILES, "training_metrics.png", "training_log.csv"):
        assert (ckpt / name).is_file(), name
    again = run([str(root / "training" / "train.py"), "--nb_batches=2"], cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "Resuming from" in again.stdout and "at batch 2" in again.stdout
    more = run(["training/train.py", "--nb_batches=3"], cwd=root)
    assert more.returncode == 0 and "Resuming" in more.stdout, more.stderr
    state = tu.read_state(ckpt)
    assert state["batch"] == 3 and [row["batch"] for row in state["history"]] == [1, 2, 3]
    assert [t["batch"] for t in state["tests"]] == [2, 3]  # the plot's history continues
    assert len((ckpt / "training_log.csv").read_text().splitlines()) == 4
