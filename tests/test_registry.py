"""The method registry: every combination it supports trains, saves and resumes; every one it
refuses is refused in one line; train.py's rules and checks are the registry's.

The combinations come from the registry itself, so a new entry is covered without editing this file.
"""
import itertools
from pathlib import Path

import numpy as np
import pytest

import utils
from training import rules
from support import error_line
from training import checkpoint, encodings, registry, train

DEFAULT = train.parse_config([])
SELECTORS = set(registry.TABLES)
STORED = {k for table in registry.TABLES.values() for entry in table.values() for k in entry.stores} & SELECTORS
SIDES = [set(registry.generator_architecture(DEFAULT)) & SELECTORS | STORED,   # what a weight file
         set(registry.discriminator_architecture(DEFAULT)) & SELECTORS | STORED]  # records, or may
ARCHITECTURES = (registry.generator_architecture, registry.discriminator_architecture)
NETWORK_SELECTORS = [c for c in registry.TABLES if c in SIDES[0] | SIDES[1]]
TINY = {"batch_size": 64, "steps": 2, "generator_steps": 1, "nb_samples": 4, "test_samples": 40,
        "minimum_batch_size": 10}


def argv_of(choice: dict, extra: dict = TINY) -> list:
    """``--name=value`` arguments for the selectors in ``choice``, plus those of ``extra`` that the
    chosen parts read (a constant no chosen part reads would be refused)."""
    argv = [f"--{name}={value}" for name, value in choice.items()]
    config = rules.parse_overrides(argv, train.DEFAULTS, train.RULES)
    read = {name for cls in registry.chosen(config).values() for name in cls.reads}
    method_specific = set(registry.readers())
    return argv + [f"--{name}={value}" for name, value in extra.items()
                   if name not in method_specific or name in read]


def network_combinations() -> tuple:
    """(supported, refused): every assignment of the network selectors' registered values that the
    chosen parts read (a generator input only for a head that reads one), split by parse_config."""
    supported, refused, seen = [], [], set()
    for values in itertools.product(*(registry.TABLES[c] for c in NETWORK_SELECTORS)):
        choice = dict(zip(NETWORK_SELECTORS, values))
        config = rules.parse_overrides(argv_of(choice, {}), train.DEFAULTS, train.RULES)
        chosen = registry.chosen(config)
        choice = {name: value for name, value in choice.items() if name in chosen}
        key = tuple(sorted(choice.items()))
        if key in seen:
            continue
        seen.add(key)
        try:
            train.parse_config(argv_of(choice))
            supported.append(choice)
        except utils.OptimusError:
            refused.append(choice)
    return supported, refused


SUPPORTED, REFUSED = network_combinations()


def recorded(choice: dict) -> set:
    """The selectors each weight file of ``choice`` records: {(0 generator / 1 discriminator, items)}."""
    config = rules.parse_overrides(argv_of(choice, {}), train.DEFAULTS, train.RULES)
    return {(i, tuple(sorted((k, v) for k, v in architecture(config).items() if k in SELECTORS)))
            for i, architecture in enumerate(ARCHITECTURES)}


def covering(combinations: list) -> list:
    """Supported combinations, nearest the default first, until each generator side (its chosen
    head, input, acceptance) and each discriminator side has trained once: the two networks are
    built, saved and loaded apart, and the batch step reads each only through its model."""
    def changes(choice):
        return sum(DEFAULT[name] != value for name, value in choice.items())
    seen, chosen = set(), []
    for choice in sorted(combinations, key=changes):
        sides = recorded(choice)
        if not sides <= seen:
            seen |= sides
            chosen.append(choice)
    return chosen


OTHERS = {c: list(table) for c, table in registry.TABLES.items() if c not in NETWORK_SELECTORS}
OTHER_PARTS = [{c: values[i % len(values)] for c, values in OTHERS.items()}  # every value of each,
               for i in range(max(map(len, OTHERS.values())))]             # with the default networks
TRAINED = covering(SUPPORTED) + [c for c in OTHER_PARTS if any(DEFAULT[k] != v for k, v in c.items())]


def label(choice: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in choice.items())


def test_the_registry_offers_several_combinations_and_refuses_some():
    assert len(SUPPORTED) >= 8 and len(REFUSED) >= 2
    assert {name: DEFAULT[name] for name in SIDES[0] | SIDES[1] if name in registry.chosen(DEFAULT)} in SUPPORTED


def test_the_trained_combinations_cover_every_registered_part():
    for c, table in registry.TABLES.items():
        assert {choice.get(c, DEFAULT[c]) for choice in TRAINED} == set(table), c
    trained = set().union(*(recorded(t) for t in TRAINED if set(t) & set(NETWORK_SELECTORS)))
    for choice in SUPPORTED:  # and every side of every supported combination
        assert recorded(choice) <= trained, choice


@pytest.fixture
def run_main(monkeypatch, capsys):
    """train.main in-process, without turning TensorFlow's op determinism on for the session."""
    import tensorflow as tf
    monkeypatch.setattr(tf.config.experimental, "enable_op_determinism", lambda: None)

    def run(argv):
        status = train.main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return status, out, err
    return run


@pytest.mark.slow
@pytest.mark.parametrize("choice", TRAINED, ids=label)
def test_every_supported_combination_builds_trains_saves_and_reloads(choice, tmp_path, run_main):
    folder = tmp_path / "run"
    argv = [*argv_of(choice), f"--checkpoint_dir={folder}", "--nb_batches=2"]
    status, out, err = run_main(argv)
    assert status == 0, err
    state = checkpoint.read_state(folder)
    assert state["batch"] == 2 and state["tests"][-1]["batch"] == 2
    assert np.isfinite(state["tests"][-1]["beyond"]["score"])
    config = train.parse_config(argv)
    assert all(config[name] == value for name, value in choice.items())
    # reloaded in code from the files alone, and as a whole trainer (the resume path)
    generator, discriminator = checkpoint.load_networks(folder)
    assert generator.architecture == registry.generator_architecture(config)
    assert discriminator.architecture == registry.discriminator_architecture(config)
    x = generator.outputs(np.arange(1, 65))
    p = discriminator.beliefs(x)
    assert x.shape == p.shape == (64,) and np.all((p >= 0) & (p <= 1))
    trainer = registry.build_trainer(config)
    checkpoint.load(folder, trainer)
    np.testing.assert_array_equal(trainer.generator.outputs(np.arange(1, 65)), x)
    np.testing.assert_array_equal(trainer.discriminator.beliefs(x), p)


@pytest.mark.parametrize("choice", REFUSED, ids=label)
def test_every_combination_the_registry_refuses_is_one_line_before_anything_is_written(
        choice, tmp_path, run_main):
    folder = tmp_path / "unused"
    status, out, err = run_main([*argv_of(choice), f"--checkpoint_dir={folder}"])
    assert status == 2 and out == ""
    line = error_line(err)
    assert any(f"--{name}" in line for name in choice)  # it names the part that refuses
    assert not folder.exists()


def test_train_rules_offer_exactly_the_registered_values():
    for c, table in registry.TABLES.items():
        for value in table:
            assert train.RULES[c].test(value)
        assert not train.RULES[c].test("no-such-part")


def test_train_defaults_have_the_types_the_registry_checks_in_weight_files():
    for name, (kind, rule) in registry.PARAMETERS.items():
        assert type(train.DEFAULTS[name]) is kind and rule.test(train.DEFAULTS[name]), name
    for c, table in registry.TABLES.items():
        assert train.DEFAULTS[c] in table, c


def test_a_resume_keeps_every_selector_and_every_key_a_weight_file_records():
    recorded = set()
    for choice in SUPPORTED:
        config = train.parse_config(argv_of(choice))
        recorded |= set(registry.generator_architecture(config))
        recorded |= set(registry.discriminator_architecture(config))
    assert recorded <= set(train.METHOD_CONSTANTS)
    assert set(registry.TABLES) <= set(train.METHOD_CONSTANTS)


def test_a_constant_that_no_chosen_part_reads_is_refused_naming_who_reads_it():
    for name, parts in registry.readers().items():
        default_config = train.parse_config([])
        if name in {n for cls in registry.chosen(default_config).values() for n in cls.reads}:
            continue
        value = train.DEFAULTS[name]
        with pytest.raises(utils.OptimusError, match=f"--{name}: {name} acts only with") as refused:
            train.parse_config([f"--{name}={value}"])
        assert all(f"{constant}={value!r}" in str(refused.value) for constant, value in parts)


def test_help_lists_every_value_of_every_table_with_its_doc(capsys):
    """--help reads the tables from the registry's source (no TensorFlow): exactly the values and
    docs that the imported tables hold."""
    read = rules.table_docs(train.REGISTRY)
    assert read == {c: {v: m.doc for v, m in table.items()} for c, table in registry.TABLES.items()}
    assert train.main(["--help"]) == 0
    page = capsys.readouterr().out
    for constant, table in registry.TABLES.items():
        section = page.split(f"  --{constant} = ")[1].split("\n  --")[0]
        for value in table:
            assert f'"{value}": ' in section, (constant, value)


def test_a_new_table_entry_appears_in_help_and_a_removed_one_does_not(tmp_path):
    source = open(train.REGISTRY).read()
    planted = source.replace('REWARDS = {', 'REWARDS = {\n    "halved": Method("half of D(x): a planted entry", lambda p, log_pi: p / 2),', 1)
    removed = source.replace('    "constant": Method("0: the negative control', '    "zero": Method("0: the negative control', 1)
    for name, text in (("planted.py", planted), ("removed.py", removed)):
        (tmp_path / name).write_text(text)
    rewards = rules.table_docs(tmp_path / "planted.py")["reward"]
    assert rewards["halved"] == "half of D(x): a planted entry" and "constant" in rewards
    renamed = rules.table_docs(tmp_path / "removed.py")["reward"]
    assert "constant" not in renamed and "zero" in renamed


def test_a_generator_input_without_integer_features_is_refused_when_the_tables_are_built(monkeypatch):
    registry._check_tables()  # the shipped tables pass

    class DigitsOfX(encodings.Encoding):  # a layer only: no features computed from integers
        pass
    monkeypatch.setitem(registry.GENERATOR_INPUTS, "digits_of_x",
                        registry.Method("a planted input", DigitsOfX, per_candidate=True))
    with pytest.raises(TypeError, match="generator_input='digits_of_x'.*window_features"):
        registry._check_tables()
    monkeypatch.setitem(registry.GENERATOR_INPUTS, "digits_of_x",
                        registry.Method("the same with the features", encodings.Bits, per_candidate=True))
    registry._check_tables()


# -- the README's worked example: a new discriminator input, one class and one table entry --------

def readme_example() -> str:
    """The README's python block of "Where a new method goes", as printed."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    start = text.index("```python\n", text.index("**Where a new method goes.**")) + len("```python\n")
    return text[start:text.index("```", start)]


@pytest.mark.slow
def test_the_readmes_example_adds_a_discriminator_input_in_one_entry(monkeypatch, tmp_path, run_main):
    """The README's block, run as printed against the real tables: the value trains, saves and
    reloads, and without its entry it is refused. (That an entry written in the registry's file
    appears in --help is ``test_a_new_table_entry_appears_in_help_and_a_removed_one_does_not``.)"""
    import keras
    from training import model
    layers, inputs = dict(model.ENCODING_LAYERS), dict(registry.DISCRIMINATOR_INPUTS)
    monkeypatch.setattr(model, "ENCODING_LAYERS", layers)
    monkeypatch.setattr(registry, "DISCRIMINATOR_INPUTS", inputs)
    monkeypatch.setitem(registry.TABLES, "discriminator_input", inputs)
    exec(readme_example(), {"Encoding": encodings.Encoding, "keras": keras, "Method": registry.Method,
                            "ENCODING_LAYERS": layers, "DISCRIMINATOR_INPUTS": inputs})
    assert "ternary" in registry.DISCRIMINATOR_INPUTS
    # train.py builds its rules from the tables when imported: as it would from the edited file
    monkeypatch.setitem(train.RULES, "discriminator_input", registry.method_rules()["discriminator_input"])
    config = train.parse_config(["--discriminator_input=ternary"])
    assert config["discriminator_input"] == "ternary"
    folder = tmp_path / "run"
    argv = [*argv_of({"discriminator_input": "ternary"}), f"--checkpoint_dir={folder}", "--nb_batches=1"]
    status, out, err = run_main(argv)
    assert status == 0, err
    _, discriminator = checkpoint.load_networks(folder)
    assert discriminator.architecture["discriminator_input"] == "ternary"
    assert registry.ceiling(config) is None  # it shows no residues: no ceiling claimed
    # without the entry the value is refused in one line, as any unknown one
    del inputs["ternary"]
    monkeypatch.setitem(train.RULES, "discriminator_input", registry.method_rules()["discriminator_input"])
    status, out, err = run_main(["--discriminator_input=ternary", f"--checkpoint_dir={tmp_path / 'no'}"])
    assert status == 2 and "--discriminator_input=ternary: discriminator_input must be" in error_line(err)


def test_every_generator_head_has_its_batch_step():
    """training_utils.BATCHES picks the step of each head's method (train.py's run_batch)."""
    from training import training_utils as tu
    assert set(tu.BATCHES) == set(registry.GENERATOR_HEADS)
    assert tu.BATCHES["offset"] is tu.score_function_batch and tu.BATCHES["real"] is tu.pathwise_batch


def test_every_encoding_a_table_chooses_has_its_layer():
    """An input's encoding (encodings.py) and the layer that reads it in a network (model.py) are
    joined by model.ENCODING_LAYERS; an input whose class is missing there fails here."""
    from training import model
    chosen = {entry.build for table in (registry.DISCRIMINATOR_INPUTS, registry.GENERATOR_INPUTS)
              for entry in table.values()} - {encodings.DiscriminatorFeatures}
    assert chosen and chosen <= set(model.ENCODING_LAYERS)


def test_every_table_entry_resolves_to_its_code_and_no_code_is_named_by_a_string():
    """The registry documents; the modules that define the code hold tables of the same names. An
    entry missing on either side, or one that names code by a string, fails here, not in a run."""
    tables = registry.code_tables()
    for selector, table in registry.TABLES.items():
        for value, entry in table.items():
            assert not isinstance(entry.build, str), f"{selector}={value!r} names its code by a string"
            if selector in tables:
                assert entry.build is None and value in tables[selector], f"{selector}={value!r}"
                assert registry.code(selector, value) is tables[selector][value]
        if selector in tables:
            assert set(tables[selector]) == set(table), selector
            assert all(callable(c) for v, c in tables[selector].items() if (selector, v) != ("reader", "digits"))


def test_a_misspelt_or_missing_code_entry_is_caught(monkeypatch):
    from training import training_utils
    monkeypatch.setitem(training_utils.REWARDS, "entropi", training_utils.entropy_reward)
    monkeypatch.delitem(training_utils.REWARDS, "entropy")
    with pytest.raises(AssertionError, match="reward"):
        test_every_table_entry_resolves_to_its_code_and_no_code_is_named_by_a_string()
