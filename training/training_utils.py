"""Training pieces of Optimus: labels, undersampling, losses and rewards, EWC, the compiled steps.

One training batch (see ``train.py``): draw latent integers, take the generator's candidates for
them, label those with the exact primality oracle, undersample the non-primes into the
discriminator's batch, train both networks, then compute each network's Fisher diagonal and keep
its weights as the EWC anchor theta*, so that the next batch's losses carry the EWC penalty.

How the generator learns depends on its head (``model.offset_policy`` tells which):
- offset head, score-function gradient: D trains ``steps`` times on its labelled batch, then G
  takes ``generator_steps`` REINFORCE steps: it samples offsets for every latent of the batch and
  is rewarded by D's belief that the candidates are prime, less the batch mean.
- real head, pathwise gradient (the seed's): each of ``steps`` steps updates G through D's input
  gradient and D on G's current outputs, whose labels are recomputed after every step.
"""
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

import utils
from training import model as model_lib

# Losses and rewards
FOCAL_ALPHA = 0.65              # class balancing of the discriminator's focal loss (weight of primes)
FOCAL_GAMMA = 2.0               # focusing parameter of every focal term
LOG_EPSILON = 1e-7              # probabilities are clipped to [eps, 1-eps] before a log
PULL_CAP = 0.5                  # the negative L2 stops pulling at x = PULL_CAP * OUTPUT_CAP
DISCRIMINATOR_LOSSES = ("focal", "bce")
DISCRIMINATOR_FISHERS = ("empirical", "model")
REWARDS = {  # reward of a sampled candidate, from D's belief p that it is prime
    "belief": lambda p: p,
    "log": lambda p: tf.math.log(p),
    "focal": lambda p: tf.pow(1.0 - p, FOCAL_GAMMA) * tf.math.log(p),  # minus the focal loss
    "constant": lambda p: tf.zeros_like(p),  # the negative control: no signal at all
}

def label(x: np.ndarray) -> np.ndarray:
    """Exact primality of the candidates 2*round(x)+1, as float32 0/1 of the shape of x."""
    return utils.is_prime(utils.to_odd_integer(x)).astype(np.float32)


def sampling(labels: np.ndarray, wanted_prime_ratio: float, minimum_batch_size: int,
             rng: np.random.Generator) -> np.ndarray | None:
    """Undersample non-primes so that primes make up ``wanted_prime_ratio`` of the batch.

    Non-primes are dropped at random, but the batch never shrinks below ``minimum_batch_size``
    (or the whole batch, if smaller). Returns the sorted kept indices into ``labels`` (shape
    (n,)), or None when the batch holds no prime and must be skipped.
    """
    labels = np.asarray(labels).reshape(-1)
    primes = np.flatnonzero(labels > 0.5)
    others = np.flatnonzero(labels <= 0.5)
    if primes.size == 0:
        return None
    wanted_others = int(np.floor(primes.size * (1.0 - wanted_prime_ratio) / wanted_prime_ratio))
    keep_others = min(others.size, max(wanted_others, minimum_batch_size - primes.size))
    kept = rng.choice(others, size=keep_others, replace=False) if keep_others else others[:0]
    return np.sort(np.concatenate([primes, kept]))


# ---------------------------------------------------------------------------------------------
# Losses, EWC and the Fisher diagonal


def discriminator_base_loss(name: str) -> keras.losses.Loss:
    """The discriminator's base loss: "focal" (class-balanced, as the seed) or "bce"."""
    if name == "focal":
        return keras.losses.BinaryFocalCrossentropy(
            apply_class_balancing=True, alpha=FOCAL_ALPHA, gamma=FOCAL_GAMMA)
    if name == "bce":
        return keras.losses.BinaryCrossentropy()
    raise ValueError(f"discriminator loss must be one of {DISCRIMINATOR_LOSSES}, got {name!r}")


def negative_l2(x, strength: float) -> tf.Tensor:
    """The seed's pull toward large outputs: -strength * mean(min(x/OUTPUT_CAP, PULL_CAP)**2).

    Computed here, not as a Keras activity regularizer, whose scaling changed between Keras 3
    releases (newer ones divide by the batch size). The cap stops the pull at half the range.
    """
    u = tf.minimum(tf.cast(x, tf.float32) / model_lib.OUTPUT_CAP, PULL_CAP)
    return -strength * tf.reduce_mean(tf.square(u))


def ewc_penalty(weights, fisher, anchor, lambda_) -> tf.Tensor:
    """EWC penalty lambda_/2 * sum_i F_i (theta_i - theta*_i)**2 over lists of matching tensors."""
    terms = [tf.reduce_sum(f * tf.square(w - a)) for w, f, a in zip(weights, fisher, anchor)]
    return 0.5 * lambda_ * tf.add_n(terms) if terms else tf.constant(0.0)


def _clipped(p) -> tf.Tensor:
    return tf.clip_by_value(p, LOG_EPSILON, 1.0 - LOG_EPSILON)


def fisher_diagonal(variables, log_prob, inputs: tuple, weights) -> list:
    """Weighted sum over samples i of (d log_prob(sample i) / d theta)**2, per variable.

    log_prob(*batch) returns the (m,) log-probabilities of a batch; inputs are tensors whose
    first axis runs over the m samples; weights (m,) float32. An expectation over outcomes (a
    label, an offset) is a set of rows with the outcome's probability as weight. Per-sample
    gradients come from one vectorized map over batches of one, not from a Python loop, and
    cost O(m), not O(m**2) as a full Jacobian's would. Returns one tensor per variable.
    """
    def squares(sample):
        with tf.GradientTape() as tape:
            value = tf.reduce_sum(log_prob(*[t[None] for t in sample]))
        grads = tape.gradient(value, variables, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return [tf.square(g) for g in grads]
    if not variables:  # a network that learns by its own rule (a GLN) has none
        return []
    per_sample = tf.vectorized_map(squares, tuple(inputs))
    return [tf.tensordot(weights, s, axes=1) for s in per_sample]


@dataclass
class EWC:
    """Online EWC state of one network: Fisher diagonal F and anchor weights theta*.

    Both are non-trainable variables, so the compiled step reads the current values without
    retracing when they change.
    """
    fisher: list
    anchor: list

    @classmethod
    def zeros(cls, network) -> "EWC":
        """No consolidation yet: F = 0 and theta* = the current weights."""
        return cls([tf.Variable(tf.zeros_like(w), trainable=False) for w in network.trainable_weights],
                   [tf.Variable(w, trainable=False) for w in network.trainable_weights])

    def consolidate(self, network, new_fisher, fisher_decay: float) -> None:
        """F <- fisher_decay * F + F_new, and theta* <- the network's current weights."""
        for f, new in zip(self.fisher, new_fisher):
            f.assign(fisher_decay * f + new)
        self.reset_anchor(network)

    def reset_anchor(self, network) -> None:
        """theta* <- the network's current weights."""
        for a, w in zip(self.anchor, network.trainable_weights):
            a.assign(w)

    def penalty(self, network, lambda_: float) -> tf.Tensor:
        """lambda_/2 * sum F (theta - theta*)**2 for ``network``'s current weights."""
        return ewc_penalty(network.trainable_weights, self.fisher, self.anchor, lambda_)

    def flat_fisher(self) -> np.ndarray:
        """The Fisher diagonal as one float32 vector, in trainable-weight order."""
        return np.concatenate([np.asarray(f).reshape(-1) for f in self.fisher] + [np.zeros(0)]).astype(np.float32)

    def set_flat_fisher(self, flat: np.ndarray) -> None:
        """Inverse of ``flat_fisher``; the length must match."""
        sizes = [int(np.prod(f.shape)) for f in self.fisher]
        if flat.shape != (sum(sizes),):
            raise ValueError(f"expected {sum(sizes)} values, got shape {flat.shape}")
        for f, part in zip(self.fisher, np.split(flat, np.cumsum(sizes)[:-1])):
            f.assign(part.reshape(f.shape))


# ---------------------------------------------------------------------------------------------
# The training state


@dataclass
class Settings:
    """The constants of train.py that the compiled steps read (see train.py for their meaning)."""
    lambda_: float = 1.0
    steps: int = 75
    generator_steps: int = 5
    discriminator_loss: str = "focal"
    discriminator_fisher: str = "empirical"
    reward: str = "belief"
    negative_l2: float = 0.01
    seed: int = 0

    @classmethod
    def from_config(cls, config: dict) -> "Settings":
        return cls(**{k: config[k] for k in cls.__dataclass_fields__})


@dataclass
class Trainer:
    """Everything one training run updates: both networks, their optimizers and EWC states."""
    generator: keras.Model
    discriminator: keras.Model
    generator_optimizer: keras.optimizers.Optimizer
    discriminator_optimizer: keras.optimizers.Optimizer
    ewc_generator: EWC
    ewc_discriminator: EWC
    settings: Settings
    policy: keras.Model | None = None
    _compiled: dict = field(default_factory=dict, repr=False)

    @classmethod
    def create(cls, generator, discriminator, lr: float, settings: Settings) -> "Trainer":
        """Fresh Adam optimizers (built, so their state can be saved at once) and zero EWC."""
        optimizers = []
        for network in (generator, discriminator):
            optimizer = keras.optimizers.Adam(learning_rate=lr)
            optimizer.build(network.trainable_variables)
            optimizers.append(optimizer)
        return cls(generator, discriminator, *optimizers, EWC.zeros(generator),
                   EWC.zeros(discriminator), settings, model_lib.offset_policy(generator))

    def compiled(self, name: str, build):
        """The compiled function ``name``, built by ``build(self)`` on first use."""
        if name not in self._compiled:
            self._compiled[name] = build(self)
        return self._compiled[name]

    @property
    def offsets(self) -> int:
        """The offset head's number of choices (the generator must have one)."""
        return self.generator.get_layer("choice").offsets

    def batch_seed(self, batch: int) -> tf.Tensor:
        """Seed of ``batch``'s offset sampling; each draw folds in its own number (``draw_seed``)."""
        return tf.constant([self.settings.seed, batch], tf.int64)


def draw_seed(batch_seed, draw) -> tf.Tensor:
    """The seed of one draw of offsets in a batch: 0 for the training candidates, 1 + i for the
    generator's step i. Derived from the batch number alone, so a resumed run draws the same."""
    return tf.random.experimental.stateless_fold_in(batch_seed, tf.cast(draw, tf.int64))


# ---------------------------------------------------------------------------------------------
# Discriminator updates: Adam on its loss, or the model's own rule when it has one


def _discriminator_update(trainer: Trainer) -> tuple:
    """(encode, update): update(encode(x), labels) -> loss is one update of D on a labelled batch.

    A batch that stays fixed over several updates is encoded once (``model.split_encoding``).
    """
    d, s = trainer.discriminator, trainer.settings
    encode, head = model_lib.split_encoding(d)
    rule = [layer.local_update for layer in d.layers if hasattr(layer, "local_update")]
    if rule:  # a network with its own update (a GLN): the step calls it, on the encoded inputs
        return encode, rule[0]
    base = discriminator_base_loss(s.discriminator_loss)
    ewc, optimizer = trainer.ewc_discriminator, trainer.discriminator_optimizer

    def update(inputs, labels):
        with tf.GradientTape() as tape:
            p = head(inputs, training=True)
            loss = base(labels, p) + ewc.penalty(d, s.lambda_)
            if d.losses:  # the seed's L2 on the scalar discriminator's kernels
                loss += tf.add_n(d.losses)
        optimizer.apply_gradients(zip(tape.gradient(loss, d.trainable_weights), d.trainable_weights))
        return loss
    return encode, update


# ---------------------------------------------------------------------------------------------
# Offset head: sampling, the two phases of a batch


def _offset_log_probs(trainer: Trainer, z):
    return tf.nn.log_softmax(trainer.policy(z, training=False), axis=-1)


def _build_sampler(trainer: Trainer):
    @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.float64), tf.TensorSpec([2], tf.int64)])
    def sample(z, batch_seed):
        """k ~ pi(k | z) per row; returns the candidates x = offsets*z + k, shape (n, 1) float64."""
        k = tf.random.stateless_categorical(trainer.policy(z, training=False), 1,
                                            seed=draw_seed(batch_seed, 0))
        return trainer.offsets * z + tf.cast(k, tf.float64)
    return sample


def _build_discriminator_phase(trainer: Trainer):
    (encode, update), steps = _discriminator_update(trainer), trainer.settings.steps

    @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.float64), tf.TensorSpec([None, 1], tf.float32)])
    def phase(x, labels):
        """``steps`` updates of D on one labelled batch; returns the losses, shape (steps,)."""
        inputs = encode(x)
        losses = tf.TensorArray(tf.float32, size=steps)
        for i in tf.range(steps):
            losses = losses.write(i, update(inputs, labels))
        return losses.stack()
    return phase


def _build_generator_phase(trainer: Trainer):
    g, d, s = trainer.generator, trainer.discriminator, trainer.settings
    reward_of, optimizer, ewc = REWARDS[s.reward], trainer.generator_optimizer, trainer.ewc_generator
    steps = s.generator_steps
    encode, head = model_lib.split_encoding(trainer.policy)

    @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.float64), tf.TensorSpec([2], tf.int64)])
    def phase(z, batch_seed):
        """``generator_steps`` REINFORCE updates on latents z; returns losses and mean beliefs."""
        inputs = encode(z)  # the same latents at every step: encode them once
        losses = tf.TensorArray(tf.float32, size=steps)
        beliefs = tf.TensorArray(tf.float32, size=steps)
        for i in tf.range(steps):
            with tf.GradientTape() as tape:
                logits = head(inputs, training=True)
                k = tf.random.stateless_categorical(logits, 1, seed=draw_seed(batch_seed, 1 + i))
                x = trainer.offsets * z + tf.cast(k, tf.float64)
                p = _clipped(tf.reshape(d(x, training=False), [-1]))
                reward = reward_of(p)
                advantage = tf.stop_gradient(reward - tf.reduce_mean(reward))
                log_pi = tf.gather(tf.nn.log_softmax(logits), k[:, 0], batch_dims=1)
                loss = -tf.reduce_mean(advantage * log_pi) + ewc.penalty(g, s.lambda_)
            optimizer.apply_gradients(zip(tape.gradient(loss, g.trainable_weights), g.trainable_weights))
            losses = losses.write(i, loss)
            beliefs = beliefs.write(i, tf.reduce_mean(p))
        return losses.stack(), beliefs.stack()
    return phase


def sample_candidates(trainer: Trainer, z: np.ndarray, batch: int) -> np.ndarray:
    """The generator's training candidates for latents z: sampled offsets, or the real head's G(z).

    Returns float64 x of shape (n,), checked like ``generate``.
    """
    if trainer.policy is None:
        return model_lib.generate(trainer.generator, z)
    sample = trainer.compiled("sample", _build_sampler)
    z_t = tf.constant(np.asarray(z, np.float64).reshape(-1, 1))
    return model_lib.check_outputs(sample(z_t, trainer.batch_seed(batch)).numpy())


# ---------------------------------------------------------------------------------------------
# Real head: the seed's pathwise step


def _build_pathwise_step(trainer: Trainer):
    g, d, s = trainer.generator, trainer.discriminator, trainer.settings
    g_base = keras.losses.BinaryFocalCrossentropy(gamma=FOCAL_GAMMA)
    (d_encode, d_update), optimizer, ewc = (_discriminator_update(trainer), trainer.generator_optimizer,
                                             trainer.ewc_generator)

    @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.float32), tf.TensorSpec([None, 1], tf.float32)])
    def step(z, labels):
        """One update of both networks. z: (n, 1) latents; labels: (n, 1) primality of G(z)."""
        with tf.GradientTape() as tape:
            x = g(z, training=True)
            belief = d(x, training=False)  # the generator's gradient flows through D's input
            loss = (g_base(tf.ones_like(belief), belief) + negative_l2(x, s.negative_l2)
                    + ewc.penalty(g, s.lambda_))
        optimizer.apply_gradients(zip(tape.gradient(loss, g.trainable_weights), g.trainable_weights))
        d_loss = d_update(d_encode(tf.stop_gradient(x)), labels)
        return loss, d_loss, g(z, training=False)
    return step


def _train_pathwise(trainer: Trainer, z: np.ndarray, labels: np.ndarray) -> dict:
    step = trainer.compiled("pathwise_step", _build_pathwise_step)
    z_t = tf.constant(np.asarray(z, np.float32).reshape(-1, 1))
    y = np.asarray(labels, np.float32).reshape(-1, 1)
    logs = {"generator_loss": [], "discriminator_loss": [], "prime_ratio": []}
    for _ in range(trainer.settings.steps):
        g_loss, d_loss, x_next = step(z_t, tf.constant(y))
        y = label(model_lib.check_outputs(x_next.numpy())).reshape(-1, 1)
        logs["generator_loss"].append(float(g_loss))
        logs["discriminator_loss"].append(float(d_loss))
        logs["prime_ratio"].append(float(y.mean()))
    return {k: np.asarray(v) for k, v in logs.items()}


# ---------------------------------------------------------------------------------------------
# One batch, and the Fisher that follows it


def train_batch(trainer: Trainer, z: np.ndarray, x: np.ndarray, labels: np.ndarray,
                kept: np.ndarray, batch: int) -> dict:
    """Train both networks on one batch.

    z: (n,) latents; x: (n,) their training candidates (``sample_candidates``); labels: (n,)
    primality of x; kept: indices of the discriminator's undersampled batch; batch: the batch
    number, which seeds the offset sampling. Returns per-step numpy arrays: discriminator_loss,
    generator_loss, and prime_ratio (real head: share of primes after each step) or belief
    (offset head: D's mean belief in the sampled candidates at each generator step).
    """
    if trainer.policy is None:
        return _train_pathwise(trainer, z[kept], labels[kept])
    d_phase = trainer.compiled("discriminator_phase", _build_discriminator_phase)
    g_phase = trainer.compiled("generator_phase", _build_generator_phase)
    d_losses = d_phase(tf.constant(x[kept].reshape(-1, 1)), tf.constant(labels[kept].reshape(-1, 1)))
    g_losses, beliefs = g_phase(tf.constant(np.asarray(z, np.float64).reshape(-1, 1)),
                                trainer.batch_seed(batch))
    return {"discriminator_loss": d_losses.numpy(), "generator_loss": g_losses.numpy(),
            "belief": beliefs.numpy()}


def _build_fisher_fns(trainer: Trainer) -> dict:
    g, d, s = trainer.generator, trainer.discriminator, trainer.settings
    g_vars, d_vars = g.trainable_variables, d.trainable_variables
    spec64, spec32 = tf.TensorSpec([None, 1], tf.float64), tf.TensorSpec([None, 1], tf.float32)

    def label_log_prob(x, y):  # log P(y | x) under D
        p = _clipped(tf.reshape(d(x, training=False), [-1]))
        y = tf.reshape(y, [-1])
        return y * tf.math.log(p) + (1.0 - y) * tf.math.log(1.0 - p)

    @tf.function(input_signature=[spec64, spec32])
    def discriminator(x, y):
        """D's Fisher on candidates x (labels y, used only by the empirical Fisher)."""
        n = tf.cast(tf.shape(x)[0], tf.float32)
        if s.discriminator_fisher == "empirical":
            return fisher_diagonal(d_vars, label_log_prob, (x, y), tf.fill([tf.shape(x)[0]], 1.0 / n))
        # model Fisher: E over y ~ Bernoulli(D(x)); the same as p(1-p) (d logit/d theta)**2
        p = tf.reshape(d(x, training=False), [-1])
        xs = tf.concat([x, x], 0)
        ys = tf.concat([tf.ones_like(y), tf.zeros_like(y)], 0)
        return fisher_diagonal(d_vars, label_log_prob, (xs, ys), tf.concat([p, 1.0 - p], 0) / n)

    if trainer.policy is None:
        @tf.function(input_signature=[spec64])
        def generator(z):
            """The seed's: per-sample log D(G(z))."""
            n = tf.cast(tf.shape(z)[0], tf.float32)
            log_belief = lambda z: tf.math.log(_clipped(tf.reshape(d(g(z, training=False)), [-1])))  # noqa: E731
            return fisher_diagonal(g_vars, log_belief, (tf.cast(z, tf.float32),),
                                   tf.fill([tf.shape(z)[0]], 1.0 / n))
    else:
        offsets = trainer.offsets

        @tf.function(input_signature=[spec64])
        def generator(z):
            """The policy's Fisher, E over k ~ pi(k|z) of (d log pi(k|z)/d theta)**2, exactly over k."""
            n = tf.shape(z)[0]
            pi = tf.exp(_offset_log_probs(trainer, z))
            zs = tf.repeat(z, offsets, axis=0)
            ks = tf.tile(tf.range(offsets), [n])
            log_pi = lambda z, k: tf.gather(_offset_log_probs(trainer, z), k, batch_dims=1)  # noqa: E731
            return fisher_diagonal(g_vars, log_pi, (zs, ks),
                                   tf.reshape(pi, [-1]) / tf.cast(n, tf.float32))
    return {"generator": generator, "discriminator": discriminator}


def compute_fisher(trainer: Trainer, z: np.ndarray, x: np.ndarray, labels: np.ndarray,
                   fisher_decay: float) -> None:
    """Fisher diagonal of both networks on a sample of the batch, then online EWC consolidation.

    z: (m,) latents (the generator's Fisher); x, labels: (m,) candidates that D trained on and
    their primality (D's Fisher). Then F <- fisher_decay * F + F_new and theta* <- the weights.
    """
    if trainer.policy is None:  # the real head's D trained on its moving outputs: take them now
        x = model_lib.generate(trainer.generator, z)
        labels = label(x)
    fns = trainer.compiled("fisher", _build_fisher_fns)
    new_g = fns["generator"](tf.constant(np.asarray(z, np.float64).reshape(-1, 1)))
    new_d = fns["discriminator"](tf.constant(np.asarray(x, np.float64).reshape(-1, 1)),
                                 tf.constant(np.asarray(labels, np.float32).reshape(-1, 1)))
    trainer.ewc_generator.consolidate(trainer.generator, new_g, fisher_decay)
    trainer.ewc_discriminator.consolidate(trainer.discriminator, new_d, fisher_decay)
