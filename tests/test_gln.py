"""The gated linear network discriminator: calibration, held-out log-loss, memory, and training."""
import contextlib
import io

import keras
import numpy as np
import pytest
import tensorflow as tf

import utils
from training import oracle
from training import checkpoint, registry, train
from test_training import HELD_OUT, held_out_score

STREAM_BATCHES = 200            # batches of the labelled stream
STREAM_BATCH = 10_000           # candidates per batch
PASSES = 1                      # local updates per batch: one pass, as online learning


def candidates(rng, n: int, low: int, high: int) -> tuple:
    """(x, labels): outputs x whose odd candidates 2x+1 are uniform in [2 low + 1, 2 high + 1]."""
    x = rng.integers(low, high, n).astype(np.float64)
    return x, oracle.is_prime(utils.to_odd_integer(x)).astype(np.float32)


def gln(largest_prime: int, seed: int = 0, **settings) -> tuple:
    """(encode, head, layer) of a fresh GLN discriminator, of train.py's gln_* settings but ``settings``."""
    keras.utils.set_random_seed(seed)
    d = registry.build({"discriminator": "gln", "discriminator_input": "residues", "largest_prime": largest_prime,
                        **{k: settings.get(k, train.DEFAULTS[k]) for k in registry.GLN}}, "discriminator")
    return d.encode, d.head, d.gln


def stream(network: tuple, rng, low: int, high: int, batches: int = STREAM_BATCHES) -> None:
    encode, _, layer = network
    update = tf.function(layer.local_update)
    for _ in range(batches):
        x, y = candidates(rng, STREAM_BATCH, low, high)
        features = encode(x.reshape(-1, 1))
        for _ in range(PASSES):
            update(features, y.reshape(-1, 1))


def predict(network: tuple, x: np.ndarray) -> np.ndarray:
    encode, head, _ = network
    return np.asarray(head(encode(x.reshape(-1, 1)))).ravel()


def log_loss(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def class_errors(network, x, y) -> np.ndarray:
    """|mean prediction - prime share| in each residue class of the candidates modulo 15."""
    classes = utils.to_odd_integer(x) % np.uint64(15)
    p = predict(network, x)
    return np.array([abs(p[classes == r].mean() - y[classes == r].mean()) for r in range(1, 15, 2)])


@pytest.fixture(scope="module")
def trained_on_classes_mod_15():
    """A GLN that sees n mod 3 and n mod 5 (primes up to 5), after a stream, and a held-out sample."""
    rng = np.random.default_rng(0)
    network = gln(5)
    held_out = candidates(rng, 100_000, 10**6, 10**7)
    untrained_errors = class_errors(network, *held_out)
    stream(network, rng, 10**6, 10**7)
    return network, held_out, untrained_errors


def test_gln_probabilities_converge_to_the_prime_share_of_each_residue_class(trained_on_classes_mod_15):
    network, held_out, untrained_errors = trained_on_classes_mod_15
    assert np.max(class_errors(network, *held_out)) <= 0.03
    assert np.max(untrained_errors) > 0.2  # the control: before the stream it is far off


def test_gln_log_loss_on_held_out_candidates_beats_a_constant(trained_on_classes_mod_15):
    network, (x, y), _ = trained_on_classes_mod_15
    constant = log_loss(np.full_like(y, y.mean()), y)  # the best constant, fitted on the answers
    assert log_loss(predict(network, x), y) < constant - 0.02
    assert log_loss(predict(gln(5), x), y) > constant  # the control: untrained


def test_gln_keeps_the_first_range_after_a_stream_from_another():
    rng = np.random.default_rng(1)
    network = gln(31)
    first, second = (10**3, 10**5), (10**7, 10**8)
    x, y = candidates(rng, 50_000, *first)
    constant = log_loss(np.full_like(y, y.mean()), y)
    stream(network, rng, *first, batches=60)
    learned = log_loss(predict(network, x), y)
    stream(network, rng, *second, batches=60)
    after = log_loss(predict(network, x), y)
    assert learned < constant - 0.05
    assert after < constant - 0.05  # not back to the constant predictor


def test_gln_weights_are_its_own_not_an_optimizers():
    d = gln(7)[1]
    assert d.trainable_weights == [] and len(d.weights) > 0


def test_gln_local_update_changes_only_the_chosen_contexts():
    encode, head, layer = gln(7)
    before = [np.array(w) for w in layer.weights_]
    x = np.array([[10.0], [11.0]])
    layer.local_update(encode(x), np.array([[1.0], [0.0]]))
    changed = np.abs(np.asarray(layer.weights_[0]) - before[0]).sum(axis=-1) > 0  # (neurons, contexts)
    assert 1 <= changed.sum(axis=1).max() <= 2  # each neuron moved at most the two rows' contexts
    assert int(layer.updates_done) == 1


@pytest.mark.slow
def test_a_short_training_with_the_gln_discriminator_learns():
    report = held_out_score(["--discriminator=gln"], batches=6)
    assert report["score"] >= 1.8 and report["distinct_fraction"] == 1.0
    assert report["low_latent"] == HELD_OUT[0]


@pytest.mark.slow
def test_a_resumed_gln_run_matches_an_uninterrupted_one(tmp_path, monkeypatch):
    from training import checkpoint, train
    monkeypatch.setattr(tf.config.experimental, "enable_op_determinism", lambda: None)
    tiny = ["--discriminator=gln", "--batch_size=300", "--steps=3", "--generator_steps=1",
            "--nb_samples=10", "--test_samples=200", "--test_session_occurrences=1"]

    def run(name, batches):
        train.train(train.parse_config([*tiny, f"--nb_batches={batches}", f"--checkpoint_dir={tmp_path / name}"]))
        state = checkpoint.read_state(tmp_path / name)
        rows = [{k: v for k, v in row.items() if k != "seconds"} for row in state["history"]]
        return rows, state["tests"], checkpoint.load_networks(tmp_path / name)[1]
    straight = run("straight", 3)
    run("resumed", 2)
    resumed = run("resumed", 3)
    assert resumed[:2] == straight[:2]
    for a, b in zip(straight[2].model.weights, resumed[2].model.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert int(straight[2].gln.updates_done) == 9  # 3 batches of 3 steps


# -- the GLN's settings are train.py constants: listed, used by the layer, recorded ---------------

CHANGED = {"gln_layers": 1, "gln_units": 8, "gln_context_bits": 2, "gln_epsilon": 0.05, "gln_weight_limit": 0.01,
           "gln_lr": 0.5, "gln_decay": 0.01, "gln_bias_logit": -1.0, "gln_input_scale": 2.0, "gln_offset_scale": 0.1}


def test_help_lists_each_gln_setting_and_each_changes_what_the_network_does(capsys):
    assert train.main(["--help"]) == 0
    page = capsys.readouterr().out
    assert all(f"--{name} = " in page for name in registry.GLN)
    x, y = candidates(np.random.default_rng(0), 512, 10**5, 10**6)
    def after_a_step(**settings):
        encode, head, layer = gln(31, **settings)
        features = encode(x.reshape(-1, 1))
        before = np.asarray(head(features))
        layer.local_update(features, y.reshape(-1, 1))
        layer.local_update(features, y.reshape(-1, 1))
        return before, np.asarray(head(features))
    default = after_a_step()
    np.testing.assert_array_equal(after_a_step()[1], default[1])  # the control: the same settings agree
    for name, value in CHANGED.items():
        changed = after_a_step(**{name: value})
        assert not np.allclose(changed[1], default[1], atol=1e-6), name


@pytest.mark.slow
def test_a_gln_run_records_the_settings_it_was_given(tmp_path):
    argv = ["--discriminator=gln", "--nb_batches=3", "--batch_size=200", "--test_samples=200", "--steps=5",
            "--generator_steps=2", f"--checkpoint_dir={tmp_path}", *(f"--{k}={v}" for k, v in CHANGED.items())]
    with contextlib.redirect_stdout(io.StringIO()):
        train.train(train.parse_config(argv))
    config = checkpoint.read_state(tmp_path)["config"]
    _, d = checkpoint.load_networks(tmp_path)
    assert all(config[k] == v == d.architecture[k] for k, v in CHANGED.items())
    assert d.gln.widths == (8, 1) and d.gln.context_bits == 2
    with pytest.raises(utils.OptimusError, match="checkpoint was trained with gln_layers=1"):
        train.train(train.parse_config([*argv[:-len(CHANGED)], "--nb_batches=4"]))
