"""The method registry: one plain table per selector constant, from each value to a ``Method``.

A ``Method`` is the one-line doc that train.py --help lists, the constants it reads (given
otherwise: refused), those its weight file stores, and what it builds when that needs no
TensorFlow (an encoding, a numpy function). The networks, readers, rewards, objectives, losses and
Fisher kinds are in tables of the same names in the modules that define them (``code``), imported
when first built, so that nothing here imports TensorFlow; a test keeps their names and these in
step. What a value needs of the others is one table, ``REQUIRES``. A new method is its piece in
networks.py, encodings.py, readers.py, model.py or training_utils.py with its entry in that
module's table, plus one entry here (a new generator head also names its batch step in
``training_utils.BATCHES``).
"""
import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

import utils
from training import rules
from training.encodings import MAX_LARGEST_PRIME, Bits, DiscriminatorFeatures, Encoding, Real, Residues
from training.sampling import NUMPY_ACTIVATIONS

MAX_OFFSETS = 4096              # offsets*z stays exact: 4096 * 2**24 is far below utils.FLOAT64_EXACT
MAX_LAYERS = 8                  # hidden layers of an MLP body, at most
MAX_UNITS = 1024                # units per hidden layer, at most (a generator step holds
                                # batch_size * offsets rows of them)
MAX_FREQUENCIES = 64            # a reader's frequencies, at most
MAX_PERIOD = 64                 # largest period of the position classes, at most (sum(q) counts)
MAX_DENOMINATOR = 64            # the phase reader's largest snap denominator, at most
MAX_CONTEXT_BITS = 12           # a GLN neuron's hyperplanes, at most (2**12 weight vectors each)
MAX_GLN_WEIGHT = 1e4            # the GLN's weight clip, at most (its logits stay finite in float32)
MAX_FOCAL_GAMMA = 10.0          # at most: (1 - p)**10 already weighs a belief of 0.5 at 1e-3
ACTIVATIONS = tuple(NUMPY_ACTIVATIONS)  # of the MLP bodies' hidden layers: those numpy computes (the
                                        # sampler's fast path) and model.ACTIVATIONS builds, a test says


@dataclass(frozen=True)
class Method:
    """One value of a selector constant."""
    doc: str                    # what the value means, one line (train.py --help lists it)
    build: Any = None           # what it selects, if no TensorFlow: an encoding or a numpy function
                                # (the others: ``code``)
    reads: tuple = ()           # constants that act only when it is chosen
    stores: tuple = ()          # constants its network's weight file records (besides selectors)
    per_candidate: bool = False  # an input or acceptance that works candidate by candidate
    rows: int = 1               # a Fisher kind: per-sample gradients per candidate


# The other constants that parts read: (type, rule). train.py's defaults must have these types.
PARAMETERS = {
    "offsets": (int, rules.between(2, MAX_OFFSETS, "an integer")),
    "largest_prime": (int, rules.between(3, MAX_LARGEST_PRIME, "an integer")),
    "generator_steps": (int, rules.at_least(1)),
    "discriminator_minibatch": (int, rules.at_least(0)),
    "generator_layers": (int, rules.between(0, MAX_LAYERS, "an integer")),
    "generator_units": (int, rules.between(1, MAX_UNITS, "an integer")),
    "discriminator_layers": (int, rules.between(0, MAX_LAYERS, "an integer")),
    "discriminator_units": (int, rules.between(1, MAX_UNITS, "an integer")),
    "generator_activation": (str, rules.one_of(*ACTIVATIONS)),
    "discriminator_activation": (str, rules.one_of(*ACTIVATIONS)),
    "negative_l2": (float, rules.between(0, 1)),
    "reader_snap": (float, rules.between(0, 1, brackets="(]")),
    "reader_frequencies": (str, rules.fractions_between(0, 0.5, MAX_FREQUENCIES)),
    "frequency_step": (float, rules.between(0, 1, brackets="(]")),
    "reader_periods": (int, rules.between(2, MAX_PERIOD, "an integer")),
    "phase_units": (int, rules.between(1, MAX_UNITS, "an integer")),
    "max_denominator": (int, rules.between(1, MAX_DENOMINATOR, "an integer")),
    "snap_tolerance": (float, rules.between(0, 0.5, brackets="(]")),
    "gln_layers": (int, rules.between(1, MAX_LAYERS, "an integer")),
    "gln_units": (int, rules.between(1, MAX_UNITS, "an integer")),
    "gln_context_bits": (int, rules.between(1, MAX_CONTEXT_BITS, "an integer")),
    "gln_epsilon": (float, rules.between(0, 0.5, brackets="()")),
    "gln_weight_limit": (float, rules.between(0, MAX_GLN_WEIGHT, brackets="(]")),
    "gln_lr": (float, rules.between(0, 1e3, brackets="(]")),
    "gln_decay": (float, rules.between(0, 1)),
    "gln_bias_logit": (float, rules.between(-10, 10)),
    "gln_input_scale": (float, rules.between(0, 100, brackets="(]")),
    "gln_offset_scale": (float, rules.between(0, 10)),
    "focal_alpha": (float, rules.between(0, 1)),
    "focal_gamma": (float, rules.between(0, MAX_FOCAL_GAMMA)),
    "negative_l2_cap": (float, rules.between(0, 1, brackets="(]")),
}


# ---------------------------------------------------------------------------------------------
# Generator inputs (offset head): what its policy network reads


MIRRORED = ("discriminator_input", "discriminator_layers", "discriminator_units", "discriminator_activation")
GENERATOR_INPUTS = {  # what the offset head's policy reads: build is the encoding
    "candidates": Method("score each choice's candidate from its residues with one shared MLP",
                         Residues, Residues.stores, Residues.stores, per_candidate=True),
    "latent": Method("an MLP from the residues of z itself to the logits of the offsets",
                     Residues, Residues.stores, Residues.stores),
    "bits": Method("score each choice's candidate from its binary digits (through the reader) with one "
                   "shared MLP", Bits, ("reader",), ("reader",), per_candidate=True),
    "discriminator": Method("score each choice's candidate with an MLP on the discriminator's last hidden "
                            "layer: a frozen copy of D's encoding, reader and MLP, refreshed from D before "
                            "each generator phase", DiscriminatorFeatures, stores=MIRRORED, per_candidate=True),
}


FREQUENCIES = ("reader_frequencies", "frequency_step")
PHASES = ("reader_periods", "phase_units", "max_denominator", "snap_tolerance")
READERS = {  # code: the trainable layer's class between the bits encoding and the MLP, or None; it
             # takes the constants its entry stores (networks.stored)
    "digits": Method("none: the digits go straight into the MLP (a weight per position; prior: none)"),
    "frequencies": Method("positional frequencies, sum_i b_i cos(a_f i + c_f), a_f learned slowly from "
                          "reader_frequencies (prior: weights that are sinusoids of the position)",
                          reads=FREQUENCIES, stores=FREQUENCIES),
    "rotation": Method("a linear recurrence whose state rotates by exp(i a_f) per digit, read from the "
                       "most significant (prior: a rotation)", reads=FREQUENCIES, stores=FREQUENCIES),
    "periods": Method("fixed counts of set digits per position class mod q, q = 2..reader_periods (prior: "
                      "periods of the position)", reads=("reader_periods",), stores=("reader_periods",)),
    "phases": Method("sine units on each period's counts alone, their weights snapped to fractions k/d "
                     "(d <= max_denominator) at reader_snap of the run and frozen (prior: periods, and "
                     "rational turns)", reads=("reader_snap", *PHASES), stores=PHASES),
}


GENERATOR_HEADS = {
    "offset": Method("x = offsets*z + k, k chosen by a softmax policy trained by the score-function "
                     "gradient",
                     reads=("generator_input", "offsets", "generator_layers", "generator_units",
                            "generator_activation", "acceptance", "reward", "policy_gradient",
                            "generator_steps", "discriminator_batch", "discriminator_minibatch"),
                     stores=("offsets", "generator_layers", "generator_units", "generator_activation")),
    "real": Method("the seed's generator of a real x, trained through the discriminator's slope",
                   reads=("negative_l2", "negative_l2_cap", "focal_gamma")),
    "original": Method("the original's generator, which can only compute k*z, with the original's "
                       "scalar discriminator and no negative L2 (it never acted there)", reads=("focal_gamma",)),
}


def _window_log_weight(logits: np.ndarray) -> np.ndarray:
    """log of a window's acceptance weight, its sum of exp(score), from logits (n, K): shape (n,)."""
    top = logits.max(axis=1)
    return top + np.log(np.exp(logits - top[:, None]).sum(axis=1))


ACCEPTANCES = {  # how likely an offset head keeps a latent, from its logits: build(logits) -> log weight
    "none": Method("every latent is kept: its window gives one output", lambda logits: np.zeros(len(logits))),
    "window": Method("a latent is kept with probability proportional to its window's sum of exp(score): "
                     "then each output's probability is proportional to exp(its own score) alone",
                     _window_log_weight, per_candidate=True),
}


# ---------------------------------------------------------------------------------------------
# Discriminator inputs


DISCRIMINATOR_INPUTS = {  # what the discriminator reads: build is the encoding
    "residues": Method("the candidate's residues modulo the odd primes up to largest_prime", Residues,
                       Residues.stores, Residues.stores),
    "scalar": Method("x as one real number (the seed's), rescaled to [0, 1]", Real),
    "bits": Method("the candidate's binary digits, and nothing else (through the reader)", Bits,
                   ("reader",), ("reader",)),
}


GLN = ("gln_layers", "gln_units", "gln_context_bits", "gln_epsilon", "gln_weight_limit", "gln_lr", "gln_decay",
       "gln_bias_logit", "gln_input_scale", "gln_offset_scale")  # the GLN's settings: its layer's arguments
DISCRIMINATORS = {
    "mlp": Method("an MLP on its input, trained by Adam through its loss",
                  reads=("discriminator_layers", "discriminator_units", "discriminator_activation",
                         "discriminator_loss", "discriminator_fisher"),
                  stores=("discriminator_layers", "discriminator_units", "discriminator_activation")),
    "recurrent": Method("a GRU of discriminator_units reading the binary digits one at a time, most "
                        "significant first, trained by Adam through its loss",
                        reads=("discriminator_units", "discriminator_loss", "discriminator_fisher"),
                        stores=("discriminator_units",)),
    "seed": Method("the seed's: x as one real, sigmoid layers (1000, then 5 x 100) with L2 and dropout, "
                   "trained by Adam through its loss",
                   reads=("discriminator_loss", "discriminator_fisher")),
    "gln": Method("a gated linear network with its own local learning rule (offset head, bounded "
                  "features)", reads=GLN, stores=GLN),
}


# ---------------------------------------------------------------------------------------------
# Rewards and gradient estimators (offset head); D's batch, loss and Fisher


REWARDS = {  # code(p, log_pi): the reward of a candidate from D's belief p (clipped) and log pi(k | z)
    "belief": Method("D(x), the discriminator's belief"),
    "log": Method("log D(x)"),
    "focal": Method("minus the focal loss of calling x prime", reads=("focal_gamma",)),
    "constant": Method("0: the negative control, no signal at all"),
    "entropy": Method("log D(x) - log pi(k | z), maximum entropy: the best policy is pi proportional "
                      "to D over each window"),
}

POLICY_GRADIENTS = {  # code(logits, beliefs, reward, seed) -> (objective, mean belief, mean reward)
    "sampled": Method("REINFORCE: one sampled offset per latent, the batch's mean reward as baseline"),
    "exact": Method("the expectation over every offset, computed exactly: no sampling noise"),
}

DISCRIMINATOR_BATCHES = {  # code(head, z, x, labels) -> (D's candidates, their labels, each one's latent)
    "outputs": Method("the generator's sampled candidates, one per latent (the seed's: D learns from "
                      "G's outputs)"),
    "windows": Method("every candidate of every latent's window, labelled by the oracle"),
}

DISCRIMINATOR_LOSSES = {  # code() -> a Keras loss
    "focal": Method("class-balanced focal loss (focal_alpha, focal_gamma), as the seed",
                    reads=("focal_alpha", "focal_gamma")),
    "bce": Method("binary cross-entropy"),
}

DISCRIMINATOR_FISHERS = {  # code(d, x, y) -> (log_prob, inputs, weights) of D's Fisher
    "empirical": Method("at the true labels, as the seed"),
    "model": Method("expected over D's own labels: label-free, p(1-p) (d logit/d theta)**2", rows=2),
}


# ---------------------------------------------------------------------------------------------
# The tables together: what needs what, the rules of train.py's method constants, the chosen parts


TABLES = {  # selector constant: its table, in --help's order
    "generator_head": GENERATOR_HEADS, "generator_input": GENERATOR_INPUTS, "reader": READERS,
    "acceptance": ACCEPTANCES,
    "reward": REWARDS, "policy_gradient": POLICY_GRADIENTS, "discriminator_batch": DISCRIMINATOR_BATCHES,
    "discriminator": DISCRIMINATORS, "discriminator_input": DISCRIMINATOR_INPUTS,
    "discriminator_loss": DISCRIMINATOR_LOSSES, "discriminator_fisher": DISCRIMINATOR_FISHERS,
}
ROOTS = ("generator_head", "discriminator", "discriminator_input")  # always chosen; the others
                                                                    # are chosen by what reads them
REQUIRES = (  # (constant, value, needs this other constant, to pass test(its value, its Method), in words)
    ("generator_head", "real", "discriminator_input", lambda v, m: m.build.differentiable,
     "an input a gradient passes"),
    ("generator_head", "original", "discriminator", lambda v, m: v == "seed", "'seed'"),
    ("acceptance", "window", "generator_input", lambda v, m: m.per_candidate, "a per-candidate scorer"),
    ("generator_input", "discriminator", "discriminator", lambda v, m: v == "mlp", "'mlp'"),
    ("generator_input", "discriminator", "discriminator_input", lambda v, m: _reads_integers(m.build),
     "an input whose features a generator can compute from integers"),
    ("discriminator", "recurrent", "discriminator_input", lambda v, m: v == "bits", "'bits'"),
    ("discriminator", "recurrent", "reader", lambda v, m: v == "digits", "'digits' (the GRU reads them)"),
    ("discriminator", "seed", "discriminator_input", lambda v, m: v == "scalar", "'scalar'"),
    ("discriminator", "gln", "generator_head", lambda v, m: v == "offset",
     "'offset' (a head that needs no input gradient)"),
    ("discriminator", "gln", "discriminator_input", lambda v, m: m.build.bounded,
     "an input with bounded features"),
)


def _reads_integers(encoding, features: str = "window_features") -> bool:
    """Whether ``encoding`` computes its layer's ``features`` from integers, outside its network."""
    return getattr(encoding, features).__func__ is not getattr(Encoding, features).__func__


def _check_tables() -> None:
    """Refuse, when this module is imported, an entry that cannot serve where it is registered:
    a generator input whose encoding cannot compute its features from integers (test sessions
    and --primes need them), or a REQUIRES row naming no entry."""
    for value, entry in GENERATOR_INPUTS.items():
        features = "window_features" if entry.per_candidate else "latent_features"
        if entry.build is not DiscriminatorFeatures and not _reads_integers(entry.build, features):
            raise TypeError(f"generator_input={value!r}: its encoding {entry.build.__name__} has no "
                            f"{features} (a generator reads integers outside its network)")
    for constant, value, other, _, _ in REQUIRES:
        if value not in TABLES[constant] or other not in TABLES:
            raise TypeError(f"REQUIRES: {constant}={value!r} or {other} is not in the tables")


_check_tables()


def code_tables() -> dict:
    """{selector: {value: the function or class it selects}} of the tables whose code needs
    TensorFlow, from the modules that define them (imported here: on first build, not on --help)."""
    from training import networks, readers, training_utils
    return {"generator_head": networks.GENERATOR_HEADS, "reader": readers.READERS,
            "discriminator": networks.DISCRIMINATORS, "reward": training_utils.REWARDS,
            "policy_gradient": training_utils.POLICY_GRADIENTS,
            "discriminator_batch": training_utils.DISCRIMINATOR_BATCHES,
            "discriminator_loss": training_utils.DISCRIMINATOR_LOSSES,
            "discriminator_fisher": training_utils.DISCRIMINATOR_FISHERS}


def code(selector: str, value: str):
    """What ``value`` of ``selector`` selects: its entry's ``build``, or the code of that name."""
    tables = code_tables()
    return tables[selector][value] if selector in tables else TABLES[selector][value].build


def bound(selector: str, config: dict):
    """``code`` of ``config``'s value of ``selector``, given the constants its entry reads (besides
    selectors) as keyword arguments: the focal reward its focal_gamma, say."""
    fn, entry = code(selector, config[selector]), TABLES[selector][config[selector]]
    given = {name: config[name] for name in entry.reads if name in PARAMETERS}
    return functools.partial(fn, **given) if given else fn


def method_rules() -> dict:
    """{constant: Rule} of every selector (its table's values) and every PARAMETERS entry."""
    return {**{constant: rules.one_of(*table) for constant, table in TABLES.items()},
            **{name: rule for name, (_, rule) in PARAMETERS.items()}}


def method_constants() -> tuple:
    """The constants a resumed run must keep: every selector and every key a weight file holds."""
    stored = {k for table in TABLES.values() for entry in table.values() for k in entry.stores}
    return tuple(TABLES) + tuple(k for k in PARAMETERS if k in stored)


def chosen(config: dict) -> dict:
    """{selector constant: its Method} of the parts ``config`` chooses: the ROOTS, and every
    selector that a chosen part reads."""
    parts, todo = {}, list(ROOTS)
    while todo:
        constant = todo.pop(0)
        if constant in parts:
            continue
        value = config[constant]
        if value not in TABLES[constant]:
            raise utils.OptimusError(f"{constant}={value!r} is not a known setting (known: "
                                     f"{', '.join(map(repr, TABLES[constant]))})")
        parts[constant] = TABLES[constant][value]
        todo += [c for c in parts[constant].reads if c in TABLES]
    return parts


def readers() -> dict:
    """{constant: [(selector, value) of every entry that reads it]} over every table."""
    found = {}
    for constant, table in TABLES.items():
        for value, entry in table.items():
            for name in entry.reads:
                found.setdefault(name, []).append((constant, value))
    return found


def unmet(values: dict) -> tuple | None:
    """The first REQUIRES row that the chosen selector values break: (constant, other, words)."""
    for constant, value, other, test, text in REQUIRES:
        if values.get(constant) == value and other in values and not test(values[other], TABLES[other][values[other]]):
            return constant, other, text
    return None


def memory_bytes(config: dict) -> int:
    """About the most memory one training batch holds: the generator phase's rows (every offset
    of every latent, their features, activations and gradients) and D's batch of every window's
    candidates, encoded. The Fisher is computed in chunks (``training_utils.FISHER_BYTES``)."""
    parts = chosen(config)
    rows = config["batch_size"]
    if "generator_input" in parts:  # an offset head: every offset of every latent at each step
        read = parts["generator_input"]
        rows *= config["offsets"] if read.per_candidate else 1
        encoding = parts["discriminator_input"].build if read.build is DiscriminatorFeatures else read.build
        width = encoding.width(config) + config["generator_units"] * config["generator_layers"] + 8
        generator = rows * width * 4 * 2  # float32 activations, and as many gradients
        pool = config["batch_size"] * config["offsets"]
    else:
        generator, pool = config["batch_size"] * 4 * 1000 * 4, config["batch_size"]
    discriminator = pool * (parts["discriminator_input"].build.width(config) + 16) * 4
    return generator + discriminator


def check_method(config: dict, given: set) -> None:
    """Refuse, in one line, a combination the parts do not support, and a constant given in
    ``given`` that no chosen part reads (it would be ignored)."""
    parts = chosen(config)
    broken = unmet({constant: config[constant] for constant in parts})
    if broken is not None:
        constant, other, text = broken
        raise utils.OptimusError(f"--{constant}={config[constant]}: needs {other} to be {text} "
                                 f"(got {config[other]!r})")
    read = {name for entry in parts.values() for name in entry.reads}
    for name, by in sorted(readers().items()):
        if name in given and name not in read:
            where = " or ".join(f"{constant}={value!r}" for constant, value in by)
            raise utils.OptimusError(f"--{name}: {name} acts only with {where}; leave it out")


# ---------------------------------------------------------------------------------------------
# Building and loading networks


def ceiling(config: dict) -> tuple | None:
    """(score ceiling, largest prime) of outputs that avoid every prime the discriminator sees,
    or None when it sees no residues: the generator learns what D's beliefs show it."""
    return DISCRIMINATOR_INPUTS[config["discriminator_input"]].build.ceiling(config)


def generator_architecture(config: dict) -> dict:
    """The part of ``config`` (train.py's constants) that shapes the generator."""
    head = GENERATOR_HEADS[config["generator_head"]]
    if "generator_input" not in head.reads:  # the seed's heads: nothing more to record
        return {"generator_head": config["generator_head"]}
    stores = head.stores + GENERATOR_INPUTS[config["generator_input"]].stores
    if "discriminator_input" in stores:  # it reads as D does: what D's input stores too
        stores += DISCRIMINATOR_INPUTS[config["discriminator_input"]].stores
    return {"generator_head": config["generator_head"], **{k: config[k] for k in _with_reader(stores, config)},
            "generator_input": config["generator_input"], "acceptance": config["acceptance"]}


def discriminator_architecture(config: dict) -> dict:
    """The part of ``config`` (train.py's constants) that shapes the discriminator."""
    stores = (DISCRIMINATORS[config["discriminator"]].stores
              + DISCRIMINATOR_INPUTS[config["discriminator_input"]].stores)
    return {"discriminator": config["discriminator"], "discriminator_input": config["discriminator_input"],
            **{k: config[k] for k in _with_reader(stores, config)}}


def _with_reader(stores: tuple, config: dict) -> tuple:
    """``stores`` and, where it holds the reader, the reader's priors that its entry stores."""
    return stores + READERS[config["reader"]].stores if "reader" in stores else stores


ROLES = {"generator": "generator_head", "discriminator": "discriminator"}  # each network's selector
ARCHITECTURES = {"generator": generator_architecture, "discriminator": discriminator_architecture}


def methods(architecture: dict) -> dict:
    """{selector: its Method} of every selector an architecture records."""
    return {c: TABLES[c][v] for c, v in architecture.items() if c in TABLES}


def build(architecture: dict, role: str):
    """The network part (``GeneratorHead`` or ``Discriminator``) an architecture describes."""
    return code(ROLES[role], architecture[ROLES[role]])(architecture, methods(architecture))


def build_trainer(config: dict):
    """A fresh Trainer for train.py's constants: both networks built (generator first, as the
    seeded initial weights expect), Adam and EWC state, and the method's other parts."""
    generator = build(generator_architecture(config), "generator")
    discriminator = build(discriminator_architecture(config), "discriminator")
    from training.training_utils import Trainer
    return Trainer.create(generator, discriminator, config,
                          **{part: bound(selector, config) for part, selector in (
                              ("reward", "reward"), ("objective", "policy_gradient"), ("pool", "discriminator_batch"),
                              ("loss", "discriminator_loss"), ("fisher", "discriminator_fisher"))},
                          fisher_rows=DISCRIMINATOR_FISHERS[config["discriminator_fisher"]].rows)
