"""The networks of Optimus: generators of prime candidates and primality discriminators.

A generator maps a latent integer z to a real x > 0, whose candidate is the odd integer
2*round(x)+1; a discriminator maps x to P(candidate is prime). Here are the encodings (residues,
binary digits), the offset and real heads, and the discriminators (an MLP on an encoding, a gated
linear network, the seed's scalar MLP), as plain Keras models of registered layers; which builder
a constant selects is in ``training/registry.py``, and ``checkpoint.load_network`` rebuilds them.
"""
import keras
import numpy as np
import tensorflow as tf
from keras import layers

import utils
from training import oracle
from training.encodings import BIT_WIDTH, LARGEST_PRIME, Bits, Real, Residues, residue_tables


# Offset head
OFFSETS = 16                    # default number of offsets k per latent (a power of 2: see README)

# Real head (the seed's generator)
GENERATOR_DEPTH = 10            # hidden Dense layers
GENERATOR_WIDTH = 100           # units per hidden layer
LEAKY_RELU_SLOPE = 0.3          # negative slope of LeakyReLU
LATENT_SCALE = 1e6              # latent integers are divided by this inside the model (training range)
OUTPUT_CAP = float(utils.FLOAT32_EXACT)  # largest output x, where float32 stops being exact

# Discriminators
SCALAR_WIDTHS = (1000, 100, 100, 100, 100, 100)  # the seed's hidden sigmoid layers
DROPOUT_RATE = 0.3              # the seed's: after each hidden layer
DISCRIMINATOR_L2 = 1e-3         # the seed's: L2 on the kernels

# Running the networks
FORWARD_CHUNK = 16384           # inputs per network call when evaluating many (the offset head makes
                                # 16 candidate rows of each: larger chunks thrash memory)

LOGITS_LAYER = "offset_logits"  # the offset head's policy output


@keras.saving.register_keras_serializable(package="optimus")
class ResidueEncoding(layers.Layer):
    """Residues of n modulo the odd primes <= largest_prime, as Fourier features (``residue_tables``).

    candidate=True: n = 2*round(x)+1, the candidate of a generator output x; False: n = round(x).
    Input (..., 1) below utils.FLOAT64_EXACT/2; output (..., sum(p-1)) float32. Exact: n is reduced
    in float64 and the sines are looked up by residue. The gradient is straight-through: the
    features are differentiated as the smooth functions of n that they sample."""

    def __init__(self, largest_prime: int = LARGEST_PRIME, candidate: bool = True, **kwargs):
        kwargs.setdefault("autocast", False)  # float64 in: a saved config already names it
        super().__init__(**kwargs)
        self.largest_prime = int(largest_prime)
        self.candidate = bool(candidate)
        self.primes = oracle.odd_primes(self.largest_prime)
        if not self.primes:
            raise ValueError(f"ResidueEncoding: no odd prime <= {largest_prime}")
        self._tables, self._slopes = residue_tables(self.primes)
        self.features = sum(p - 1 for p in self.primes)

    def call(self, x):
        scale = 2.0 if self.candidate else 1.0
        primes, tables, slopes = self.primes, self._tables, self._slopes

        @tf.custom_gradient
        def encode(x):
            n = scale * tf.round(x) + (scale - 1.0)
            # A diverged generator's NaN or inf must not index the tables: it is encoded as 0
            # here and reported by utils.check_outputs after the step.
            n = tf.where(tf.math.is_finite(n), n, tf.zeros_like(n))
            residues = [tf.cast(tf.math.floormod(n[..., 0], float(p)), tf.int32) for p in primes]
            features = tf.concat([tf.gather(t, r) for t, r in zip(tables, residues)], -1)

            def gradient(upstream):
                slope = tf.concat([tf.gather(s, r) for s, r in zip(slopes, residues)], -1)
                return tf.cast(scale * tf.reduce_sum(upstream * slope, -1, keepdims=True), x.dtype)
            return features, gradient
        return encode(tf.cast(x, tf.float64))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.features)

    def get_config(self) -> dict:
        return {**super().get_config(), "largest_prime": self.largest_prime, "candidate": self.candidate}


@keras.saving.register_keras_serializable(package="optimus")
class BitsEncoding(layers.Layer):
    """The binary digits of n, least significant first, as features -1 (digit 0) and +1 (digit 1).

    candidate as ``ResidueEncoding``. Input (..., 1) below 2**width; output (..., width) float32.
    Exact: digit i is floor(n / 2**i) mod 2 in float64. Piecewise constant: no gradient passes.
    """

    def __init__(self, width: int = BIT_WIDTH, candidate: bool = True, **kwargs):
        kwargs.setdefault("autocast", False)  # float64 in: a saved config already names it
        super().__init__(**kwargs)
        self.width = int(width)
        self.candidate = bool(candidate)
        self.features = self.width

    def call(self, x):
        scale = 2.0 if self.candidate else 1.0
        n = scale * tf.round(tf.cast(x, tf.float64)) + (scale - 1.0)
        n = tf.where(tf.math.is_finite(n), n, tf.zeros_like(n))  # reported by utils.check_outputs
        powers = 2.0 ** tf.range(self.width, dtype=tf.float64)
        digits = tf.math.floormod(tf.floor(n / powers), 2.0)
        return tf.cast(2.0 * digits - 1.0, tf.float32)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.width)

    def get_config(self) -> dict:
        return {**super().get_config(), "width": self.width, "candidate": self.candidate}


ENCODING_LAYERS = {  # encodings.py's class: (architecture, candidate) -> the layer that reads x
    Real: lambda architecture, candidate: layers.Rescaling(1.0 / OUTPUT_CAP, name="encoding"),
    Residues: lambda architecture, candidate: ResidueEncoding(architecture["largest_prime"],
                                                              candidate=candidate, name="encoding"),
    Bits: lambda architecture, candidate: BitsEncoding(candidate=candidate, name="encoding"),
}


def encoding_layer(encoding, architecture: dict, candidate: bool = True) -> layers.Layer:
    """The Keras layer of an encoding (a class of encodings.py) for ``architecture``: the features
    of the candidate (of the latent itself with ``candidate=False``)."""
    return ENCODING_LAYERS[encoding](architecture, candidate)


class _OffsetLayer(layers.Layer):
    """A float64 layer of the offset head that knows its number of offsets."""

    def __init__(self, offsets: int = OFFSETS, **kwargs):
        kwargs.setdefault("dtype", "float64")  # a saved config already names it
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.offsets = int(offsets)

    def get_config(self) -> dict:
        return {**super().get_config(), "offsets": self.offsets}


@keras.saving.register_keras_serializable(package="optimus")
class OffsetCandidates(_OffsetLayer):
    """z of shape (n, 1) -> the offset head's K choices offsets*z + k, shape (n, K, 1), float64."""

    def call(self, z):
        k = tf.range(self.offsets, dtype=tf.float64)
        return (self.offsets * tf.cast(z, tf.float64) + k)[..., None]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.offsets, 1)


@keras.saving.register_keras_serializable(package="optimus")
class OffsetChoice(_OffsetLayer):
    """[z (n, 1), logits (n, K)] -> x = K*z + argmax_k logits, shape (n, 1), float64: the greedy output."""

    def call(self, inputs):
        z, logits = inputs
        k = tf.cast(tf.argmax(logits, axis=-1), tf.float64)[:, None]
        return self.offsets * tf.cast(z, tf.float64) + k

    def compute_output_shape(self, input_shapes):
        return (input_shapes[0][0], 1)


@keras.saving.register_keras_serializable(package="optimus")
def fold(x):
    """Triangle wave with period 2 and range [0, 1]: a bounded map whose slope is always +-1."""
    return keras.ops.abs(x - 2.0 * keras.ops.round(x / 2.0))


@keras.saving.register_keras_serializable(package="optimus")
def absolute(x):
    """Elementwise |x|: the original generator's output activation."""
    return keras.ops.abs(x)


@keras.saving.register_keras_serializable(package="optimus")
def sine(x):
    """sin(x): a periodic activation (SIREN, Sitzmann et al. 2020)."""
    return keras.ops.sin(x)


@keras.saving.register_keras_serializable(package="optimus")
def snake(x):
    """x + sin(x)**2: a periodic activation with a linear trend (Ziyin et al. 2020, a = 1)."""
    return x + keras.ops.square(keras.ops.sin(x))


ACTIVATIONS = {"relu": "relu", "sin": sine, "snake": snake}  # of the MLP bodies' hidden layers


@keras.saving.register_keras_serializable(package="optimus")
class GatedLinearNetwork(layers.Layer):
    """A Bernoulli gated linear network (Veness et al. 2021) on features f (n, F) in [-1, 1].

    f gives the base inputs' logits and the side information: each neuron picks one of
    2**context_bits weight vectors w by which side of its context_bits random hyperplanes f lies
    on, and outputs p = sigmoid(w . logit(p_in)), p_in its layer's inputs and a constant bias; the
    last one's p (n, 1) is the output. No backpropagation: ``local_update`` is each neuron's own
    log-loss step, on non-trainable weights (no optimizer or EWC touches them).

    Its settings are train.py's gln_* constants: gln_layers hidden layers of gln_units neurons, then
    one; gln_context_bits hyperplanes per neuron; probabilities clipped to [gln_epsilon, 1 -
    gln_epsilon] and weights to +-gln_weight_limit; the step gln_lr / (1 + gln_decay * t); the
    bias input gln_bias_logit; base inputs sigmoid(gln_input_scale * f); offsets' sd gln_offset_scale."""

    def __init__(self, gln_layers: int, gln_units: int, gln_context_bits: int, gln_epsilon: float,
                 gln_weight_limit: float, gln_lr: float, gln_decay: float, gln_bias_logit: float,
                 gln_input_scale: float, gln_offset_scale: float, **kwargs):
        super().__init__(**kwargs)
        self.settings = {k: v for k, v in locals().items() if k.startswith("gln_")}  # get_config's
        self.widths, self.context_bits = (gln_units,) * gln_layers + (1,), gln_context_bits
        self.epsilon, self.weight_limit, self.lr, self.decay = gln_epsilon, gln_weight_limit, gln_lr, gln_decay
        self.bias_logit, self.input_scale, self.offset_scale = gln_bias_logit, gln_input_scale, gln_offset_scale

    def build(self, input_shape):
        features = int(input_shape[-1])
        # the gating is drawn once (seeded by keras.utils.set_random_seed) and saved with the weights
        self.weights_, self.hyperplanes, self.offsets = [], [], []
        fan_in = features + 1
        for i, width in enumerate(self.widths):
            self.weights_.append(self.add_weight(
                name=f"weights_{i}", shape=(width, 2**self.context_bits, fan_in), trainable=False,
                initializer=keras.initializers.Constant(1.0 / fan_in)))
            self.hyperplanes.append(self.add_weight(
                name=f"hyperplanes_{i}", shape=(features, width * self.context_bits), trainable=False,
                initializer=keras.initializers.RandomNormal(stddev=1.0 / np.sqrt(features))))
            self.offsets.append(self.add_weight(
                name=f"offsets_{i}", shape=(width * self.context_bits,), trainable=False,
                initializer=keras.initializers.RandomNormal(stddev=self.offset_scale)))
            fan_in = width + 1
        self.updates_done = self.add_weight(name="updates_done", shape=(), dtype="int64",
                                            trainable=False, initializer="zeros")

    def _contexts(self, side, layer: int):
        """Context index of every neuron of ``layer`` for each row of ``side``: (n, width) int32."""
        above = tf.cast(side @ self.hyperplanes[layer] > self.offsets[layer], tf.int32)
        above = tf.reshape(above, [-1, self.widths[layer], self.context_bits])
        return tf.reduce_sum(above * (2 ** tf.range(self.context_bits)), axis=-1)

    def _forward(self, features):
        """Per layer: (input logits (n, fan_in), one-hot contexts (n, width, 2**bits), output p (n, width)).

        One matmul with every context's weights, then each neuron's context; a neuron clipped at
        eps or 1 - eps has no gradient there, so its one-hot row is zeroed for the update."""
        side = tf.cast(features, tf.float32)
        limit = float(np.log((1 - self.epsilon) / self.epsilon))
        logits = tf.clip_by_value(self.input_scale * side, -limit, limit)  # logit(sigmoid(scale f))
        trace = []
        for layer, width in enumerate(self.widths):
            inputs = tf.concat([logits, tf.fill([tf.shape(logits)[0], 1], self.bias_logit)], 1)
            contexts = tf.one_hot(self._contexts(side, layer), 2**self.context_bits)
            every = tf.reshape(tf.matmul(inputs, tf.reshape(self.weights_[layer], [-1, inputs.shape[-1]]),
                                         transpose_b=True), [-1, width, 2**self.context_bits])
            chosen = tf.reduce_sum(every * contexts, -1)
            p = tf.sigmoid(tf.clip_by_value(chosen, -limit, limit))
            trace.append((inputs, contexts * tf.cast(tf.abs(chosen) < limit, tf.float32)[..., None], p))
            logits = tf.math.log(p) - tf.math.log1p(-p)
        return trace

    def call(self, features):
        return self._forward(features)[-1][2]

    def hidden(self, features):
        """The outputs of the layer before the last, (n, width): what the last neuron reads."""
        return self._forward(features)[-2][2]

    def learning_rate(self):
        """lr_t = gln_lr / (1 + gln_decay * t), t the updates done so far."""
        return self.lr / (1.0 + self.decay * tf.cast(self.updates_done, tf.float32))

    def local_update(self, features, labels):
        """One step of every neuron on a batch: w_c <- clip(w_c - lr * mean (p - y) logit(p_in)), each
        row's gradient on the weights its context chose. Returns the log-loss before the step."""
        y = tf.reshape(tf.cast(labels, tf.float32), [-1, 1])
        trace = self._forward(features)
        rate = self.learning_rate()
        n = tf.cast(tf.shape(y)[0], tf.float32)
        for layer, (inputs, contexts, p) in enumerate(trace):
            per_context = tf.reshape(contexts * (p - y)[..., None], [tf.shape(y)[0], -1])
            gradient = tf.reshape(tf.matmul(per_context, inputs, transpose_a=True) / n,
                                  self.weights_[layer].shape)
            self.weights_[layer].assign(tf.clip_by_value(
                self.weights_[layer] - rate * gradient, -self.weight_limit, self.weight_limit))
        self.updates_done.assign_add(1)
        out = tf.clip_by_value(trace[-1][2], self.epsilon, 1 - self.epsilon)
        return -tf.reduce_mean(y * tf.math.log(out) + (1 - y) * tf.math.log(1 - out))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1)

    def get_config(self) -> dict:
        return {**super().get_config(), **self.settings}


# ---------------------------------------------------------------------------------------------
# Generators: latent integer z, shape (n, 1) -> output x, shape (n, 1)


def offset_generator(offsets: int, encoding: layers.Layer, per_candidate: bool, body: list) -> tuple:
    """The offset head: x = offsets*z + k, with k the most likely of ``offsets`` choices.

    per_candidate: one shared ``body`` (``body_layers``) scores every choice's encoded candidate;
    otherwise it maps the encoded z to the K logits. The last layer starts at zero: every offset
    is equally likely, and k = 0 gives 2*offsets*z + 1, as prime as random odd integers for a
    power-of-2 ``offsets``. Returns (model, the encoding's features, the logits (n, offsets))."""
    z = keras.Input((1,), dtype="float64", name="latent")
    features = encoding(OffsetCandidates(offsets, name="choices")(z) if per_candidate else z)
    h = features
    for layer in body:
        h = layer(h)
    if per_candidate:
        scores = layers.Dense(1, kernel_initializer="zeros", name="score")(h)
        logits = layers.Reshape((offsets,), name=LOGITS_LAYER)(scores)
    else:
        logits = layers.Dense(offsets, kernel_initializer="zeros", name=LOGITS_LAYER)(h)
    x = OffsetChoice(offsets, name="choice")([z, logits])
    return keras.Model(z, x, name="generator_offset"), features, logits


def body_layers(widths: tuple, activation: str, prefix: str, reader=None, trainable: bool = True) -> list:
    """The ``reader`` (if any), then Dense layers of ``widths`` named prefix_0, prefix_1, ...

    After a reader the first is its periodic readout: sin, kernel from U[-readout_scale, +], biases
    from U[-pi, pi] (SIREN-like: Glorot's scale is too small for a sine to wrap around its sums)."""
    stack = [layers.Dense(w, activation=ACTIVATIONS[activation], name=f"{prefix}_{i}")
             for i, w in enumerate(widths)]
    if reader is not None and widths:  # replaced, not skipped: making it drew seeds, which later seeds follow
        scale = reader.readout_scale
        stack[0] = layers.Dense(widths[0], activation=sine, name=f"{prefix}_0",
                                kernel_initializer=keras.initializers.RandomUniform(-scale, scale),
                                bias_initializer=keras.initializers.RandomUniform(-np.pi, np.pi))
    body = ([reader] if reader is not None else []) + stack
    for layer in body:
        layer.trainable = trainable
    return body


def real_generator(original: bool = False) -> keras.Sequential:
    """The seed's generator: latent z -> real x in [1, OUTPUT_CAP], piecewise linear in z.

    Its output folds into the range with a triangle wave: bounded, but with a slope of +-1
    everywhere, so an output pushed against a bound comes back instead of saturating.
    ``original=True``: the original's form (no biases, raw input, abs output), which can only
    compute G(z) = k*z; for reproduction."""
    init = keras.initializers.HeNormal()
    hidden = [layers.Dense(GENERATOR_WIDTH, activation=layers.LeakyReLU(LEAKY_RELU_SLOPE),
                           use_bias=not original, kernel_initializer=init, name=f"hidden_{i}")
              for i in range(GENERATOR_DEPTH)]
    if original:
        return keras.Sequential(
            [keras.Input(shape=(1,)), *hidden,
             layers.Dense(1, activation="linear", use_bias=False, kernel_initializer=init,
                          name="output"),
             layers.Activation(absolute, name="abs")],
            name="generator_original")
    return keras.Sequential(
        [keras.Input(shape=(1,)),
         layers.Rescaling(1.0 / LATENT_SCALE, name="latent_scaling"),
         *hidden,
         layers.Dense(1, activation=fold, kernel_initializer="glorot_normal", name="unit_output"),
         layers.Rescaling(OUTPUT_CAP - 1.0, offset=1.0, name="output_scaling")],
        name="generator")


# ---------------------------------------------------------------------------------------------
# Discriminators: generator output x, shape (n, 1) -> P(2*round(x)+1 is prime), shape (n, 1)


def encoded_discriminator(encoding: layers.Layer, name: str, widths: tuple,
                          activation: str = "relu", reader: layers.Layer | None = None) -> tuple:
    """The candidate 2*round(x)+1 through ``encoding`` (and ``reader``), an MLP and a sigmoid.

    Returns (model, the encoding's features, the last hidden layer's output or the features).
    """
    x = keras.Input((1,), dtype="float64", name="output")
    features = encoding(x)
    h = features
    for layer in body_layers(widths, activation, "hidden", reader):
        h = layer(h)
    p = layers.Dense(1, activation="sigmoid", name="probability")(h)
    return keras.Model(x, p, name=name), features, h


def recurrent_discriminator(encoding: layers.Layer, units: int) -> tuple:
    """The candidate's binary digits through ``encoding``, read one at a time from the most
    significant by a GRU of ``units`` (a recurrent cell can hold n mod p as an automaton would),
    then a sigmoid. Returns (model, features, hidden): the digits and the GRU's last state."""
    x = keras.Input((1,), dtype="float64", name="output")
    features = encoding(x)
    steps = layers.Reshape((encoding.features, 1), name="digits")(features)
    state = layers.GRU(units, go_backwards=True, name="reader")(steps)  # the digits come LSB first
    p = layers.Dense(1, activation="sigmoid", name="probability")(state)
    return keras.Model(x, p, name="discriminator_recurrent"), features, state


def gln_discriminator(encoding: layers.Layer, settings: dict) -> tuple:
    """The candidate through ``encoding``, then a ``GatedLinearNetwork`` of train.py's gln_*
    ``settings``: (model, features, the GLN)."""
    x = keras.Input((1,), dtype="float64", name="output")
    features = encoding(x)
    gln = GatedLinearNetwork(**settings, name="gln")
    return keras.Model(x, gln(features), name="discriminator_gln"), features, gln


def scalar_discriminator() -> keras.Sequential:
    """The seed's discriminator: x/OUTPUT_CAP as one real, sigmoid layers with L2 and dropout."""
    stack = [keras.Input(shape=(1,)), layers.Rescaling(1.0 / OUTPUT_CAP, name="input_scaling")]
    for i, width in enumerate(SCALAR_WIDTHS):
        stack += [layers.Dense(width, activation="sigmoid", kernel_initializer="glorot_normal",
                               kernel_regularizer=keras.regularizers.L2(DISCRIMINATOR_L2),
                               name=f"hidden_{i}"),
                  layers.Dropout(DROPOUT_RATE, name=f"dropout_{i}")]
    stack.append(layers.Dense(1, activation="sigmoid", kernel_initializer="glorot_normal",
                              name="probability"))
    return keras.Sequential(stack, name="discriminator")


def split(inputs, features, outputs) -> tuple:
    """(encode, head): models with head(encode(x)) == the network, so fixed inputs are encoded once."""
    return keras.Model(inputs, features), keras.Model(features, outputs)


# ---------------------------------------------------------------------------------------------
# Running a network on many inputs


def forward(network, inputs) -> np.ndarray:
    """A network's output (n,) on scalar inputs (n,) or (n, 1), in inference mode, fed as float64
    rows (exact for every integer a generator can emit), FORWARD_CHUNK at a time."""
    rows = np.asarray(inputs, dtype=np.float64).reshape(-1, 1)
    parts = [np.asarray(network(rows[i:i + FORWARD_CHUNK], training=False)).reshape(-1)
             for i in range(0, len(rows), FORWARD_CHUNK)]
    return np.concatenate(parts) if parts else np.zeros(0)
