"""training_utils: undersampling, EWC and the Fisher, and that each method learns from its signal.

Each method test has a positive control (the signal is there and the generator follows it)
beside a negative control (the signal is cut and nothing moves), so that neither can pass by
construction.
"""
import copy

import keras
import numpy as np
import pytest
import tensorflow as tf

import utils
from training import model, registry, train
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
                             gradient=trainer.gradient, batch=trainer.batch, loss=trainer.loss,
                             fisher=trainer.fisher)


def weights_of(network) -> list:
    return [np.array(w) for w in network.trainable_weights]


def moved(before: list, network) -> float:
    return sum(float(np.abs(a - np.asarray(b)).sum()) for a, b in zip(before, network.trainable_weights))


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
    ewc.consolidate(g, ones, 0.5)
    ewc.consolidate(g, ones, 0.5)
    np.testing.assert_allclose(np.asarray(ewc.fisher[0]), 1.5)
    g.trainable_weights[0].assign_add(tf.ones_like(g.trainable_weights[0]))
    ewc.consolidate(g, ones, 0.0)
    np.testing.assert_allclose(np.asarray(ewc.fisher[0]), 1.0)
    np.testing.assert_allclose(np.asarray(ewc.anchor[0]), np.asarray(g.trainable_weights[0]))


def test_flat_fisher_round_trips():
    trainer, _ = make_trainer()
    ewc = trainer.ewc_discriminator
    flat = np.random.default_rng(0).random(ewc.flat_fisher().size).astype(np.float32)
    ewc.set_flat_fisher(flat)
    np.testing.assert_array_equal(ewc.flat_fisher(), flat)
    with pytest.raises(ValueError):
        ewc.set_flat_fisher(flat[:-1])


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
    fns = trainer.compiled("fisher", tu._build_fisher_fns)
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
    fns = trainer.compiled("fisher", tu._build_fisher_fns)
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
    x = trainer.generator.training_candidates(trainer, z, 3)
    labels = tu.label(x)
    tu.train_batch(trainer, z, x, labels, tu.sampling(labels, 0.5, 100, rng), 3)
    return (float(trainer.ewc_generator.flat_fisher().max()),
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
    for name in ("sample", "discriminator_phase", "generator_phase", "fisher"):
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
    tu.train_batch(trainer, z, trainer.generator.outputs(z), labels, np.arange(200), 1)
    return moved(before, trainer.generator.model)


def test_pathwise_generator_gradient_comes_through_the_discriminator():
    assert generator_change_after_one_pathwise_step(cut=False, negative_l2=0.0) > 0
    assert generator_change_after_one_pathwise_step(cut=True, negative_l2=0.0) == 0


def test_negative_l2_acts_in_the_pathwise_step():
    assert generator_change_after_one_pathwise_step(cut=True, negative_l2=0.5) > 0


def test_negative_l2_is_a_mean_so_its_strength_does_not_depend_on_the_batch_size():
    x = tf.constant([[1e6], [3e6]], tf.float32)
    one = float(tu.negative_l2(x, 0.01))
    assert one == pytest.approx(-0.01 * np.mean(np.square(np.array([1e6, 3e6]) / model.OUTPUT_CAP)))
    assert float(tu.negative_l2(tf.tile(x, [50, 1]), 0.01)) == pytest.approx(one)
    assert float(tu.negative_l2(tf.constant([[2.0**24]]), 1.0)) == pytest.approx(-0.25)  # capped


def test_real_generator_carries_no_activity_regularizer():
    g = model.real_generator()
    g(np.ones((3, 1), np.float32), training=True)
    assert g.losses == []  # the negative L2 is computed in the step, the same on every Keras


def test_train_batch_stops_on_a_generator_made_to_emit_nan():
    trainer, _ = make_trainer(["--generator_head=real", "--steps=2"])
    z = utils.random_vector_integers(1, 10**6, 100, np.random.default_rng(0))
    x = trainer.generator.outputs(z)
    trainer.generator.model.get_layer("unit_output").bias.assign([np.nan])
    with pytest.raises(model.GeneratorDivergedError):
        tu.train_batch(trainer, z, x, tu.label(x), np.arange(100), 1)


def test_outputs_refuse_nan_zero_and_huge_values():
    for bad in (np.nan, np.inf, 0.0, -3.0, 1e300):
        with pytest.raises(model.GeneratorDivergedError):
            model.check_outputs(np.full(4, bad))
    assert model.check_outputs(np.full(4, 5.0)).tolist() == [5.0] * 4


# -- controls of the whole method: a short training, scored on latents it never saw --------------

def held_out_score(argv, batches: int, seed: int = 0) -> dict:
    trainer, config = make_trainer(argv, seed)
    rng = np.random.default_rng(seed)
    for batch in range(1, batches + 1):
        train.run_batch(trainer, config, rng, batch)
    return train.test.test_models(trainer.generator, None, n_samples=5000, low_latent=HELD_OUT[0],
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
