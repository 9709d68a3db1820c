"""The size budgets and the import rule (tests/budgets.py reports them), each with a planted control."""
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


def test_no_project_module_imports_itself_through_others():
    graph = budgets.project_imports()
    assert {"utils", "training.rules", "training.model", "training.encodings"} <= set(graph)
    assert budgets.import_cycles(graph) == []


def test_a_planted_import_cycle_is_found(tmp_path):
    (tmp_path / "training").mkdir()
    (tmp_path / "utils.py").write_text("def f():\n    from training import rules\n")
    (tmp_path / "training" / "rules.py").write_text("import utils\n")
    (tmp_path / "training" / "oracle.py").write_text("from training import rules\n")
    cycles = budgets.import_cycles(budgets.project_imports(tmp_path))
    assert len(cycles) == 1 and set(cycles[0]) == {"utils", "training.rules"}
