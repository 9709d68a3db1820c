"""The size budgets that hold (tests/budgets.py reports all of them), with a planted control."""
import budgets


def test_no_function_of_the_project_is_longer_than_its_budget():
    assert budgets.project_files() and budgets.report()[2] == {}


def test_a_planted_long_function_is_found(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(budgets.FUNCTION_LINES))
    (tmp_path / "long.py").write_text(f"def long():\n{body}\n\n\ndef short():\n    return 1\n")
    assert budgets.long_functions(tmp_path / "long.py") == [("long", budgets.FUNCTION_LINES + 1)]
