"""rules.check and rules.parse_overrides: the one way every setting is checked."""
import pytest

from training.rules import Rule, at_least, between, check, given_names, one_of, parse_overrides
from utils import OptimusError

DEFAULTS = {"steps": 75, "lr": 1e-3, "checkpoint_dir": "training", "resume": False, "low_latent": 1,
            "loss": "focal"}
RULES = {"steps": at_least(1), "lr": between(0, 1, brackets="()"), "loss": one_of("focal", "bce")}


def parse(*argv: str) -> dict:
    return parse_overrides(list(argv), DEFAULTS, RULES)


def error_of(*argv: str) -> str:
    with pytest.raises(OptimusError) as caught:
        parse(*argv)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_no_arguments_return_a_copy_of_the_defaults():
    config = parse()
    assert config == DEFAULTS and config is not DEFAULTS


def test_integers_parse_including_underscores_and_negatives():
    assert parse("--steps=3")["steps"] == 3
    assert parse("--low_latent=1_000_000")["low_latent"] == 1_000_000
    assert parse("--low_latent=-5")["low_latent"] == -5


def test_floats_parse_and_accept_integers():
    assert parse("--lr=2.5e-4")["lr"] == 2.5e-4
    config = parse_overrides(["--lr=1"], {"lr": 0.5})
    assert config["lr"] == 1.0 and type(config["lr"]) is float


def test_bools_parse_from_literals_and_bare_flags():
    assert parse("--resume=True")["resume"] is True
    assert parse("--resume", "--resume=False")["resume"] is False


def test_strings_take_any_text_and_drop_quotes():
    assert parse("--checkpoint_dir=runs/a b")["checkpoint_dir"] == "runs/a b"
    assert parse("--checkpoint_dir=123")["checkpoint_dir"] == "123"
    assert parse("--checkpoint_dir='quoted'")["checkpoint_dir"] == "quoted"
    assert parse('--loss="bce"')["loss"] == "bce"


def test_later_override_wins_and_given_names_are_reported():
    assert parse("--steps=3", "--steps=4")["steps"] == 4
    assert given_names(["--steps=3", "--resume"]) == {"steps", "resume"}


@pytest.mark.parametrize("argv, named", [
    (["steps=3"], "--name=value"),
    (["-steps=3"], "--name=value"),
    (["--stepz=3"], "steps"),  # the suggestion
    (["--help"], "checkpoint_dir"),  # the known names
    (["--steps"], "--steps=VALUE"),
    (["--low_latent"], "low_latent"),
    (["--steps=abc"], "'abc'"),
    (["--steps=2.5"], "2.5"),
    (["--steps=True"], "True"),
    (["--lr=True"], "lr"),
    (["--lr=fast"], "'fast'"),
    (["--lr=nan"], "lr"),
    (["--resume=1"], "resume"),
    (["--resume=yes"], "'yes'"),
    (["--low_latent=[1]"], "[1]"),
    (["--steps=1e6"], "1000000.0"),  # a float, not an integer
    (["--steps=10**6"], "'10**6'"),  # not a literal
    (["--steps=-1"], "steps"),
    (["--lr=2"], "lr"),
    (["--loss=mse"], "'focal'"),
])
def test_a_bad_override_is_one_line_that_starts_with_the_token_and_names_the_problem(argv, named):
    message = error_of(*argv)
    assert message.startswith(argv[0]) and named in message


def test_check_converts_to_the_type_of_the_example():
    assert check("n", 3, 0) == 3
    assert check("x", 2, 0.5) == 2.0 and type(check("x", 2, 0.5)) is float
    assert check("flag", True, False) is True
    for bad, example in ((True, 0), (1.5, 0), ("3", 0), (1, False), (float("inf"), 0.5)):
        with pytest.raises(OptimusError, match="must be"):
            check("v", bad, example)


def test_rules_describe_their_values():
    assert between(0, 1, brackets="(]").test(1) and not between(0, 1, brackets="(]").test(0)
    assert at_least(2).allowed == "an integer >= 2"
    assert one_of("a", "b").allowed == "'a' or 'b'"
    with pytest.raises(OptimusError, match="a number in \\[0, 1\\]"):
        check("p", 2.0, 0.5, between(0, 1))
    with pytest.raises(OptimusError, match="an even number"):
        check("k", 3, 0, Rule(lambda v: v % 2 == 0, "an even number"))


def test_a_rule_that_cannot_compare_is_a_failed_check():
    with pytest.raises(OptimusError):
        check("k", "text", "x", at_least(1))
