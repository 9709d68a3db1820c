"""The networks: the residue encoding, the offset head, the seed's networks, weight files."""
import json

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

import utils
from training import checkpoint, encodings, model, registry, sampling, train

Z = np.array([[1.0], [7.0], [1e3], [1e5], [5e5], [1e6], [1e7]], dtype=np.float32)
# The largest candidate any generator can emit: the offset head at its limits
LARGEST_X = registry.MAX_OFFSETS * utils.LATENT_LIMIT + registry.MAX_OFFSETS - 1


# -- residue encoding ----------------------------------------------------------------------------

def python_features(n: int, primes) -> list:
    """The encoding of n, from plain Python % and math: sin, cos of 2 pi j (n % p) / p."""
    out = []
    for p in primes:
        r = n % p
        phases = [2 * np.pi * j * r / p for j in range(1, (p - 1) // 2 + 1)]
        out += [np.sin(a) for a in phases] + [np.cos(a) for a in phases]
    return out


def test_encoding_matches_python_modulo_up_to_the_largest_reachable_candidate():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.integers(0, LARGEST_X, 300), [0, 1, 2**24 - 1, 2**24, 2**24 + 1,
                                                           2**40 - 1, LARGEST_X - 1, LARGEST_X]])
    layer = model.ResidueEncoding(encodings.MAX_LARGEST_PRIME)
    got = np.asarray(layer(x.astype(np.float64).reshape(-1, 1)))
    expected = np.array([python_features(2 * int(v) + 1, layer.primes) for v in x])
    np.testing.assert_allclose(got, expected, atol=2e-6)  # float32 table values


def test_the_comparison_above_catches_a_float32_candidate():
    # a generator output rounded to float32 near the largest x lands on another residue class
    x = np.array([LARGEST_X - 1 - 2 * i for i in range(20)], dtype=np.float64)
    layer = model.ResidueEncoding(encodings.MAX_LARGEST_PRIME)
    rounded = np.asarray(layer(x.astype(np.float32).astype(np.float64).reshape(-1, 1)))
    expected = np.array([python_features(2 * int(v) + 1, layer.primes) for v in x])
    assert np.max(np.abs(rounded - expected)) > 0.1


def test_encoding_rounds_half_to_even_like_the_odd_map():
    x = np.array([[0.5], [1.5], [2.4999], [7.5]])
    layer = model.ResidueEncoding(7)
    candidates = utils.to_odd_integer(x.ravel())
    expected = [python_features(int(n), layer.primes) for n in candidates]
    np.testing.assert_allclose(np.asarray(layer(x)), expected, atol=2e-6)


def test_encoding_of_non_finite_values_does_not_fail():
    features = np.asarray(model.ResidueEncoding(13)(np.array([[np.nan], [np.inf], [-np.inf]])))
    assert np.all(np.isfinite(features))  # a diverged generator is reported after its step


def test_encoding_of_integers_reads_z_itself():
    layer = model.ResidueEncoding(13, candidate=False)
    np.testing.assert_allclose(np.asarray(layer(np.array([[38.0]]))),
                               [python_features(38, layer.primes)], atol=2e-6)


def test_encoding_has_a_straight_through_gradient_equal_to_the_smooth_derivative():
    layer = model.ResidueEncoding(13)
    x = tf.Variable(np.array([[10.3], [77.0], [1e6 + 0.2]]))
    weights = tf.constant(np.random.default_rng(1).normal(size=layer.features), tf.float32)
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(layer(x) * weights)
    got = tape.gradient(total, x).numpy().ravel()

    def smooth(n: float) -> float:  # the features as smooth functions of a real n
        return float(np.dot(python_features_real(n, layer.primes), weights.numpy()))
    for xi, g in zip(x.numpy().ravel(), got):
        n = 2 * np.rint(xi) + 1
        numeric = (smooth(n + 1e-4) - smooth(n - 1e-4)) / 2e-4 * 2  # dn/dx = 2, rounding passed
        assert g == pytest.approx(numeric, rel=1e-3, abs=1e-3)
    assert np.all(np.abs(got) > 0)


def python_features_real(n: float, primes) -> list:
    out = []
    for p in primes:
        phases = [2 * np.pi * j * n / p for j in range(1, (p - 1) // 2 + 1)]
        out += [np.sin(a) for a in phases] + [np.cos(a) for a in phases]
    return out


def test_encoding_features_single_out_multiples_linearly():
    # with every harmonic, "n is a multiple of p" is a linear function of the features
    layer = model.ResidueEncoding(7)
    x = np.arange(0, 420)
    n_values = 2 * x + 1
    f = np.asarray(layer(x.astype(np.float64).reshape(-1, 1)))
    a = np.c_[f, np.ones(len(f))]
    for p in (3, 5, 7):
        target = (n_values % p == 0).astype(float)
        coef, *_ = np.linalg.lstsq(a, target, rcond=None)
        np.testing.assert_allclose(a @ coef, target, atol=1e-4)


# -- the offset head ----------------------------------------------------------------------------

def architecture(role: str, *argv: str) -> dict:
    """The architecture of ``role`` that train.py's constants with ``argv`` give (a small batch,
    which the architecture does not record, keeps wide heads under the memory check)."""
    config = train.parse_config(["--batch_size=64", *argv])
    return (registry.generator_architecture if role == "generator"
            else registry.discriminator_architecture)(config)


def offset_head(offsets: int = 16, largest_prime: int = 31, generator_input: str = "candidates"):
    return registry.build(architecture("generator", f"--offsets={offsets}", f"--largest_prime={largest_prime}",
                                       f"--generator_input={generator_input}", "--acceptance=none"),
                          "generator")


@pytest.mark.parametrize("generator_input", ["candidates", "latent"])
def test_offset_generator_outputs_distinct_integers_in_each_block(generator_input):
    keras.utils.set_random_seed(0)
    head = offset_head(16, 31, generator_input)
    g = head.model
    last = g.get_layer(model.LOGITS_LAYER if generator_input == "latent" else "score")
    last.kernel.assign(np.random.default_rng(0).normal(size=last.kernel.shape))  # leave the zero start
    z = np.arange(1, 5001, dtype=np.float64).reshape(-1, 1)
    x = np.asarray(g(z)).ravel()
    k = x - 16 * z.ravel()
    assert np.all((k >= 0) & (k < 16) & (k == np.round(k)))
    assert np.unique(x).size == x.size
    assert np.unique(k).size > 4  # the offsets depend on z
    np.testing.assert_array_equal(k, np.argmax(np.asarray(head.policy(z)), axis=1))


def test_untrained_offset_generator_is_the_progression_at_chance():
    # the zero last layer makes every offset equally likely; greedy takes k = 0
    head = offset_head()
    z = np.arange(1, 101, dtype=np.float64).reshape(-1, 1)
    np.testing.assert_array_equal(head.outputs(z), 16 * z.ravel())
    logits = np.asarray(head.policy(z))
    assert logits.shape == (100, 16) and np.all(logits == 0)


def test_offset_generator_is_exact_beyond_float32():
    g = offset_head(registry.MAX_OFFSETS).model
    z = np.array([[utils.LATENT_LIMIT]], dtype=np.float64)
    assert float(np.asarray(g(z))[0, 0]) == registry.MAX_OFFSETS * utils.LATENT_LIMIT


def test_each_part_splits_at_its_encoding_into_the_same_network():
    head = offset_head(8, 13)
    z = np.array([[3.0], [1234.0]])
    np.testing.assert_allclose(np.asarray(head.score(head.encode(z))), np.asarray(head.policy(z)))
    x = np.array([[3.0], [1234.0], [99.0]])
    for argv in (["--largest_prime=13"], ["--discriminator=gln", "--largest_prime=7"],
                 ["--discriminator=seed", "--discriminator_input=scalar"],
                 ["--discriminator_input=scalar", "--discriminator_layers=1"]):
        d = registry.build(architecture("discriminator", *argv), "discriminator")
        np.testing.assert_allclose(np.asarray(d.head(d.encode(x))), np.asarray(d.model(x)))
        assert [w.path for w in d.head.weights] == [w.path for w in d.model.weights]


# -- the seed's networks --------------------------------------------------------------------------

def test_original_generator_is_a_scaled_identity():
    keras.utils.set_random_seed(1)
    g = model.real_generator(original=True)
    ratio = np.asarray(g(Z)).ravel() / Z.ravel()
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-3)  # float32 round-off only


def test_default_real_generator_is_not_a_scaled_identity():
    keras.utils.set_random_seed(1)
    g = model.real_generator()
    ratio = np.asarray(g(Z)).ravel() / Z.ravel()
    assert np.ptp(np.log(ratio)) > 1.0  # G(z)/z varies by more than a factor e


def test_real_generator_output_is_bounded_and_positive():
    keras.utils.set_random_seed(2)
    g = model.real_generator()
    for layer in g.layers:  # large random weights drive the pre-activation far past the fold
        if layer.weights:
            layer.kernel.assign(10.0 * np.asarray(layer.kernel))
    x = np.asarray(g(np.linspace(1, 1e7, 1001, dtype=np.float32).reshape(-1, 1)))
    assert np.all(x >= 1.0) and np.all(x <= model.OUTPUT_CAP)


def test_fold_is_a_unit_triangle_wave_with_unit_slope():
    h = keras.ops.convert_to_tensor(np.array([0.0, 0.25, 1.0, 1.5, 2.0, -0.5, 3.75], np.float32))
    np.testing.assert_allclose(np.asarray(model.fold(h)), [0, 0.25, 1, 0.5, 0, 0.5, 0.25])
    v = tf.Variable([0.3, 1.4, -2.2])
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(model.fold(v))
    np.testing.assert_allclose(np.abs(tape.gradient(y, v)), 1.0)


def test_scalar_discriminator_is_the_seeds():
    d = model.scalar_discriminator()
    p = np.asarray(d(np.array([[3.0], [1e6], [1.6e7]], np.float32)))
    assert p.shape == (3, 1) and np.all((p > 0) & (p < 1))
    assert sum(isinstance(layer, keras.layers.Dropout) for layer in d.layers) == 6
    assert len(d.losses) == 6  # the L2 on each hidden kernel


# -- weight files -------------------------------------------------------------------------------

ARCHITECTURES = [(role, architecture(role, *argv)) for role, argv in (
    ("generator", ["--offsets=8", "--largest_prime=13"]),
    ("generator", ["--offsets=4", "--largest_prime=7", "--generator_input=latent", "--generator_layers=1",
                   "--acceptance=none"]),
    ("generator", ["--acceptance=window", "--generator_units=8"]),
    ("generator", ["--generator_input=bits", "--generator_layers=0", "--discriminator_input=bits"]),
    ("generator", ["--generator_head=real"]),
    ("generator", ["--generator_head=original", "--discriminator=seed", "--discriminator_input=scalar"]),
    ("discriminator", ["--largest_prime=11"]),
    ("discriminator", ["--discriminator=seed", "--discriminator_input=scalar"]),
    ("discriminator", ["--discriminator_input=scalar", "--discriminator_layers=1", "--discriminator_units=8"]),
    ("discriminator", ["--discriminator_input=bits", "--discriminator_layers=0"]),
    ("discriminator", ["--discriminator=gln", "--largest_prime=7"]),
)]
GOOD = {role: a for role, a in reversed(ARCHITECTURES)}  # one of each role (the first)


def saved(tmp_path, role: str, architecture: dict):
    network = registry.build(architecture, role)
    path = tmp_path / f"{role}.h5"
    checkpoint.save_network(network.model, path, architecture)
    return network, path


@pytest.mark.parametrize("role, architecture", ARCHITECTURES, ids=lambda a: "-".join(map(str, a.values()))
                         if isinstance(a, dict) else a)
def test_weight_file_rebuilds_its_own_architecture(tmp_path, role, architecture):
    network = registry.build(architecture, role)
    for w in network.model.trainable_weights:
        w.assign(np.random.default_rng(0).normal(size=w.shape).astype(np.float32))
    path = tmp_path / "net.h5"
    checkpoint.save_network(network.model, path, architecture)
    again = checkpoint.load_network(path, role)
    rows = np.array([[3.0], [17.0], [1000.0]])
    np.testing.assert_array_equal(np.asarray(again.model(rows)), np.asarray(network.model(rows)))
    assert checkpoint.read_architecture(path) == architecture == again.architecture


def test_weight_file_is_a_whole_keras_model_too(tmp_path):
    network, path = saved(tmp_path, *ARCHITECTURES[0])
    again = keras.models.load_model(path)  # for users: the registered layers rebuild it
    rows = np.array([[3.0], [12345.0]])
    np.testing.assert_array_equal(np.asarray(again(rows)), np.asarray(network.model(rows)))


def test_weight_file_is_refused_for_another_architecture(tmp_path):
    role, a = ARCHITECTURES[0]
    b = dict(a, offsets=16)
    _, path = saved(tmp_path, role, a)
    with pytest.raises(utils.OptimusError, match="generator.h5"):
        checkpoint.load_weights(registry.build(b, role).model, path, b)


BAD_RECORDS = [  # (role, record) of files that each would otherwise load
    ("generator", {k: v for k, v in GOOD["generator"].items() if k != "generator_input"}),  # missing
    ("generator", dict(GOOD["generator"], generator_input="x")),
    ("generator", dict(GOOD["generator"], generator_input="latent", acceptance="window")),  # needs a
                                                                        # per-candidate scorer
    ("generator", dict(GOOD["generator"], offsets=True)),  # True is not the integer 1
    ("generator", dict(GOOD["generator"], offsets=8.0)),  # 8.0 is not an integer
    ("generator", dict(GOOD["generator"], generator_units=10**6)),  # beyond what fits in memory
    ("generator", {"generator_head": "original", "largest_prime": 13}),  # a key it does not have
    ("generator", {"generator_head": 1}),
    ("discriminator", dict(GOOD["discriminator"], largest_prime=10**9)),
    ("discriminator", dict(GOOD["discriminator"], code="__import__('os')")),
    ("discriminator", {"discriminator": "gln", "discriminator_input": "scalar"}),
    ("discriminator", {"discriminator": "seed", "discriminator_input": "residues", "largest_prime": 7}),
    ("discriminator", ["discriminator_input", "scalar"]),
]


@pytest.mark.parametrize("role, record", BAD_RECORDS)
def test_unknown_architecture_records_are_refused(tmp_path, role, record):
    good = GOOD[role]
    _, path = saved(tmp_path, role, good)
    assert checkpoint.load_network(path, role).architecture == good  # the file loads as written
    with h5py.File(path, "a") as f:
        f.attrs[checkpoint.ARCHITECTURE_ATTRIBUTE] = json.dumps(record)
    with pytest.raises(utils.OptimusError, match=f"{role}.h5") as refused:
        checkpoint.load_network(path, role)
    assert "holds no" not in str(refused.value)  # refused for the record, not for its role


def test_a_generator_file_is_refused_as_a_discriminator(tmp_path):
    _, path = saved(tmp_path, "generator", GOOD["generator"])
    with pytest.raises(utils.OptimusError, match="no discriminator"):
        checkpoint.load_network(path, "discriminator")


# -- the bits encoding ----------------------------------------------------------------------------

def test_bits_are_the_binary_digits_of_the_candidate_up_to_the_largest_reachable():
    rng = np.random.default_rng(0)
    x = np.concatenate([[0.0, 1.0, 2.0, 2.0**24, LARGEST_X],
                        rng.integers(0, LARGEST_X, 2000).astype(np.float64)])
    features = np.asarray(model.BitsEncoding()(x.reshape(-1, 1)))
    for xi, row in zip(x, features):
        n = 2 * int(xi) + 1
        digits = [int(c) for c in reversed(format(n, f"0{model.BIT_WIDTH}b"))]
        assert row.tolist() == [2.0 * d - 1.0 for d in digits], n
    latent = np.asarray(model.BitsEncoding(candidate=False)(np.array([[6.0]])))[0]
    assert latent[:4].tolist() == [-1.0, 1.0, 1.0, -1.0]  # 6 = 0b110, least significant first


def test_the_bits_comparison_above_catches_a_float32_candidate():
    x = 2.0**26 + 1  # float32 cannot hold it: it rounds to 2**26, whose candidate has other digits
    assert float(np.float32(x)) != x
    exact = np.asarray(model.BitsEncoding()(np.array([[x]])))[0]
    rounded = np.asarray(model.BitsEncoding()(np.array([[x]], np.float32).astype(np.float64)))[0]
    n = 2 * int(x) + 1
    assert exact.tolist() == [2.0 * int(c) - 1.0 for c in reversed(format(n, f"0{model.BIT_WIDTH}b"))]
    assert rounded.tolist() != exact.tolist()


def test_the_activations_are_the_same_three_wherever_they_are_named():
    """The registry's rule (no TensorFlow), the Keras layers and the folded scorer's numpy copies."""
    assert set(registry.ACTIVATIONS) == set(model.ACTIVATIONS) == set(sampling.NUMPY_ACTIVATIONS)
