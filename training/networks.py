"""The two networks as objects: each owns its Keras model, built from an architecture record, and
offers what the sampler and the measures ask of it (``training_utils``'s steps train the models).
``training/registry.py`` builds them: ``cls(architecture, methods)``, methods holding the
registry's entry of every selector the architecture records.
"""
import keras
import numpy as np

import utils
from training import model as model_lib
from training import readers
from training.encodings import DiscriminatorFeatures
from training import sampling

LOGIT_ROWS = 65536              # candidates per scorer call when computing logits from integers
                                # (4096 latents of 16 offsets: a few tens of MB of features)


def _chunked(network, inputs, step: int = LOGIT_ROWS) -> np.ndarray:
    """``network`` on ``inputs`` in inference mode, ``step`` rows a call, concatenated."""
    return np.concatenate([np.asarray(network(inputs[i:i + step], training=False))
                           for i in range(0, len(inputs), step)])


def after_reader(model) -> tuple | None:
    """(the model's reader, a model from the reader's output to the model's), when the reader
    computes its output from integers of any length (``numbers``): how a digit reader reads past
    the encoding's BIT_WIDTH digits. None otherwise (the digits MLP reads BIT_WIDTH digits only)."""
    try:
        reader = model.get_layer("reader")
    except ValueError:
        return None
    return (reader, keras.Model(reader.output, model.output)) if hasattr(reader, "numbers") else None


def stored(architecture: dict, entry) -> dict:
    """The constants a registry ``entry`` stores, with their recorded values: the arguments of the
    layer it builds (a reader's priors, the GLN's settings)."""
    return {k: architecture[k] for k in entry.stores}


def reader_layer(architecture: dict, methods: dict):
    """The trainable reader between a network's encoding and its MLP, if its input has one."""
    build = readers.READERS[architecture["reader"]] if "reader" in architecture else None
    return build(name="reader", **stored(architecture, methods["reader"])) if build is not None else None


# ---------------------------------------------------------------------------------------------
# Generator heads


class GeneratorHead:
    """A generator: its Keras ``model`` (latent z (n, 1) -> output x (n, 1)) and its operations."""

    def __init__(self, architecture: dict, methods: dict):
        """architecture: its weight file's record; methods: the registry's Method of each selector."""
        self.architecture, self.methods = architecture, methods
        self.model = self.build()

    def build(self) -> keras.Model:
        raise NotImplementedError

    def outputs(self, z) -> np.ndarray:
        """Generator outputs for latents z (n,), checked, float64 (n,): the most likely ones."""
        return utils.check_outputs(model_lib.forward(self.model, z))

    def choices(self, z, x):
        """(the offset chosen for each latent, how many offsets there are), or None without offsets."""
        return None

    def sampler(self, how: str, low: int, high: int):
        """The generator as a random prime generator on latents in [low, high]: an object with
        ``draw_candidates(z, rng) -> (candidates, accepted)`` and ``windows(z) -> Windows or None``.
        Here point masses, whatever ``how`` asks; latents are read as float32: at most LATENT_LIMIT."""
        if high > utils.LATENT_LIMIT:
            raise utils.OptimusError(
                f"latents up to {high}: the {self.architecture['generator_head']} head reads its latent as float32, exact "
                f"only up to {utils.LATENT_LIMIT} (2**24), and its outputs stop at 2**24")
        return sampling.PointMasses(self.outputs, low, high)

    def latents_for(self, lo: int, hi: int) -> tuple:
        """All its latents, when its outputs can reach [lo, hi] (each output is kept if inside)."""
        top = 2 * int(model_lib.OUTPUT_CAP) + 1
        if lo > top:
            raise utils.OptimusError(
                f"primes from {lo}: the {self.architecture['generator_head']} head outputs float32 reals up to 2**24, so its "
                f"candidates stop at {top}; use an offset head")
        return 1, utils.LATENT_LIMIT


class OffsetHead(GeneratorHead):
    """x = offsets*z + k: a policy over the offsets k, its input and acceptance from the tables."""

    def build(self) -> keras.Model:
        a, m = self.architecture, self.methods
        self.input, self.offsets = m["generator_input"], a["offsets"]
        self.mirror = self.input.build is DiscriminatorFeatures
        self.encoding = m["discriminator_input"].build if self.mirror else self.input.build
        widths, activation = (a["generator_units"],) * a["generator_layers"], a["generator_activation"]
        prefix = "scorer" if self.input.per_candidate else "hidden"
        if self.mirror:  # D's reader and MLP, frozen, named as D names them; then G's own MLP
            body = model_lib.body_layers((a["discriminator_units"],) * a["discriminator_layers"],
                                         a["discriminator_activation"], "hidden", reader_layer(a, m), trainable=False)
            body += model_lib.body_layers(widths, activation, prefix)
        else:
            body = model_lib.body_layers(widths, activation, prefix, reader_layer(a, m))
        encoding = model_lib.encoding_layer(self.encoding, a, candidate=self.input.per_candidate)
        network, features, logits = model_lib.offset_generator(self.offsets, encoding, self.input.per_candidate, body)
        self.policy = keras.Model(network.input, logits, name="offset_policy")
        self.encode, self.score = model_lib.split(network.input, features, logits)
        self.acceptance = m["acceptance"]
        self.copied = [layer for layer in body if not layer.trainable and layer.weights]
        return network

    def follow(self, discriminator) -> None:
        """Copy the discriminator's reader and hidden layers into their frozen copies here (a
        generator that reads D's features; none otherwise)."""
        for layer in self.copied:
            layer.set_weights(discriminator.model.get_layer(layer.name).get_weights())

    def logits(self, z) -> np.ndarray:
        """The policy's logits for latents z ((n,), any integers): float64 (n, offsets), from the
        encoding's features computed from the integers exactly (as its layer does below 2**53)."""
        z = utils.integers(z).reshape(-1)
        a, encoding = self.architecture, self.encoding
        parts, step, twin = [], max(1, LOGIT_ROWS // self.offsets), None
        for i in range(0, len(z), step):
            chunk = z[i:i + step]
            try:
                features = (encoding.window_features(a, chunk, self.offsets) if self.input.per_candidate
                            else encoding.latent_features(a, chunk))
            except utils.OptimusError:  # digits past the encoding's: through the reader's numpy twin
                twin = twin or (after_reader(self.policy) if self.input.per_candidate else None)
                if twin is None:
                    raise
                counts = twin[0].numbers(self.candidates(chunk).reshape(-1))
                parts.append(np.asarray(twin[1](counts.reshape(len(chunk), self.offsets, -1), training=False)))
                continue
            parts.append(np.asarray(self.score(features, training=False)))
        return np.concatenate(parts).astype(np.float64) if parts else np.zeros((0, self.offsets))

    def candidate_scores(self, z, k) -> np.ndarray:
        """The score (logit) of candidate k of each latent z alone: float64 (n,). The scorer scores
        each candidate by itself, so they are packed offsets to a row."""
        z, k = utils.integers(z).reshape(-1), np.asarray(k).reshape(-1)
        n, rows = len(k), -(-len(k) // self.offsets)
        try:
            features = self.encoding.candidate_features(self.architecture, z, k, self.offsets)
        except utils.OptimusError:  # digits past the encoding's: through the reader's numpy twin
            twin = after_reader(self.policy)
            if twin is None:
                raise
            features = twin[0].numbers(self.candidates(z, k))
            padded = np.concatenate([features, np.zeros((rows * self.offsets - n, features.shape[-1]), np.float32)])
            return _chunked(twin[1], padded.reshape(rows, self.offsets, -1)).reshape(-1)[:n].astype(np.float64)
        padded = np.concatenate([features, np.zeros((rows * self.offsets - n, features.shape[-1]),
                                                    features.dtype)])
        packed = padded.reshape(rows, self.offsets, -1)
        scores = _chunked(self.score, packed, max(1, LOGIT_ROWS // self.offsets))
        return scores.reshape(-1)[:n].astype(np.float64)

    def candidates(self, z, k=None) -> np.ndarray:
        """The candidates of latents z (``sampling.candidates``): every choice's, or choice k of each."""
        return sampling.candidates(self.offsets, z, k)

    def dense_weights(self) -> list:
        """[kernel, bias] of the scorer's Dense layers, first to last (``sampling.FoldedScorer``)."""
        return [layer.get_weights() for layer in self.score.layers if layer.get_weights()]

    def sampler(self, how: str, low: int, high: int):
        return sampling.OffsetSampler(self, how, low, high)

    def choices(self, z, x):
        k = np.asarray(x, dtype=np.float64) - self.offsets * np.asarray(z, dtype=np.float64)
        return k.astype(np.int64), self.offsets

    def latents_for(self, lo: int, hi: int) -> tuple:
        return sampling.latents_for(self.offsets, lo, hi)


class RealHead(GeneratorHead):
    """The seed's generator of a real x, trained through D's input gradient."""
    original = False

    def build(self) -> keras.Model:
        return model_lib.real_generator(self.original)


class OriginalHead(RealHead):
    """The original's generator, which can only compute k*z."""
    original = True


# ---------------------------------------------------------------------------------------------
# Discriminators


class Discriminator:
    """A discriminator: its Keras ``model`` (x (n, 1) -> P(prime) (n, 1)), split as
    head(encode(x)); ``representation`` (x -> what its output layer reads, for probes); and
    ``local_update``: None, or its own learning rule, update(encode(x), labels) -> loss."""
    local_update = None

    def __init__(self, architecture: dict, methods: dict):
        """architecture: its weight file's record; methods: the registry's Method of each selector."""
        self.architecture, self.methods = architecture, methods
        self.encoding = methods["discriminator_input"].build
        self.model, self.encode, self.head, self.representation = self.build()

    def build(self) -> tuple:
        raise NotImplementedError

    @staticmethod
    def parts(network, features, hidden) -> tuple:
        """(model, encode, head, representation) of a network split at its encoding's features."""
        return (network, *model_lib.split(network.input, features, network.output),
                keras.Model(network.input, hidden))

    def beliefs(self, x) -> np.ndarray:
        """P(prime) for outputs x (n,), float (n,)."""
        return model_lib.forward(self.model, x)

    def representation_of(self, candidates) -> np.ndarray:
        """``representation`` of odd candidates (n,) below 2**53: float (n, H)."""
        x = (utils.integers(candidates).reshape(-1, 1) - 1) // 2
        return _chunked(self.representation, x.astype(np.float64)).reshape(len(x), -1)

    def beliefs_of_candidates(self, candidates) -> np.ndarray | None:
        """P(prime) for odd candidates (n,) of any size: from their outputs below 2**53, else from
        their encoding's features computed from the integers; None if the input cannot read them."""
        candidates = utils.integers(candidates).reshape(-1)
        limit = min(utils.FLOAT64_EXACT, self.encoding.reads_below)
        if candidates.dtype != object and (not candidates.size or candidates.max() < limit):
            return self.beliefs((candidates - 1) // 2)
        try:
            features = self.encoding.number_features(self.architecture, candidates)
        except utils.OptimusError:  # digits past the encoding's: through the reader's numpy twin
            twin = after_reader(self.model)
            return None if twin is None else _chunked(twin[1], twin[0].numbers(candidates)).reshape(-1)
        return _chunked(self.head, features).reshape(-1)


class MlpDiscriminator(Discriminator):
    """An MLP on its input, trained by Adam through its loss."""

    def build(self) -> tuple:
        a = self.architecture
        network, features, hidden = model_lib.encoded_discriminator(
            model_lib.encoding_layer(self.encoding, a), f"discriminator_{a['discriminator_input']}",
            (a["discriminator_units"],) * a["discriminator_layers"], a["discriminator_activation"],
            reader_layer(a, self.methods))
        return self.parts(network, features, hidden)


class RecurrentDiscriminator(MlpDiscriminator):
    """A GRU reading the binary digits, most significant first."""

    def build(self) -> tuple:
        return self.parts(*model_lib.recurrent_discriminator(
            model_lib.encoding_layer(self.encoding, self.architecture), self.architecture["discriminator_units"]))


class SeedDiscriminator(MlpDiscriminator):
    """The seed's scalar discriminator."""

    def build(self) -> tuple:
        network = model_lib.scalar_discriminator()
        last_hidden = network.layers[-2].output  # its builder's own stack: the last dropout
        return network, (lambda x: x), network, keras.Model(network.inputs[0], last_hidden)


class GlnDiscriminator(Discriminator):
    """A gated linear network with its own local learning rule."""

    def build(self) -> tuple:
        encoding = model_lib.encoding_layer(self.encoding, self.architecture)
        settings = stored(self.architecture, self.methods["discriminator"])
        network, features, self.gln = model_lib.gln_discriminator(encoding, settings)
        self.local_update = self.gln.local_update
        hidden = keras.layers.Lambda(self.gln.hidden, name="hidden")(features)
        return self.parts(network, features, hidden)


GENERATOR_HEADS = {"offset": OffsetHead, "real": RealHead, "original": OriginalHead}  # the registry's
DISCRIMINATORS = {"mlp": MlpDiscriminator, "recurrent": RecurrentDiscriminator,     # tables of the
                  "seed": SeedDiscriminator, "gln": GlnDiscriminator}                # same names document them
