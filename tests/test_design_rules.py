"""The developer guide's checkable code rules, read from the source text (no torch in this process; the checkers are
in ``tests/design_checks.py``).

Each rule has a test that runs its checker on the project and one that feeds the checker a small source breaking
the rule, so that no rule passes for want of a working checker. Offences are named ``path:line what``. Rules other
tests enforce already are named where they are, not checked twice:

* every ``st.cache_data`` / ``st.cache_resource`` has a ttl: ``tests/test_app_operator.py``
  (``test_every_app_cache_expires``);
* the jobs' options all have help and ``--help`` runs: ``tests/test_job_options.py``, whose ``SCRIPTS`` (the
  pre-registered summary scripts, run as ``python jobs/NAME.py`` and kept as committed) rule 7 leaves out too.
"""
from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

from tests.design_checks import (CORE_FILES, FORBIDDEN_IN_CORE, JOB_FILES, METHOD_FILES, METRIC_MODULES, MODULE_LIMIT,
                                 PAGE_LIMIT, PRODUCT_FILES, REPO, UI_FILES, assert_statements, built_sql, cache_kind,
                                 cache_offences, check_files, classes_of, config_offences, forbidden_imports,
                                 import_report, main_guard, main_offences, method_branches, method_names,
                                 metric_offences, modules_of, print_calls, registry_offences, start_import,
                                 states_a_shape, text_of, too_long, tree_of)


def _src(code: str) -> str:
    return textwrap.dedent(code).lstrip("\n")


@pytest.fixture(scope="module", autouse=True)
def core_import():
    """Importing every core module (torch included) takes most of this file's time: it starts with the file's
    first test and runs beside the source checks; the test that reads it waits for it."""
    process = start_import(modules_of(CORE_FILES), FORBIDDEN_IN_CORE, [str(REPO)])
    yield process
    if process.poll() is None:  # its test was not run
        process.kill()
        process.communicate()


# ------------------------------------------------- 1. core imports no UI or jobs (the import test is the file's last)
def test_core_imports_neither_streamlit_nor_jobs():
    assert check_files(forbidden_imports, CORE_FILES) == []


def test_the_core_import_checks_can_fail(tmp_path):
    source = _src("""
        import numpy
        def page():
            import streamlit as st
        from jobs.cli import main
        mod = importlib.import_module("streamlit.runtime")
        from core import metrics
    """)
    assert forbidden_imports(source, "core/x.py") == ["core/x.py:3 imports streamlit", "core/x.py:4 imports jobs.cli",
                                                      "core/x.py:5 imports streamlit.runtime"]
    (tmp_path / "streamlit").mkdir()  # a stand-in, so that the check needs no real Streamlit
    (tmp_path / "streamlit" / "__init__.py").write_text("", encoding="utf-8")
    (tmp_path / "fine.py").write_text("import json\n", encoding="utf-8")
    (tmp_path / "leaky.py").write_text("def f():\n    pass\nimport streamlit\n", encoding="utf-8")
    report = import_report(start_import(["fine", "leaky"], ("streamlit",), [str(tmp_path)]))
    assert report == ["importing leaky loads streamlit"]


# --------------------------------------------------------------------------------------------------- 2, 3. file sizes
def test_pages_are_under_100_lines():
    assert check_files(too_long, [f for f in UI_FILES if f.startswith("pages/")], PAGE_LIMIT) == []


def test_modules_are_at_most_400_lines():
    assert check_files(too_long, PRODUCT_FILES, MODULE_LIMIT) == []


def test_the_size_checks_can_fail():
    assert too_long("x = 1\n" * 100, "pages/p.py", PAGE_LIMIT) == ["pages/p.py:100 has 100 lines, over 99"]
    assert too_long("x = 1\n" * 99, "pages/p.py", PAGE_LIMIT) == []
    assert too_long("x = 1\n" * 401, "core/m.py", MODULE_LIMIT) == ["core/m.py:401 has 401 lines, over 400"]
    assert too_long("x = 1\n" * 400, "core/m.py", MODULE_LIMIT) == []


# --------------------------------------------------------------------------------------------- 4. no print, no assert
def test_core_logs_rather_than_prints():
    assert check_files(print_calls, CORE_FILES) == []


def test_product_code_validates_with_exceptions_not_assert():
    assert check_files(assert_statements, PRODUCT_FILES) == []


def test_the_print_and_assert_checks_can_fail():
    source = _src("""
        def f(x):
            assert x > 0, "x must be positive"
            print("x is", x)
            log.info("print(x) is fine in a string")
    """)
    assert print_calls(source, "core/f.py") == ["core/f.py:3 calls print (log instead)"]
    assert assert_statements(source, "core/f.py") == ["core/f.py:2 asserts (raise an exception with a message instead)"]


# ------------------------------------------------------------------------------------------------ 5. metric functions
# Public functions of those modules that are not metrics, and why (each must still exist: see the test below).
NOT_METRICS = {
    # argument checks the metrics share: ``name`` says which argument an error is about
    "check_matrix": "validates an array argument", "check_labels": "validates a label argument",
    "is_real_number": "a predicate on one value", "check_seed": "validates one option",
    "check_count": "validates one option", "check_level": "validates one option",
    # streaming and normalising helpers the metrics are built from, on one array named in errors
    "iter_unit_chunks": "yields chunks of one array", "unit_rows": "normalises one array",
    # core.transferability's plumbing: a model's settings, and which inputs a baseline reads from its signature
    "classifier_params": "reads a model's logit scale and bias", "baseline_input": "reads a baseline's signature",
    "baseline_call": "calls a baseline with the inputs it reads",
    "minilm_available": "says whether an optional text encoder loads",
}


def _metrics() -> list[tuple[str, str]]:
    return [(path, name) for path in METRIC_MODULES for name in metric_offences(text_of(path), path, NOT_METRICS)]


@pytest.mark.parametrize("path, name", _metrics(), ids=[f"{Path(p).stem}.{n}" for p, n in _metrics()])
def test_a_metric_takes_options_by_keyword_and_states_its_input_shapes(path, name):
    assert metric_offences(text_of(path), path, NOT_METRICS)[name] == []


def test_the_metric_list_is_derived_and_its_exemptions_exist():
    names = {name for _, name in _metrics()}
    assert {"iimm", "zero_shot_scores", "gbc", "logme", "emms", "leep", "sfda"} <= names
    public = {fn.name for path in METRIC_MODULES for fn in tree_of(path).body if isinstance(fn, ast.FunctionDef)}
    assert sorted(set(NOT_METRICS) - public) == []  # an exemption for a function that is gone


def test_the_metric_check_can_fail():
    source = _src('''
        def score(x, labels, seed=0):
            """A score of x (N, d) and labels (N,)."""
        def other(x, *, seed=0):
            """A score of x."""
        def bare(x):
            pass
        def good(x, labels, *, seed=0):
            """A score of features (N, d) and labels (N,)."""
        def check_count(value, minimum=1):
            pass
        def _private(x, k=3):
            pass
    ''')
    assert metric_offences(source, "core/metrics.py", {"check_count"}) == {
        "score": ["core/metrics.py:1 score: option 'seed' is not keyword-only (put it after *)"],
        "other": ["core/metrics.py:3 other's docstring states no input shape, e.g. (N, d)"],
        "bare": ["core/metrics.py:5 bare has no docstring"],
        "good": []}
    assert not states_a_shape("pairs (i, j), interval (lo, hi), cos(x_i, t_c), R(Z, eps), min(64, N, d)")
    assert all(states_a_shape(s) for s in ("x (N,d)", "(N, D, K)", "a vector (n,)", "labels (N,)", "a (d, d)"))


# ------------------------------------------------------------------------------------------- 6. the methods' registry
def _method_sources() -> dict[str, str]:
    return {path: text_of(path) for path in METHOD_FILES}


def test_every_method_config_validates_in_post_init():
    assert config_offences(_method_sources()) == []


def test_the_registry_is_a_mapping_to_config_and_build():
    assert registry_offences(text_of("core/methods/__init__.py"), "core/methods/__init__.py") == []
    entry = classes_of(_method_sources())["MethodEntry"][1]
    fields = {s.target.id for s in entry.body if isinstance(s, ast.AnnAssign)}
    assert {"name", "config_cls", "build"} <= fields


def test_no_code_branches_on_method_names():
    names = method_names(_method_sources(), text_of("core/methods/peft_catalogue.toml"))
    assert {"lora", "zero_shot", "bitfit", "peft_lora"} <= names
    assert check_files(method_branches, PRODUCT_FILES, names) == []


def test_the_method_checks_can_fail():
    sources = {"core/methods/base.py": _src("""
        @dataclass
        class MethodConfig:
            def __post_init__(self):
                check_types(self)
        @dataclass
        class Good(MethodConfig):
            def __post_init__(self):
                super().__post_init__()
                require(self.rank > 0, "rank must be > 0")
        @dataclass
        class Skips(Good):
            def __post_init__(self):
                require(self.rank > 0, "rank must be > 0")
        class Plain(MethodConfig):
            pass
        class Other:
            pass
        ENTRY = MethodEntry("x", Other, build, "no config")
    """)}
    assert config_offences(sources) == [
        "core/methods/base.py:14 Plain is not a dataclass",
        "core/methods/base.py:12 Skips.__post_init__ does not call super().__post_init__()",
        "core/methods/base.py:18 MethodEntry's config Other is no MethodConfig"]
    hollow = {"b.py": "@dataclass\nclass MethodConfig:\n    def __post_init__(self):\n        pass\n"}
    assert config_offences(hollow) == ["b.py:2 MethodConfig has no __post_init__ validation for its subclasses to inherit"]
    chain = _src("""
        if method == "lora":
            rank = 8
        elif method in ("bitfit", "attention"):
            rank = 0
        else:
            rank = None
        if name == "lora":
            pass
        match method:
            case "lora": pass
            case "bitfit": pass
    """)
    assert method_branches(chain, "jobs/x.py", {"lora", "bitfit", "attention"}) == [
        "jobs/x.py:1 branches on method names (2 branches); use the registry",
        "jobs/x.py:9 matches method names (2 cases); use the registry"]
    assert registry_offences("METHODS = {}\n", "m.py") == []
    assert registry_offences("def get(n):\n    if n == 'lora':\n        return 1\nMETHODS = get\n", "m.py") == [
        "m.py:4 METHODS is not built as a dict"]


# ---------------------------------------------------------------------------------------------- 7. a job's main(argv)
def test_every_job_command_has_main_argv():
    assert check_files(main_offences, JOB_FILES) == []
    commands = [f for f in JOB_FILES if main_guard(tree_of(f)) is not None and "def main(" in text_of(f)]
    assert len(commands) > 20


def test_the_main_check_can_fail():
    refuses = 'if __name__ == "__main__":\n    from jobs.cli import not_a_command\n\n    not_a_command("jobs.grid_options", "y")\n'
    assert main_offences("def helper():\n    pass\n" + refuses, "jobs/x.py") == []
    assert main_offences("def run():\n    pass\nif __name__ == '__main__':\n    run()\n", "jobs/x.py") == [
        "jobs/x.py:3 runs as a command but defines no main(argv: list[str] | None = None)"]
    assert main_offences("def main():\n    pass\nif __name__ == '__main__':\n    main()\n", "jobs/x.py") == [
        "jobs/x.py:1 main is not main(argv: list[str] | None = None)"]
    good = "def main(argv: list[str] | None = None) -> int:\n    return 0\nif __name__ == '__main__':\n    main()\n"
    assert main_offences(good, "jobs/x.py") == []


# ---------------------------------------------------------------------------------------- 8. the app's SQL and caches
# st.cache_resource holding data rather than a model, and why (each must still exist: see the test below).
RESOURCE_DATA = {
    # one read-only frame of the whole store, held by reference: copying it out of cache_data on every rerun
    # costs more than any query, and every table derived from it is cache_data (app.py's comment)
    ("app.py", "_store_runs"), ("app.py", "_verified_runs")}


def test_the_app_builds_no_sql_from_values():
    assert check_files(built_sql, UI_FILES) == []


def test_the_app_caches_models_as_resources_and_data_as_data():
    assert check_files(cache_offences, UI_FILES, RESOURCE_DATA) == []
    defined = {(path, fn.name) for path in UI_FILES for fn in ast.walk(tree_of(path))
               if isinstance(fn, ast.FunctionDef) and cache_kind(fn) == "cache_resource"}
    assert sorted(RESOURCE_DATA - defined) == []  # an exemption for a cache that is gone


def test_the_app_checks_can_fail():
    source = _src("""
        def runs(con, method):
            con.execute(f"SELECT * FROM runs WHERE method = '{method}'")
            con.sql("SELECT * FROM runs WHERE seed = %d" % 3)
            q = "SELECT * FROM runs WHERE method = '{}'".format(method)
            con.query(q)
            con.execute("SELECT * FROM runs WHERE method = ?", [method])
            frame.query("seed > 0")
    """)
    assert built_sql(source, "pages/p.py") == ["pages/p.py:2 .execute() is given SQL built from values",
                                               "pages/p.py:3 .sql() is given SQL built from values",
                                               "pages/p.py:5 .query() is given SQL built from values"]
    caches = _src("""
        @st.cache_data(ttl=60)
        def model(key):
            return load_model(key)
        @st.cache_resource(ttl=60)
        def table(path):
            return pd.read_csv(path)
        @st.cache_resource(ttl=60)
        def loaded_model(key):
            return load_model(key)
        def page(key):
            return load_model(key)
    """)
    assert cache_offences(caches, "pages/p.py", set()) == [
        "pages/p.py:2 model is cache_data but loads a model (use st.cache_resource)",
        "pages/p.py:5 table is cache_resource but holds no model (use st.cache_data)",
        "pages/p.py:11 loads a model outside st.cache_resource"]


# ------------------------------------------------------------- 1 (continued), last: it waits for core_import
def test_importing_every_core_module_leaves_streamlit_and_jobs_unloaded(core_import):
    modules = modules_of(CORE_FILES)
    assert len(modules) > 50 and "core.metrics" in modules and "core.store" in modules
    assert import_report(core_import) == []
