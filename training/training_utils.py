"""Training pieces of Optimus: labels, undersampling, losses and rewards, EWC, the steps.

One batch (``BATCHES`` gives each head's step): the candidates, labelled by the exact oracle; the
non-primes undersampled into D's batch; both networks trained; then each network's Fisher
diagonal estimated and, by train.py's ewc_anchor, the EWC anchor theta* of the next batch's penalty
moved (by default to the weights, the seed's per-batch EWC). The methods:
- score function (``score_function_batch``, the offset head): D trains ``steps`` times on its
  batch, then G takes ``generator_steps`` policy-gradient steps on every latent, by default the
  exact expectation over every offset of the reward log D(x) - log pi(k|z) ("sampled": REINFORCE).
- pathwise (``pathwise_batch``, the seed's real head): each of ``steps`` steps updates G through
  D's input gradient and D on G's current outputs, relabelled after every step.
"""
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import tensorflow as tf

import utils
from training import oracle
from training import model as model_lib

FISHER_BYTES = 1 << 28          # per-sample gradients of one Fisher chunk, at most (256 MiB)
DISCRIMINATOR_DRAWS = 2**32     # draw numbers of D's mini-batches start here: far from G's


def label(x: np.ndarray) -> np.ndarray:
    """Exact primality of the candidates 2*round(x)+1, as float32 0/1 of the shape of x."""
    return oracle.is_prime(utils.to_odd_integer(x)).astype(np.float32)


def undersample(labels: np.ndarray, wanted_prime_ratio: float, minimum_batch_size: int,
             rng: np.random.Generator) -> np.ndarray | None:
    """Drop random non-primes until primes make up ``wanted_prime_ratio`` of the batch, keeping at
    least ``minimum_batch_size`` rows (or the whole batch, if smaller). Returns the sorted kept
    indices, or None if no prime."""
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
# Losses, rewards, EWC and the Fisher diagonal


def negative_l2(x, strength: float, cap: float) -> tf.Tensor:
    """The seed's pull toward large outputs: -strength * mean(min(x/OUTPUT_CAP, cap)**2) (not an
    activity regularizer: their scaling changed between Keras 3 releases)."""
    u = tf.minimum(tf.cast(x, tf.float32) / model_lib.OUTPUT_CAP, cap)
    return -strength * tf.reduce_mean(tf.square(u))


def ewc_penalty(weights, fisher, anchor, lambda_) -> tf.Tensor:
    """EWC penalty lambda_/2 * sum_i F_i (theta_i - theta*_i)**2 over lists of matching tensors."""
    terms = [tf.reduce_sum(f * tf.square(w - a)) for w, f, a in zip(weights, fisher, anchor)]
    return 0.5 * lambda_ * tf.add_n(terms) if terms else tf.constant(0.0)


def clipped(p) -> tf.Tensor:
    """p clipped to [utils.LOG_EPSILON, 1 - utils.LOG_EPSILON], for a log."""
    return tf.clip_by_value(p, utils.LOG_EPSILON, 1.0 - utils.LOG_EPSILON)


# The rewards (p: D's clipped belief, log_pi: log pi(k | z)) and D's losses; REWARDS and
# DISCRIMINATOR_LOSSES below name them, the registry's tables of the same names document them, and
# registry.build_trainer binds the train.py constants an entry reads as its keyword arguments
def belief_reward(p, log_pi):
    return p


def log_reward(p, log_pi):
    return tf.math.log(p)


def focal_reward(p, log_pi, focal_gamma: float):
    return tf.pow(1.0 - p, focal_gamma) * tf.math.log(p)


def constant_reward(p, log_pi):
    return tf.zeros_like(p)


def entropy_reward(p, log_pi):
    return tf.math.log(p) - log_pi


def focal_loss(focal_alpha: float, focal_gamma: float):
    return keras.losses.BinaryFocalCrossentropy(apply_class_balancing=True, alpha=focal_alpha,
                                                gamma=focal_gamma)


def bce_loss():
    return keras.losses.BinaryCrossentropy()


REWARDS = {"belief": belief_reward, "log": log_reward, "focal": focal_reward, "constant": constant_reward,
           "entropy": entropy_reward}
DISCRIMINATOR_LOSSES = {"focal": focal_loss, "bce": bce_loss}


def fisher_diagonal(variables, log_prob, inputs: tuple, weights) -> list:
    """Weighted sum over samples i of (d log_prob(sample i) / d theta)**2, one tensor per variable.

    log_prob(*batch) -> the (m,) log-probabilities of the m rows of ``inputs``; weights (m,) float32.
    Per-sample gradients come from one vectorized map: O(m), not a full Jacobian's O(m**2)."""
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
    """EWC state of one network, as non-trainable variables (the compiled steps read their new
    values without retracing): the penalty's Fisher diagonal F and anchor weights theta*, and the
    online estimate of the Fisher, refreshed after every batch, that F takes when the anchor moves."""
    fisher: list
    anchor: list
    estimate: list

    @classmethod
    def zeros(cls, network) -> "EWC":
        """No consolidation yet: F = 0 and theta* = the current weights."""
        def copies(fill):
            return [tf.Variable(fill(w), trainable=False) for w in network.trainable_weights]
        return cls(copies(tf.zeros_like), copies(tf.identity), copies(tf.zeros_like))

    def consolidate(self, network, new_fisher, fisher_decay: float, anchor: str, anchor_decay: float) -> None:
        """The estimate <- fisher_decay * estimate + F_new, then the ``anchor`` mode's update."""
        for e, new in zip(self.estimate, new_fisher):
            e.assign(fisher_decay * e + new)
        ANCHORS[anchor](self, network, anchor_decay)

    def hold(self, network) -> None:
        """F <- the estimate and theta* <- the network's current weights."""
        for f, e in zip(self.fisher, self.estimate):
            f.assign(e)
        for a, w in zip(self.anchor, network.trainable_weights):
            a.assign(w)

    def penalty(self, network, lambda_: float) -> tf.Tensor:
        """lambda_/2 * sum F (theta - theta*)**2 for ``network``'s current weights."""
        return ewc_penalty(network.trainable_weights, self.fisher, self.anchor, lambda_)

    def flat(self, name: str = "fisher") -> np.ndarray:
        """The ``name`` variables ("fisher", "anchor" or "estimate") as one float32 vector, in
        trainable-weight order."""
        return np.concatenate([np.asarray(v).reshape(-1) for v in getattr(self, name)]
                              + [np.zeros(0)]).astype(np.float32)

    def set_flat(self, vector: np.ndarray, name: str = "fisher") -> None:
        """Inverse of ``flat``; ValueError unless the length matches."""
        variables = getattr(self, name)
        sizes = [int(np.prod(v.shape)) for v in variables]
        if vector.shape != (sum(sizes),):
            raise ValueError(f"expected {sum(sizes)} values, got shape {vector.shape}")
        for v, part in zip(variables, np.split(vector, np.cumsum(sizes)[:-1])):
            v.assign(part.reshape(v.shape))


def _anchor_average(ewc: EWC, network, decay: float) -> None:
    """F <- the estimate, theta* <- decay * theta* + (1 - decay) * the current weights."""
    for f, e in zip(ewc.fisher, ewc.estimate):
        f.assign(e)
    for a, w in zip(ewc.anchor, network.trainable_weights):
        a.assign(decay * a + (1 - decay) * w)


# How the anchor moves after each batch (train.py's ewc_anchor). "switch" holds F and theta* from
# one switch of the stream's range to the next: train.start calls EWC.hold when the range changes.
ANCHORS = {"batch": lambda ewc, network, decay: ewc.hold(network),
           "switch": lambda ewc, network, decay: None,
           "average": _anchor_average}


# ---------------------------------------------------------------------------------------------
# The training state


@dataclass
class Trainer:
    """Everything one training run updates, and the parts of its method (``registry.build_trainer``):
    the networks (each owns its Keras ``model``), train.py's constants, and from this module's
    tables reward(p, log_pi), objective(logits, beliefs, reward, seed), D's pool(head, z, x, labels)
    -> (candidates, labels, latent of each), loss() -> a Keras loss, and D's fisher(d, x, y) -> its
    terms, with fisher_rows per-sample gradients per candidate."""
    generator: Any
    discriminator: Any
    generator_optimizer: keras.optimizers.Optimizer
    discriminator_optimizer: keras.optimizers.Optimizer
    ewc_generator: EWC
    ewc_discriminator: EWC
    config: dict
    reward: Any
    objective: Any
    pool: Any
    loss: Any
    fisher: Any
    fisher_rows: int
    _compiled: dict = field(default_factory=dict, repr=False)

    @classmethod
    def create(cls, generator, discriminator, config: dict, **parts) -> "Trainer":
        """Fresh Adam optimizers (built, so their state can be saved at once) and zero EWC."""
        optimizers = []
        for network in (generator.model, discriminator.model):
            optimizer = keras.optimizers.Adam(learning_rate=config["lr"])
            optimizer.build(network.trainable_variables)
            optimizers.append(optimizer)
        return cls(generator, discriminator, *optimizers, EWC.zeros(generator.model),
                   EWC.zeros(discriminator.model), config, **parts)

    def compiled(self, name: str, build):
        """The compiled function ``name``, built by ``build(self)`` on first use."""
        if name not in self._compiled:
            self._compiled[name] = build(self)
        return self._compiled[name]

    def batch_seed(self, batch: int) -> tf.Tensor:
        """Seed of ``batch``'s offset sampling; each draw folds in its own number (``draw_seed``)."""
        return tf.constant([self.config["seed"], batch], tf.int64)


def draw_seed(batch_seed, draw) -> tf.Tensor:
    """The seed of draw 0 (the training candidates), 1 + i (G's step i) or DISCRIMINATOR_DRAWS + i
    (D's mini-batch i) of a batch: from the batch number alone, so a resumed run draws the same."""
    return tf.random.experimental.stateless_fold_in(batch_seed, tf.cast(draw, tf.int64))


# ---------------------------------------------------------------------------------------------
# The two updates, each with its GradientTape: a batch runs D's, then G's (an offset head's), then
# ``consolidate`` (EWC); the phases below loop them, compiled


def discriminator_step(trainer: Trainer, inputs, labels):
    """One update of D on a labelled batch of encoded candidates; returns its loss. By its own
    ``local_update`` if it has one (the GLN), else Adam on its loss, the EWC penalty and Keras's
    ``model.losses`` (the seed's L2)."""
    part = trainer.discriminator
    if part.local_update is not None:
        return part.local_update(inputs, labels)
    d = part.model
    with tf.GradientTape() as tape:
        p = part.head(inputs, training=True)
        loss = trainer.loss()(labels, p) + trainer.ewc_discriminator.penalty(d, trainer.config["lambda_"])
        loss += sum(d.losses, tf.constant(0.0))
    trainer.discriminator_optimizer.apply_gradients(zip(tape.gradient(loss, d.trainable_weights), d.trainable_weights))
    return loss


def generator_step(trainer: Trainer, inputs, beliefs, seed) -> tuple:
    """One policy-gradient update of an offset head on its encoded latents, D's beliefs (n, K) in
    every offset's candidate fixed: the objective (policy_gradient) of the reward (reward), less
    the EWC penalty. Returns (loss, D's mean belief in the chosen candidates, their mean reward,
    the policy's mean entropy)."""
    g = trainer.generator
    with tf.GradientTape() as tape:
        logits = g.score(inputs, training=True)
        objective, belief, mean_reward = trainer.objective(logits, beliefs, trainer.reward, seed)
        loss = -objective + trainer.ewc_generator.penalty(g.model, trainer.config["lambda_"])
    weights = g.model.trainable_weights
    trainer.generator_optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights))
    log_pi = tf.nn.log_softmax(logits)
    return loss, belief, mean_reward, -tf.reduce_mean(tf.reduce_sum(tf.exp(log_pi) * log_pi, -1))


def _build_discriminator_phase(trainer: Trainer):
    steps, size = trainer.config["steps"], trainer.config["discriminator_minibatch"]

    @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.float64), tf.TensorSpec([None, 1], tf.float32),
                                  tf.TensorSpec([2], tf.int64)])
    def phase(x, labels, batch_seed):
        """``steps`` updates of D on all of one labelled batch or on a fresh mini-batch of ``size``
        rows of it each; returns the losses, shape (steps,)."""
        inputs = trainer.discriminator.encode(x)  # fixed over the steps: encoded once
        losses = tf.TensorArray(tf.float32, size=steps)
        for i in tf.range(steps):
            if size:
                rows = tf.random.stateless_uniform([size], draw_seed(batch_seed, DISCRIMINATOR_DRAWS + i),
                                                   0, tf.shape(x)[0], dtype=tf.int32)
                losses = losses.write(i, discriminator_step(trainer, tf.gather(inputs, rows), tf.gather(labels, rows)))
            else:
                losses = losses.write(i, discriminator_step(trainer, inputs, labels))
        return losses.stack()
    return phase


# ---------------------------------------------------------------------------------------------
# The score-function method (a policy over offsets: ``networks.OffsetHead``)


def offset_log_probs(generator, z):
    """log pi(k | z) of an offset head for latents z (n, 1): shape (n, offsets)."""
    return tf.nn.log_softmax(generator.policy(z, training=False), axis=-1)


def _build_sampler(trainer: Trainer):
    g = trainer.generator

    @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.float64), tf.TensorSpec([2], tf.int64)])
    def sample(z, batch_seed):
        """k ~ pi(k | z) per row; returns the candidates x = offsets*z + k, shape (n, 1) float64."""
        k = tf.random.stateless_categorical(g.policy(z, training=False), 1,
                                            seed=draw_seed(batch_seed, 0))
        return g.offsets * z + tf.cast(k, tf.float64)
    return sample


def _build_generator_phase(trainer: Trainer):
    g, d, steps = trainer.generator, trainer.discriminator.model, trainer.config["generator_steps"]

    @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.float64), tf.TensorSpec([2], tf.int64)])
    def phase(z, batch_seed):
        """``generator_steps`` policy-gradient updates on latents z; returns the losses and D's
        mean belief in the policy's candidates, per step."""
        inputs = g.encode(z)  # the same latents at every step: encode them once
        choices = g.offsets * z + tf.range(g.offsets, dtype=tf.float64)  # (n, K): every offset
        beliefs_all = tf.reshape(clipped(d(tf.reshape(choices, [-1, 1]), training=False)),
                                 tf.shape(choices))  # D is fixed in this phase: ask it once
        logs = [tf.TensorArray(tf.float32, size=steps) for _ in range(4)]
        for i in tf.range(steps):
            values = generator_step(trainer, inputs, beliefs_all, draw_seed(batch_seed, 1 + i))
            logs = [log.write(i, value) for log, value in zip(logs, values)]
        return dict(zip(("generator_loss", "belief", "reward", "entropy"), (log.stack() for log in logs)))
    return phase


def sampled_objective(logits, beliefs, reward_of, seed) -> tuple:
    """REINFORCE: k ~ pi(k | z) per latent, advantage = reward less the batch mean. logits, beliefs
    (n, K); returns (the surrogate, D's mean belief in the sampled candidates, their mean reward)."""
    k = tf.random.stateless_categorical(logits, 1, seed=seed)[:, 0]
    log_pi = tf.gather(tf.nn.log_softmax(logits), k, batch_dims=1)
    p = tf.gather(beliefs, k, batch_dims=1)
    reward = reward_of(p, log_pi)
    advantage = tf.stop_gradient(reward - tf.reduce_mean(reward))
    return tf.reduce_mean(advantage * log_pi), tf.reduce_mean(p), tf.reduce_mean(reward)


def exact_objective(logits, beliefs, reward_of, seed) -> tuple:
    """The expected reward sum_k pi(k | z) reward_k (the reward held fixed), whose gradient is the
    policy gradient with no sampling noise. Returns (it averaged over latents, D's expected
    belief under the policy, the expected reward)."""
    log_pi = tf.nn.log_softmax(logits)
    pi = tf.exp(log_pi)
    reward = tf.stop_gradient(reward_of(beliefs, log_pi))
    expected = tf.reduce_mean(tf.reduce_sum(pi * reward, axis=-1))
    return (expected, tf.reduce_mean(tf.reduce_sum(tf.stop_gradient(pi) * beliefs, axis=-1)),
            tf.stop_gradient(expected))


POLICY_GRADIENTS = {"sampled": sampled_objective, "exact": exact_objective}


def sampled_candidates(trainer: Trainer, z: np.ndarray, batch: int) -> np.ndarray:
    """An offset head's training candidates for latents z, offsets sampled from its policy: float64
    (n,), checked (``utils.check_outputs``; offsets outside [0, offsets): GeneratorDivergedError)."""
    sample = trainer.compiled("sample", _build_sampler)
    offsets = trainer.generator.offsets
    z = np.asarray(z, np.float64).reshape(-1)
    x = utils.check_outputs(sample(tf.constant(z.reshape(-1, 1)), trainer.batch_seed(batch)).numpy())
    k = x - offsets * z
    outside = (k < 0) | (k >= offsets)
    if np.any(outside):
        raise utils.GeneratorDivergedError(
            f"the offset head's policy is not finite: {int(np.sum(outside))} of {z.size} offsets "
            f"fell outside [0, {offsets})")
    return x


def train_score_function(trainer: Trainer, z: np.ndarray, x: np.ndarray, labels: np.ndarray,
                         kept: np.ndarray, batch: int) -> dict:
    """D's ``steps`` updates on its undersampled batch (rows ``kept`` of candidates x, labels),
    then G's policy steps on all latents z."""
    d_phase = trainer.compiled("discriminator_phase", _build_discriminator_phase)
    g_phase = trainer.compiled("generator_phase", _build_generator_phase)
    d_losses = d_phase(tf.constant(x[kept].reshape(-1, 1)), tf.constant(labels[kept].reshape(-1, 1)),
                       trainer.batch_seed(batch))
    trainer.generator.follow(trainer.discriminator)  # a generator that reads D's features: D's now
    g_logs = g_phase(tf.constant(np.asarray(z, np.float64).reshape(-1, 1)), trainer.batch_seed(batch))
    return {"discriminator_loss": d_losses.numpy(), **{k: v.numpy() for k, v in g_logs.items()}}


def sampled_outputs(head, z, x, labels) -> tuple:
    """D's batch of the generator's sampled candidates, one per latent (the seed's)."""
    return x, labels, np.arange(len(z))


def every_window_candidate(head, z, x, labels) -> tuple:
    """D's batch of every candidate offsets*z + k of every latent's window, by latent:
    (candidates, labels, latent of each)."""
    every = (head.offsets * np.asarray(z, np.float64).reshape(-1, 1)
             + np.arange(head.offsets)).reshape(-1)
    return every, label(every), np.repeat(np.arange(len(z)), head.offsets)


DISCRIMINATOR_BATCHES = {"outputs": sampled_outputs, "windows": every_window_candidate}


def policy_fisher_terms(trainer: Trainer, z) -> tuple:
    """The policy's Fisher, E over k ~ pi(k|z) of (d log pi(k|z)/d theta)**2, exactly over k:
    (log_prob, inputs, weights) for ``fisher_diagonal``, every (z, k) row weighted pi(k | z) / n."""
    g = trainer.generator
    n = tf.shape(z)[0]
    pi = tf.exp(offset_log_probs(g, z))
    zs = tf.repeat(z, g.offsets, axis=0)
    ks = tf.tile(tf.range(g.offsets), [n])
    log_pi = lambda z, k: tf.gather(offset_log_probs(g, z), k, batch_dims=1)  # noqa: E731
    return log_pi, (zs, ks), tf.reshape(pi, [-1]) / tf.cast(n, tf.float32)


# ---------------------------------------------------------------------------------------------
# The pathwise method (the seed's: ``networks.RealHead``)


def _build_pathwise_step(trainer: Trainer):
    g, d, config = trainer.generator.model, trainer.discriminator.model, trainer.config
    g_base = keras.losses.BinaryFocalCrossentropy(gamma=config["focal_gamma"])
    optimizer, ewc = trainer.generator_optimizer, trainer.ewc_generator

    @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.float32), tf.TensorSpec([None, 1], tf.float32)])
    def step(z, labels):
        """One update of both networks. z: (n, 1) latents; labels: (n, 1) primality of G(z)."""
        with tf.GradientTape() as tape:
            x = g(z, training=True)
            belief = d(x, training=False)  # the generator's gradient flows through D's input
            loss = (g_base(tf.ones_like(belief), belief)
                    + negative_l2(x, config["negative_l2"], config["negative_l2_cap"])
                    + ewc.penalty(g, config["lambda_"]))
        optimizer.apply_gradients(zip(tape.gradient(loss, g.trainable_weights), g.trainable_weights))
        d_loss = discriminator_step(trainer, trainer.discriminator.encode(tf.stop_gradient(x)), labels)
        return loss, d_loss, g(z, training=False)
    return step


def train_pathwise(trainer: Trainer, z: np.ndarray, x: np.ndarray, labels: np.ndarray,
                   kept: np.ndarray, batch: int) -> dict:
    """``steps`` joint updates on the undersampled latents, relabelling G's outputs after each."""
    step = trainer.compiled("pathwise_step", _build_pathwise_step)
    z_t = tf.constant(np.asarray(z[kept], np.float32).reshape(-1, 1))
    y = np.asarray(labels[kept], np.float32).reshape(-1, 1)
    logs = {"generator_loss": [], "discriminator_loss": [], "prime_ratio": []}
    for _ in range(trainer.config["steps"]):
        g_loss, d_loss, x_next = step(z_t, tf.constant(y))
        y = label(utils.check_outputs(x_next.numpy())).reshape(-1, 1)
        logs["generator_loss"].append(float(g_loss))
        logs["discriminator_loss"].append(float(d_loss))
        logs["prime_ratio"].append(float(y.mean()))
    return {k: np.asarray(v) for k, v in logs.items()}


def belief_fisher_terms(trainer: Trainer, z) -> tuple:
    """The seed's generator Fisher: per-sample log D(G(z)), each row weighted 1/n."""
    g, d = trainer.generator.model, trainer.discriminator.model
    n = tf.cast(tf.shape(z)[0], tf.float32)
    log_belief = lambda z: tf.math.log(clipped(tf.reshape(d(g(z, training=False)), [-1])))  # noqa: E731
    return log_belief, (tf.cast(z, tf.float32),), tf.fill([tf.shape(z)[0]], 1.0 / n)


# ---------------------------------------------------------------------------------------------
# One batch of each method, and the EWC consolidation that follows it


def score_function_batch(trainer: Trainer, z: np.ndarray, rng: np.random.Generator, batch: int) -> tuple:
    """One batch of an offset head: candidates sampled from the policy for latents z; D's pool
    (those, or every window's), undersampled; ``train_score_function``; then EWC. Returns (x,
    labels, kept, logs): the candidates, their primality, the rows of D's undersampled batch
    (None: no prime, the batch is skipped) and the per-step logs."""
    x = sampled_candidates(trainer, z, batch)
    labels = label(x)
    pool, pool_labels, latent = trainer.pool(trainer.generator, z, x, labels)
    kept, fisher = _undersampled(trainer.config, pool_labels, rng)
    if kept is None:
        return x, labels, None, {}
    logs = train_score_function(trainer, z, pool, pool_labels, kept, batch)
    consolidate(trainer, z[latent[fisher]], pool[fisher], pool_labels[fisher], policy_fisher_terms,
                trainer.generator.offsets, batch)
    return x, labels, kept, logs


def pathwise_batch(trainer: Trainer, z: np.ndarray, rng: np.random.Generator, batch: int) -> tuple:
    """One batch of the seed's real head: its outputs for latents z, undersampled;
    ``train_pathwise``; then EWC, D's part on G's outputs as they are now. Returns as
    ``score_function_batch``."""
    x = trainer.generator.outputs(z)
    labels = label(x)
    kept, fisher = _undersampled(trainer.config, labels, rng)
    if kept is None:
        return x, labels, None, {}
    logs = train_pathwise(trainer, z, x, labels, kept, batch)
    moved = trainer.generator.outputs(z[fisher])  # D trained on the moving outputs
    consolidate(trainer, z[fisher], moved, label(moved), belief_fisher_terms, 1, batch)
    return x, labels, kept, logs


BATCHES = {"offset": score_function_batch, "real": pathwise_batch, "original": pathwise_batch}  # by head


def _undersampled(config: dict, labels: np.ndarray, rng: np.random.Generator) -> tuple:
    """(D's undersampled rows, the nb_samples of them the Fisher is estimated on), or (None, None)."""
    kept = undersample(labels, config["wanted_prime_ratio"], config["minimum_batch_size"], rng)
    if kept is None:
        return None, None
    return kept, rng.choice(kept, size=min(config["nb_samples"], kept.size), replace=False)


def label_log_prob(d, x, y):
    """log P(y | x) under the discriminator model d, per row: shape (n,)."""
    p = clipped(tf.reshape(d(x, training=False), [-1]))
    y = tf.reshape(y, [-1])
    return y * tf.math.log(p) + (1.0 - y) * tf.math.log(1.0 - p)


def empirical_fisher_terms(d, x, y) -> tuple:
    """D's Fisher at the true labels, as the seed: (log_prob, inputs, weights), each row 1/n."""
    n = tf.cast(tf.shape(x)[0], tf.float32)
    return (lambda x, y: label_log_prob(d, x, y)), (x, y), tf.fill([tf.shape(x)[0]], 1.0 / n)


def model_fisher_terms(d, x, y) -> tuple:
    """D's Fisher over its own labels: both labels of every row, weighted D's probability / n."""
    n = tf.cast(tf.shape(x)[0], tf.float32)
    p = tf.reshape(d(x, training=False), [-1])
    xs = tf.concat([x, x], 0)
    ys = tf.concat([tf.ones_like(y), tf.zeros_like(y)], 0)
    return (lambda x, y: label_log_prob(d, x, y)), (xs, ys), tf.concat([p, 1.0 - p], 0) / n


DISCRIMINATOR_FISHERS = {"empirical": empirical_fisher_terms, "model": model_fisher_terms}


def _build_fisher_fns(trainer: Trainer, terms) -> dict:
    g_vars = trainer.generator.model.trainable_variables
    d_vars = trainer.discriminator.model.trainable_variables
    spec64, spec32 = tf.TensorSpec([None, 1], tf.float64), tf.TensorSpec([None, 1], tf.float32)

    @tf.function(input_signature=[spec64, spec32])
    def discriminator(x, y):
        """D's Fisher on candidates x (labels y), of the kind ``trainer.fisher`` gives."""
        return fisher_diagonal(d_vars, *trainer.fisher(trainer.discriminator.model, x, y))

    @tf.function(input_signature=[spec64])
    def generator(z):
        """G's Fisher on latents z, from its method's ``terms``."""
        return fisher_diagonal(g_vars, *terms(trainer, z))
    return {"generator": generator, "discriminator": discriminator}


def _in_chunks(fisher, m: int, rows_per_sample: int, network) -> list:
    """A Fisher over m samples (each ``rows_per_sample`` per-sample gradients), in chunks whose
    per-sample gradients fit in FISHER_BYTES, as the chunks' means weighted by their sizes."""
    parameters = max(1, sum(int(np.prod(v.shape)) for v in network.trainable_variables))
    size = max(1, FISHER_BYTES // (4 * parameters * rows_per_sample))
    parts = [(min(m, start + size) - start, fisher(slice(start, start + size))) for start in range(0, m, size)]
    if len(parts) == 1:
        return parts[0][1]
    return [tf.add_n([n / m * part[i] for n, part in parts]) for i in range(len(parts[0][1]))]


def compute_fisher(trainer: Trainer, z: np.ndarray, x: np.ndarray, labels: np.ndarray, terms,
                   rows: int) -> tuple:
    """(generator's, discriminator's) Fisher diagonals on a sample of the batch: z (m,) latents (G's,
    by its method's ``terms``, ``rows`` per-sample gradients per latent); x, labels (m,): candidates
    D trained on and their primality."""
    fns = trainer.compiled(f"fisher {terms.__name__}", lambda trainer: _build_fisher_fns(trainer, terms))
    z = np.asarray(z, np.float64).reshape(-1, 1)
    x, labels = np.asarray(x, np.float64).reshape(-1, 1), np.asarray(labels, np.float32).reshape(-1, 1)
    new_g = _in_chunks(lambda r: fns["generator"](tf.constant(z[r])), len(z), rows, trainer.generator.model)
    new_d = _in_chunks(lambda r: fns["discriminator"](tf.constant(x[r]), tf.constant(labels[r])),
                       len(x), trainer.fisher_rows, trainer.discriminator.model)
    return new_g, new_d


def consolidate(trainer: Trainer, z: np.ndarray, x: np.ndarray, labels: np.ndarray, terms,
                rows: int, batch: int) -> None:
    """EWC after batch ``batch``, for both networks: ``compute_fisher``, the estimate <- fisher_decay *
    estimate + F_new, then the anchor's update (``ANCHORS``; the average starts at batch 1's weights)."""
    new_g, new_d = compute_fisher(trainer, z, x, labels, terms, rows)
    config = trainer.config
    settings = (config["fisher_decay"], config["ewc_anchor"], config["anchor_decay"] if batch > 1 else 0.0)
    trainer.ewc_generator.consolidate(trainer.generator.model, new_g, *settings)
    trainer.ewc_discriminator.consolidate(trainer.discriminator.model, new_d, *settings)
