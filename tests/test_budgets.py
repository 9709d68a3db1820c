"""The size budgets that hold (tests/budgets.py reports all three), each with a planted control."""
import budgets


def test_no_file_or_function_of_the_project_is_over_its_budget():
    total, files, functions = budgets.report()
    assert total > 0 and files == {} and functions == {}


def test_a_planted_long_function_is_found(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(budgets.FUNCTION_LINES))
    (tmp_path / "long.py").write_text(f"def long():\n{body}\n\n\ndef short():\n    return 1\n")
    assert budgets.long_functions(tmp_path / "long.py") == [("long", budgets.FUNCTION_LINES + 1)]


def test_a_planted_long_file_is_found(monkeypatch, tmp_path):
    (tmp_path / "long.py").write_text("x = 1\n" * (budgets.FILE_LINES + 1))
    (tmp_path / "short.py").write_text("x = 1\n")
    monkeypatch.setattr(budgets, "ROOT", tmp_path)
    total, files, _ = budgets.report()
    assert total == budgets.FILE_LINES + 2 and list(files) == [tmp_path / "long.py"]


def test_code_lines_leave_out_docstrings_comments_and_blank_lines(tmp_path):
    (tmp_path / "m.py").write_text('"""Module.\n\nMore."""\nimport os\n\n\ndef f():\n    """One."""\n'
                                   '    # why\n    return os.sep  # inline comments stay code\n')
    assert budgets.code_lines(tmp_path / "m.py") == 3  # import, def, return
    (tmp_path / "s.py").write_text('x = """not a docstring\n"""\n')
    assert budgets.code_lines(tmp_path / "s.py") == 2
