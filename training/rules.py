"""The constants' rules: what each setting may be, checking and coercing a value, the scripts'
--name=value overrides and their --help pages (each constant's comment in its script)."""
import ast
import dataclasses
import difflib
import math
import re
import textwrap
from fractions import Fraction
from collections.abc import Callable, Mapping, Sequence

import numpy as np

import utils


@dataclasses.dataclass(frozen=True)
class Rule:
    """What a setting may be beyond its type: a test of the value, and the words for it."""
    test: Callable[[object], bool]
    allowed: str


def at_least(low, kind: str = "an integer") -> Rule:
    """Values >= low."""
    return Rule(lambda v: v >= low, f"{kind} >= {low}")


def between(low, high, kind: str = "a number", brackets: str = "[]") -> Rule:
    """Values in the interval between low and high; brackets "[]", "(]", "[)" or "()"."""
    closed_low, closed_high = brackets[0] == "[", brackets[1] == "]"
    return Rule(lambda v: (low <= v if closed_low else low < v) and (v <= high if closed_high else v < high),
                f"{kind} in {brackets[0]}{low}, {high}{brackets[1]}")


def fractions(text: str) -> tuple:
    """The numbers of a text of fractions and integers, separated by spaces: "0 1/2 2/5" -> (0.0, 0.5, 0.4)."""
    return tuple(float(Fraction(word)) for word in text.split())


def fractions_between(low, high, most: int) -> Rule:
    """Texts of 1 to ``most`` fractions (``fractions``), each in [low, high]."""
    def test(text):
        try:
            values = fractions(text)
        except (ValueError, ZeroDivisionError):
            return False
        return 0 < len(values) <= most and all(low <= v <= high for v in values)
    return Rule(test, f"1 to {most} fractions in [{low}, {high}] separated by spaces, as \"0 1/2 1/3\"")


def one_of(*choices) -> Rule:
    """One of the given values."""
    return Rule(lambda v: v in choices, " or ".join(repr(c) for c in choices))


def _type_text(example: object) -> str:
    """What a value must be to replace ``example``, for error messages."""
    if isinstance(example, bool):
        return "True or False"
    if isinstance(example, int):
        return "an integer"
    if isinstance(example, float):
        return "a number"
    return f"a {type(example).__name__}"


def _coerce(value: object, example: object) -> tuple[bool, object]:
    """(ok, value converted to the example's type); an int may stand for a float."""
    if isinstance(example, bool) or isinstance(value, (bool, np.bool_)):
        return isinstance(value, (bool, np.bool_)) and isinstance(example, bool), bool(value)
    if isinstance(example, int):
        return isinstance(value, (int, np.integer)), int(value) if isinstance(value, (int, np.integer)) else value
    if isinstance(example, float) and isinstance(value, (int, float, np.integer, np.floating)):
        try:
            return math.isfinite(float(value)), float(value)
        except OverflowError:
            return False, value
    return type(value) is type(example), value


def check(name: str, value: object, example: object, rule: Rule | None = None) -> object:
    """``value`` with the type of ``example`` (an int may stand for a float), passing ``rule``: the
    one check of every setting. Raises utils.OptimusError "<name> must be <allowed> (got ...)"."""
    ok, converted = _coerce(value, example)
    if ok and rule is not None:
        try:
            ok = bool(rule.test(converted))
        except TypeError:
            ok = False
    if not ok:
        allowed = rule.allowed if rule is not None else _type_text(example)
        raise utils.OptimusError(f"{name} must be {allowed} (got {type(value).__name__} {value!r})")
    return converted


def parse_overrides(argv: Sequence[str], defaults: Mapping[str, object],
                    rules: Mapping[str, Rule] | None = None) -> dict:
    """Apply nanoGPT-style ``--name=value`` overrides to ``defaults``; returns a new dict.

    A value is read with ast.literal_eval (raw text if not a literal; a str default takes any
    text), then ``check``ed against the default's type and the name's rule: 10**6 and 1e6 do not
    replace an int. A bare ``--name`` means True for a bool. Raises utils.OptimusError, one line.
    """
    rules = rules or {}
    config = dict(defaults)
    for token in argv:
        if not token.startswith("--"):
            raise utils.OptimusError(f"{token}: expected --name=value")
        name, has_value, text = token[2:].partition("=")
        if name not in defaults:
            close = difflib.get_close_matches(name, list(defaults), n=1)
            hint = f" (did you mean {close[0]}?)" if close else f" (known: {', '.join(defaults)})"
            raise utils.OptimusError(f"{token}: unknown constant {name!r}{hint}")
        default = defaults[name]
        if not has_value:
            if not isinstance(default, bool):
                allowed = rules[name].allowed if name in rules else _type_text(default)
                raise utils.OptimusError(f"{token}: give a value, as --{name}=VALUE ({name} must be {allowed})")
            value = True
        elif isinstance(default, str):
            value = text[1:-1] if len(text) > 1 and text[0] == text[-1] and text[0] in "'\"" else text
        else:
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                value = text
        try:
            config[name] = check(name, value, default, rules.get(name))
        except utils.OptimusError as err:
            raise utils.OptimusError(f"{token}: {err}") from None
    return config


HELP_FLAGS = ("--help", "-h")
HELP_WIDTH = 96                 # characters per line of a --help page


def wants_help(argv: Sequence[str]) -> bool:
    """Whether the command line asks for the usage (``--help`` or ``-h``)."""
    return any(token in HELP_FLAGS for token in argv)


def constant_docs(path) -> dict:
    """{name: meaning} from a script's block of constants: the comment after each ``name = value``
    line, with the comment lines that continue it (indented, starting with #)."""
    docs, current = {}, None
    for line in open(path, encoding="utf-8").read().splitlines():
        head = re.match(r"^([a-z_][a-z0-9_]*) = .*?\s#\s?(.*)$", line)
        more = re.match(r"^\s+#\s?(.*)$", line)
        if head:
            current = head.group(1)
            docs[current] = head.group(2).strip()
        elif more and current:
            docs[current] += " " + more.group(1).strip()
        else:
            current = None
    return docs


def table_docs(path) -> dict:
    """{selector constant: {value: doc}} of a registry's tables, read from its source without
    running it (--help answers before any of the project's modules is imported): its
    ``TABLES = {constant: TABLE_NAME, ...}`` and each ``TABLE_NAME = {value: Method("doc", ...), ...}``."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    assigned = {node.targets[0].id: node.value for node in tree.body
                if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)}
    return {constant.value: {value.value: entry.args[0].value
                             for value, entry in zip(assigned[table.id].keys, assigned[table.id].values)}
            for constant, table in zip(assigned["TABLES"].keys, assigned["TABLES"].values)}


def help_text(usage: str, defaults: Mapping[str, object], docs: Mapping[str, str],
              choices: Mapping[str, Mapping[str, str]] | None = None) -> str:
    """The ``--help`` page: the usage, then every constant with its default and meaning, and
    for a selector constant in ``choices`` each of its values with its meaning."""
    lines = [usage, "", "constants, each overridden as --name=value (default, then meaning):"]
    for name, default in defaults.items():
        lines.append(f"  --{name} = {default!r}")
        if docs.get(name):
            lines += textwrap.wrap(docs[name], HELP_WIDTH, initial_indent=" " * 6, subsequent_indent=" " * 6)
        for value, meaning in (choices or {}).get(name, {}).items():
            lines += textwrap.wrap(f'"{value}": {meaning}', HELP_WIDTH, initial_indent=" " * 8,
                                   subsequent_indent=" " * 10)
    return "\n".join(lines)


def print_help(usage: str, defaults: Mapping[str, object], docs: Mapping[str, str],
               choices: Mapping[str, Mapping[str, str]] | None = None) -> int:
    """Print ``help_text`` on stdout: exit status 0, or 2 if stdout is closed (``utils.output_failed``)."""
    try:
        print(help_text(usage, defaults, docs, choices), flush=True)
    except OSError as err:
        return utils.output_failed(err)
    return 0


def given_names(argv: Sequence[str]) -> set:
    """The names that ``--name=value`` arguments set (after ``parse_overrides`` accepted them)."""
    return {token[2:].partition("=")[0] for token in argv}
