"""Tests for utils.parse_overrides, the scripts' `--name=value` command-line overrides."""

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root holds utils.py

from utils import OptimusError, parse_overrides  # noqa: E402

DEFAULTS = {"steps": 75, "lr": 1e-3, "checkpoint_dir": "training", "resume": False, "low_latent": 1}
CHECKS = {
    "steps": (lambda v: v >= 1, "an integer >= 1"),
    "lr": (lambda v: 0 < v < 1, "a number in (0, 1)"),
}


def parse(*argv: str) -> dict:
    return parse_overrides(list(argv), DEFAULTS, CHECKS)


def error_of(*argv: str) -> str:
    with pytest.raises(OptimusError) as caught:
        parse(*argv)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_no_arguments_return_a_copy_of_the_defaults():
    config = parse()
    assert config == DEFAULTS and config is not DEFAULTS


def test_overrides_do_not_touch_the_defaults():
    parse("--steps=3")
    assert DEFAULTS["steps"] == 75


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
    assert parse("--resume")["resume"] is True


def test_strings_take_any_text():
    assert parse("--checkpoint_dir=runs/a b")["checkpoint_dir"] == "runs/a b"
    assert parse("--checkpoint_dir=123")["checkpoint_dir"] == "123"
    assert parse("--checkpoint_dir='quoted'")["checkpoint_dir"] == "quoted"
    assert parse("--checkpoint_dir=")["checkpoint_dir"] == ""


def test_later_override_wins():
    assert parse("--steps=3", "--steps=4")["steps"] == 4


def test_checks_are_optional():
    assert parse_overrides(["--steps=-1"], DEFAULTS)["steps"] == -1


def test_token_without_dashes_is_rejected():
    assert error_of("steps=3") == "steps=3: expected --name=value"
    assert "expected --name=value" in error_of("-steps=3")


def test_unknown_name_is_rejected_with_a_suggestion():
    assert error_of("--stepz=3") == "--stepz=3: unknown constant 'stepz' (did you mean steps?)"


def test_unknown_name_without_close_match_lists_the_known_names():
    message = error_of("--help")
    assert message.startswith("--help: unknown constant 'help'")
    assert all(name in message for name in DEFAULTS)


def test_missing_value_is_rejected_unless_bool():
    assert error_of("--steps") == "--steps: give a value, as --steps=VALUE (steps must be an integer >= 1)"
    assert "low_latent must be an integer" in error_of("--low_latent")


@pytest.mark.parametrize(
    "token, expected",
    [
        ("--steps=abc", "--steps=abc: steps must be an integer >= 1 (got str 'abc')"),
        ("--steps=2.5", "--steps=2.5: steps must be an integer >= 1 (got float 2.5)"),
        ("--steps=True", "--steps=True: steps must be an integer >= 1 (got bool True)"),
        ("--lr=True", "--lr=True: lr must be a number in (0, 1) (got bool True)"),
        ("--lr=fast", "--lr=fast: lr must be a number in (0, 1) (got str 'fast')"),
        ("--resume=1", "--resume=1: resume must be True or False (got int 1)"),
        ("--resume=yes", "--resume=yes: resume must be True or False (got str 'yes')"),
        ("--low_latent=[1]", "--low_latent=[1]: low_latent must be an integer (got list [1])"),
    ],
)
def test_wrong_type_is_rejected_naming_the_allowed_values(token, expected):
    assert error_of(token) == expected


def test_exponent_and_expression_values_do_not_replace_an_integer():
    # literal_eval reads 1e6 as a float and cannot evaluate 10**6: both are refused for an int
    assert error_of("--steps=1e6") == "--steps=1e6: steps must be an integer >= 1 (got float 1000000.0)"
    assert error_of("--steps=10**6") == "--steps=10**6: steps must be an integer >= 1 (got str '10**6')"


def test_failed_check_is_rejected_naming_the_allowed_values():
    assert error_of("--steps=-1") == "--steps=-1: steps must be an integer >= 1"
    assert error_of("--lr=2") == "--lr=2: lr must be a number in (0, 1)"


def test_error_message_names_the_token_verbatim():
    assert re.match(r"--steps=0: ", error_of("--steps=0"))
