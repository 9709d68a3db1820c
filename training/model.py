"""The two networks of Optimus: a generator of positive reals and a primality discriminator.

The generator maps a latent integer z to a real x >= 1; the candidate is the odd integer
2*round(x)+1 (``utils.to_odd_integer``, applied outside the networks). The discriminator maps
the same x to P(candidate is prime). Both are plain fully connected ``keras.Sequential`` models,
so a user who loads a saved ``.h5`` gets the whole map, scaling included.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import utils  # noqa: E402

utils.import_quietly("tensorflow", "keras")
import keras  # noqa: E402
from keras import layers  # noqa: E402

# Generator
GENERATOR_DEPTH = 10            # hidden Dense layers
GENERATOR_WIDTH = 100           # units per hidden layer
LEAKY_RELU_SLOPE = 0.3          # negative slope of LeakyReLU
LATENT_SCALE = 1e6              # latent integers are divided by this inside the model (training range)
OUTPUT_CAP = 2.0**24            # largest output x; float32 is exact on integers up to 2**24
NEGATIVE_L2 = 1e-2              # strength of the pull toward large outputs, on x / OUTPUT_CAP
PULL_CAP = 0.5                  # the pull stops at x = PULL_CAP * OUTPUT_CAP

# Discriminator
DISCRIMINATOR_WIDTHS = (1000, 100, 100, 100, 100, 100)  # hidden Dense layers
DROPOUT_RATE = 0.3              # after each hidden layer
DISCRIMINATOR_L2 = 1e-3         # L2 on the kernels


@keras.saving.register_keras_serializable(package="optimus")
def absolute(x):
    """Elementwise |x|: the original generator's output activation."""
    return keras.ops.abs(x)


@keras.saving.register_keras_serializable(package="optimus")
def fold(x):
    """Triangle wave with period 2 and range [0, 1]: a bounded map whose slope is always +-1."""
    return keras.ops.abs(x - 2.0 * keras.ops.round(x / 2.0))


@keras.saving.register_keras_serializable(package="optimus")
class NegativeL2(keras.regularizers.Regularizer):
    """Opposite L2 penalty, -l2 * sum(min(x, cap)**2): rewards large values, up to ``cap``.

    Keras 3 rejects a negative ``L2``, hence this class. Used as an activity regularizer on the
    generator's normalised output, it pushes outputs away from the small, prime-dense integers.
    The cap bounds the pull: past it the penalty is flat, so it cannot drive outputs to inf.
    """

    def __init__(self, l2: float = NEGATIVE_L2, cap: float | None = None):
        if not l2 >= 0:
            raise ValueError(f"NegativeL2 strength must be >= 0, got {l2}")
        self.l2 = float(l2)
        self.cap = None if cap is None else float(cap)

    def __call__(self, x):
        if self.cap is not None:
            x = keras.ops.minimum(x, self.cap)
        return -self.l2 * keras.ops.sum(keras.ops.square(x))

    def get_config(self) -> dict:
        return {"l2": self.l2, "cap": self.cap}


def initialize_generator(original: bool = False, negative_l2: float = NEGATIVE_L2) -> keras.Sequential:
    """Build the generator: latent integer z, shape (batch, 1) -> real x >= 1, shape (batch, 1).

    The default form has biases and a rescaled input, so it is a general piecewise-linear map of z.
    Its output folds into [1, OUTPUT_CAP] with a triangle wave: bounded like a sigmoid, but with a
    slope of +-1 everywhere, so outputs pushed against a bound come back instead of saturating
    where no gradient reaches them. A negative L2 of strength ``negative_l2`` pulls x up, to
    PULL_CAP * OUTPUT_CAP at most.

    ``original=True`` rebuilds the original's form (no biases, raw input, abs output, and no
    regularizer, since the original's never acted). That network is positively homogeneous and
    can only compute G(z) = k*z; it is kept for reproduction only.
    """
    init = keras.initializers.HeNormal()
    hidden = [layers.Dense(GENERATOR_WIDTH, activation=layers.LeakyReLU(LEAKY_RELU_SLOPE),
                           use_bias=not original, kernel_initializer=init)
              for _ in range(GENERATOR_DEPTH)]
    if original:
        return keras.Sequential(
            [keras.Input(shape=(1,)), *hidden,
             layers.Dense(1, activation="linear", use_bias=False, kernel_initializer=init),
             layers.Activation(absolute, name="abs")],
            name="generator_original")
    return keras.Sequential(
        [keras.Input(shape=(1,)),
         layers.Rescaling(1.0 / LATENT_SCALE, name="latent_scaling"),
         *hidden,
         layers.Dense(1, activation=fold, kernel_initializer="glorot_normal",
                      activity_regularizer=NegativeL2(negative_l2, cap=PULL_CAP),
                      name="unit_output"),
         layers.Rescaling(OUTPUT_CAP - 1.0, offset=1.0, name="output_scaling")],
        name="generator")


def initialize_discriminator() -> keras.Sequential:
    """Build the discriminator: generator output x, shape (batch, 1) -> P(2*round(x)+1 is prime)."""
    stack = [keras.Input(shape=(1,)), layers.Rescaling(1.0 / OUTPUT_CAP, name="input_scaling")]
    for width in DISCRIMINATOR_WIDTHS:
        stack += [layers.Dense(width, activation="sigmoid", kernel_initializer="glorot_normal",
                               kernel_regularizer=keras.regularizers.L2(DISCRIMINATOR_L2)),
                  layers.Dropout(DROPOUT_RATE)]
    stack.append(layers.Dense(1, activation="sigmoid", kernel_initializer="glorot_normal"))
    return keras.Sequential(stack, name="discriminator")
