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


def test_flat_fisher_round_trips():
    trainer, _ = make_trainer()
    ewc = trainer.ewc_discriminator
    flat = np.random.default_rng(0).random(ewc.flat().size).astype(np.float32)
    ewc.set_flat(flat)
    np.testing.assert_array_equal(ewc.flat(), flat)
    with pytest.raises(ValueError):
        ewc.set_flat(flat[:-1])


def loop_fisher(variables, terms) -> list:
    """sum of weight * (d log p / d theta)**2 over (weight, log_prob_fn) terms, one tape each."""
    total = [np.zeros(v.shape) for v in variables]
    for weight, log_prob in terms:
        with tf.GradientTape() as tape:
            value = log_prob()
        for t, g in zip(total, tape.gradient(value, variables)):
            t += weight * np.square(np.asarray(g))
    return total


def test_vectorized_fisher_equals_a_loop_of_single_sample_tapes():
    keras.utils.set_random_seed(3)
    d = keras.Sequential([keras.Input((1,)), keras.layers.Dense(4, activation="sigmoid"),
                          keras.layers.Dense(1, activation="sigmoid")])
    x = tf.constant(np.linspace(0.1, 2.0, 7, dtype=np.float32).reshape(-1, 1))
    w = tf.constant(np.linspace(0.5, 2.0, 7, dtype=np.float32))

    def log_p(x):
        return tf.math.log(tf.reshape(d(x), [-1]))
    fast = tu.fisher_diagonal(d.trainable_variables, log_p, (x,), w)
    slow = loop_fisher(d.trainable_variables, [(float(w[i]), lambda i=i: log_p(x[i:i + 1])[0])
                                               for i in range(7)])
    for a, b in zip(fast, slow):
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-4, atol=1e-9)


def discriminator_fisher(trainer, x, y) -> np.ndarray:
    fns = tu._build_fisher_fns(trainer, tu.policy_fisher_terms)
    new = fns["discriminator"](tf.constant(x.reshape(-1, 1)), tf.constant(y.reshape(-1, 1)))
    return np.concatenate([np.asarray(f).ravel() for f in new])


def test_model_fisher_of_the_discriminator_is_p_one_minus_p_times_the_logit_gradient():
    trainer, _ = make_trainer(["--discriminator_fisher=model"])
    d = trainer.discriminator.model
    x = np.array([11.0, 12.0, 400.0, 9001.0])
    y = np.array([1.0, 0.0, 1.0, 0.0], np.float32)
    fast = discriminator_fisher(trainer, x, y)
    terms = []
    for xi in x:
        p = float(np.asarray(d(np.array([[xi]])))[0, 0])
        logit = lambda xi=xi: tf.math.log(d(np.array([[xi]]))[0, 0] / (1 - d(np.array([[xi]]))[0, 0]))  # noqa: E731
        terms.append((p * (1 - p) / len(x), logit))
    slow = np.concatenate([t.ravel() for t in loop_fisher(d.trainable_variables, terms)])
    np.testing.assert_allclose(fast, slow, rtol=2e-3, atol=1e-9)
    flipped = discriminator_fisher(trainer, x, 1.0 - y)
    np.testing.assert_array_equal(fast, flipped)  # label-free


def test_empirical_fisher_of_the_discriminator_depends_on_the_labels():
    trainer, _ = make_trainer()  # the default: the seed's empirical Fisher
    x = np.array([11.0, 12.0, 400.0, 9001.0])
    y = np.array([1.0, 0.0, 1.0, 0.0], np.float32)
    assert not np.allclose(discriminator_fisher(trainer, x, y), discriminator_fisher(trainer, x, 1 - y))


def test_offset_fisher_is_the_expectation_over_the_policy():
    trainer, _ = make_trainer(["--offsets=4", "--largest_prime=7"])
    g = trainer.generator.model
    for w in g.trainable_weights:  # a policy that is not uniform
        w.assign(np.random.default_rng(0).normal(0, 0.3, w.shape).astype(np.float32))
    z = np.array([5.0, 97.0, 1000.0])
    fns = tu._build_fisher_fns(trainer, tu.policy_fisher_terms)
    fast = np.concatenate([np.asarray(f).ravel() for f in fns["generator"](tf.constant(z.reshape(-1, 1)))])
    terms = []
    for zi in z:
        pi = np.asarray(tf.nn.softmax(trainer.generator.policy(np.array([[zi]]))))[0]
        for k in range(4):
            log_pi = lambda zi=zi, k=k: tf.nn.log_softmax(trainer.generator.policy(np.array([[zi]])))[0, k]  # noqa: E731
            terms.append((pi[k] / len(z), log_pi))
    slow = np.concatenate([t.ravel() for t in loop_fisher(g.trainable_variables, terms)])
    np.testing.assert_allclose(fast, slow, rtol=2e-3, atol=1e-10)


def penalty_after_training(argv) -> tuple:
    """(largest Fisher entry, EWC penalty) of the generator, one batch after two consolidations."""
    trainer, config = make_trainer([*argv, "--steps=10", "--batch_size=500"])
    rng = np.random.default_rng(0)
    for batch in (1, 2):
        train.run_batch(trainer, config, rng, batch)
    z = utils.random_vector_integers(1, 10**6, 500, rng)
    offset = config["generator_head"] == "offset"
    x = tu.sampled_candidates(trainer, z, 3) if offset else trainer.generator.outputs(z)
    labels = tu.label(x)  # trained, not consolidated: the weights leave their anchor
    (tu.train_score_function if offset else tu.train_pathwise)(
        trainer, z, x, labels, tu.undersample(labels, 0.5, 100, rng), 3)
    return (float(trainer.ewc_generator.flat().max()),
            float(trainer.ewc_generator.penalty(trainer.generator.model, 1.0)))


def test_the_offset_heads_ewc_penalty_is_not_numerically_zero_unlike_the_seeds():
    fisher, penalty = penalty_after_training([])
    seed_fisher, seed_penalty = penalty_after_training(["--generator_head=real",
                                                        "--discriminator=seed", "--discriminator_input=scalar"])
    assert fisher > 1e-3 and penalty > 1e-6
    assert seed_fisher < 1e-8 and seed_penalty < 1e-12  # the flat discriminator gives no Fisher


# -- the score-function method --------------------------------------------------------------------

class NotMultipleOf3(keras.Model):
    """A fixed discriminator: belief 0.9 unless the candidate is a multiple of 3, then 0.1."""

    def call(self, x, training=False):
        n = 2.0 * tf.round(tf.cast(x, tf.float64)) + 1.0
        return tf.where(tf.math.floormod(n, 3.0) == 0.0, 0.1, 0.9)


def multiples_of_3_after_generator_phase(reward: str) -> tuple:
    trainer, _ = make_trainer([f"--reward={reward}", "--generator_steps=20"])
    fixed = with_discriminator(trainer, NotMultipleOf3(), lr=1e-2)
    z = np.arange(1, 2001, dtype=np.float64)
    share = lambda: float(np.mean(utils.to_odd_integer(trainer.generator.outputs(z)) % 3 == 0))  # noqa: E731
    before = share()
    phase = fixed.compiled("generator_phase", tu._build_generator_phase)
    phase(tf.constant(z.reshape(-1, 1)), fixed.batch_seed(1))
    return before, share()


def test_generator_phase_follows_the_discriminators_belief():
    before, after = multiples_of_3_after_generator_phase("belief")
    assert before == pytest.approx(1 / 3, abs=0.01)  # untrained: k = 0, the progression 32z+1
    assert after < 0.05


def test_generator_phase_without_reward_does_not_move():
    before, after = multiples_of_3_after_generator_phase("constant")
    assert after == before


def test_phases_are_traced_once_for_any_batch_size():
    trainer, config = make_trainer(["--steps=2", "--generator_steps=1", "--batch_size=300"])
    rng = np.random.default_rng(0)
    for batch, size in enumerate((300, 123, 250), start=1):
        train.run_batch(trainer, dict(config, batch_size=size), rng, batch)
    for name in ("sample", "discriminator_phase", "generator_phase", "fisher policy_fisher_terms"):
        functions = trainer._compiled[name]
        for f in functions.values() if isinstance(functions, dict) else [functions]:
            assert f.experimental_get_tracing_count() == 1, name


# -- the seed's pathwise method -------------------------------------------------------------------

class Cut(keras.Model):
    """Wraps a discriminator, cutting the gradient at its input: the generator's signal is gone."""

    def __init__(self, d):
        super().__init__()
        self.d = d

    def call(self, x, training=False):
        return self.d(tf.stop_gradient(x), training=training)


def generator_change_after_one_pathwise_step(cut: bool, negative_l2: float) -> float:
    trainer, _ = make_trainer(["--generator_head=real", "--steps=1", "--lambda_=0",
                               f"--negative_l2={negative_l2}"])
    if cut:
        trainer = with_discriminator(trainer, Cut(trainer.discriminator.model))
    before = weights_of(trainer.generator.model)
    z = utils.random_vector_integers(1, 10**6, 200, np.random.default_rng(0))
    labels = tu.label(trainer.generator.outputs(z))
    tu.train_pathwise(trainer, z, trainer.generator.outputs(z), labels, np.arange(200), 1)
    return moved(before, trainer.generator.model)


def test_pathwise_generator_gradient_comes_through_the_discriminator():
    assert generator_change_after_one_pathwise_step(cut=False, negative_l2=0.0) > 0
    assert generator_change_after_one_pathwise_step(cut=True, negative_l2=0.0) == 0


def test_negative_l2_acts_in_the_pathwise_step():
    assert generator_change_after_one_pathwise_step(cut=True, negative_l2=0.5) > 0


def test_negative_l2_is_a_mean_so_its_strength_does_not_depend_on_the_batch_size():
    x = tf.constant([[1e6], [3e6]], tf.float32)
    one = float(tu.negative_l2(x, 0.01, 0.5))
    assert one == pytest.approx(-0.01 * np.mean(np.square(np.array([1e6, 3e6]) / model.OUTPUT_CAP)))
    assert float(tu.negative_l2(tf.tile(x, [50, 1]), 0.01, 0.5)) == pytest.approx(one)
    assert float(tu.negative_l2(tf.constant([[2.0**24]]), 1.0, 0.5)) == pytest.approx(-0.25)  # capped


def test_real_generator_carries_no_activity_regularizer():
    g = model.real_generator()
    g(np.ones((3, 1), np.float32), training=True)
    assert g.losses == []  # the negative L2 is computed in the step, the same on every Keras


def test_the_pathwise_step_stops_on_a_generator_made_to_emit_nan():
    trainer, _ = make_trainer(["--generator_head=real", "--steps=2"])
    z = utils.random_vector_integers(1, 10**6, 100, np.random.default_rng(0))
    x = trainer.generator.outputs(z)
    trainer.generator.model.get_layer("unit_output").bias.assign([np.nan])
    with pytest.raises(utils.GeneratorDivergedError):
        tu.train_pathwise(trainer, z, x, tu.label(x), np.arange(100), 1)


def test_outputs_refuse_nan_zero_and_huge_values():
    for bad in (np.nan, np.inf, 0.0, -3.0, 1e300):
        with pytest.raises(utils.GeneratorDivergedError):
            utils.check_outputs(np.full(4, bad))
    assert utils.check_outputs(np.full(4, 5.0)).tolist() == [5.0] * 4


# -- controls of the whole method: a short training, scored on latents it never saw --------------

def held_out_score(argv, batches: int, seed: int = 0) -> dict:
    trainer, config = make_trainer(argv, seed)
    rng = np.random.default_rng(seed)
    for batch in range(1, batches + 1):
        train.run_batch(trainer, config, rng, batch)
    return measuring.test_models(trainer.generator, None, n_samples=5000, low_latent=HELD_OUT[0],
                       high_latent=HELD_OUT[1], seed=seed)


@pytest.mark.slow
def test_positive_control_the_default_method_learns_in_seconds():
    report = held_out_score([], batches=6)
    assert report["score"] >= 1.8
    assert report["distinct_fraction"] == 1.0


@pytest.mark.slow
def test_negative_control_without_reward_the_default_method_stays_at_chance():
    report = held_out_score(["--reward=constant"], batches=6)
    assert abs(report["score"] - 1.0) <= 3 * report["score_sd"]


# -- wiring: the step and the scripts use each part, not only each helper alone ------------------

def shifted(reward, shift: float):
    """Another reward plus a constant, which a baseline must cancel."""
    return lambda p, log_pi: reward(p, log_pi) + shift


def generator_after_phase(argv, shift: float = 0.0, pull: float = 0.0) -> tuple:
    """(weights after one generator phase, the anchor) on a fixed discriminator, the reward
    shifted by ``shift`` and the EWC anchor put ``pull`` away from the start with a unit Fisher."""
    trainer, _ = make_trainer(["--generator_steps=5", *argv])
    fixed = with_discriminator(trainer, NotMultipleOf3())
    fixed.reward = shifted(trainer.reward, shift)
    ewc = fixed.ewc_generator
    for f, a, w in zip(ewc.fisher, ewc.anchor, trainer.generator.model.trainable_weights):
        f.assign(tf.ones_like(f))
        a.assign(w + pull)
    z = np.arange(1, 2001, dtype=np.float64).reshape(-1, 1)
    fixed.compiled("generator_phase", tu._build_generator_phase)(tf.constant(z), fixed.batch_seed(1))
    generator_after_phase.policy = np.exp(np.asarray(tu.offset_log_probs(trainer.generator, tf.constant(z))))
    return weights_of(trainer.generator.model), [np.asarray(a) for a in ewc.anchor]


def policy_after_phase(argv, shift: float = 0.0) -> np.ndarray:
    """pi(k | z) after ``generator_after_phase``, for the latents 1..2000: (2000, offsets)."""
    generator_after_phase(argv, shift)
    return generator_after_phase.policy


def distance(weights: list, anchor: list) -> float:
    return float(np.sqrt(sum(np.sum((w - a) ** 2) for w, a in zip(weights, anchor))))


def test_the_sampled_policy_gradient_subtracts_its_baseline():
    # (the policy, not the weights: Adam turns the last bias's round-off gradient into full steps)
    plain = policy_after_phase(["--policy_gradient=sampled", "--reward=belief"])
    shifted = policy_after_phase(["--policy_gradient=sampled", "--reward=belief"], shift=10.0)
    start = policy_after_phase(["--policy_gradient=sampled", "--reward=constant"])
    moved = np.abs(plain - start).max()
    assert moved > 1e-3                                   # the phase moved the policy ...
    assert np.abs(plain - shifted).max() < 0.01 * moved   # ... and a constant reward did not


@pytest.mark.parametrize("lambda_, closer", [(100.0, True), (0.0, False)])
def test_the_generator_step_adds_the_ewc_penalty(lambda_, closer):
    free, anchor = generator_after_phase(["--lambda_=0"], pull=0.05)
    pulled, _ = generator_after_phase([f"--lambda_={lambda_}"], pull=0.05)
    assert (distance(pulled, anchor) < distance(free, anchor) - 1e-3) is closer


def discriminator_after_phase(lambda_: float, pull: float = 0.05) -> tuple:
    trainer, _ = make_trainer([f"--lambda_={lambda_}", "--steps=5", "--discriminator_minibatch=0"])
    ewc, d = trainer.ewc_discriminator, trainer.discriminator.model
    for f, a, w in zip(ewc.fisher, ewc.anchor, d.trainable_weights):
        f.assign(tf.ones_like(f))
        a.assign(w + pull)
    x = np.arange(1, 501, dtype=np.float64).reshape(-1, 1)
    labels = tu.label(x.ravel()).astype(np.float32).reshape(-1, 1)
    phase = trainer.compiled("discriminator_phase", tu._build_discriminator_phase)
    phase(tf.constant(x), tf.constant(labels), trainer.batch_seed(1))
    return weights_of(d), [np.asarray(a) for a in ewc.anchor]


@pytest.mark.parametrize("lambda_, closer", [(100.0, True), (0.0, False)])
def test_the_discriminator_step_adds_the_ewc_penalty(lambda_, closer):
    free, anchor = discriminator_after_phase(0.0)
    pulled, _ = discriminator_after_phase(lambda_)
    assert (distance(pulled, anchor) < distance(free, anchor) - 1e-3) is closer


@pytest.mark.parametrize("ratio", [0.25, 0.5])
def test_run_batch_undersamples_to_the_configured_ratio(ratio, monkeypatch):
    calls = []
    real = tu.undersample
    monkeypatch.setattr(tu, "undersample", lambda labels, r, m, rng: calls.append((labels, r, m)) or real(labels, r, m, rng))
    trainer, config = make_trainer([f"--wanted_prime_ratio={ratio}", "--minimum_batch_size=37", "--steps=1",
                                    "--generator_steps=1", "--batch_size=500"])
    row = train.run_batch(trainer, config, np.random.default_rng(0), 1)
    labels, r, m = calls[0]
    assert (r, m) == (ratio, 37)
    assert row["kept"] == pytest.approx(labels.sum() / ratio, abs=2)  # every prime, composites to the ratio


def test_chance_is_each_candidates_own_density_not_the_whole_ranges():
    """Odd candidates log-uniform in [4e4, 4e8] at random score 1, not the 1.24 that one density
    for the whole range gives them: primes thin out over the range."""
    golden = (math.sqrt(5) - 1) / 2
    f = lambda z: np.exp(math.log(2e4) + (z * golden % 1.0) * math.log(1e4))  # noqa: E731
    report = measuring.test_models(calibration._Map(f), None, n_samples=20000, low_latent=1,
                                    high_latent=10**6, seed=0)
    assert abs(report["score"] - 1.0) <= 3 * report["score_sd"]
    candidates = utils.to_odd_integer(f(np.arange(1, 20001, dtype=np.float64)))
    evenly = np.linspace(candidates.min(), candidates.max(), 1001).round().astype(np.int64) | 1
    whole = float(oracle.local_density(evenly).mean())  # the prime share of the whole range's odd integers
    assert report["chance"] / whole > 1.2  # the control: here the two chances are apart


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
