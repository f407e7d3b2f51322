"""Checkers of the developer guide's code rules, for ``tests/test_design_rules.py``: each reads source text with
``ast`` (no project module is imported) and returns the offences it finds as ``path:line what``."""
from __future__ import annotations

import ast
import functools
import os
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# The app's own files: the pages, the entry script and the two page helpers beside it (rules 2 and 8).
UI_FILES = ["app.py", "forecast_ui.py", "page_waits.py", "ranking_ui.py",
            *sorted(f"pages/{p.name}" for p in (REPO / "pages").glob("*.py"))]
# Product code: everything but tests/ (serve.py starts the app).
PRODUCT_FILES = sorted({*(str(p.relative_to(REPO)) for d in ("core", "jobs", "pages")
                          for p in (REPO / d).rglob("*.py")), "app.py", "forecast_ui.py", "page_waits.py",
                         "ranking_ui.py", "serve.py"})
CORE_FILES = [f for f in PRODUCT_FILES if f.startswith("core/")]


@functools.cache
def text_of(path: str) -> str:
    return (REPO / path).read_text(encoding="utf-8")


@functools.cache
def _parse(source: str) -> ast.Module:
    """The tree of ``source``, parsed once for every checker (none changes it)."""
    return ast.parse(source)


def tree_of(path: str) -> ast.Module:
    return _parse(text_of(path))


def check_files(checker, paths, *args) -> list[str]:
    """Every offence ``checker(source, path, *args)`` finds in ``paths``."""
    return [offence for path in paths for offence in checker(text_of(path), path, *args)]


def dotted(node: ast.AST) -> str:
    """``a.b.c`` for a Name/Attribute chain, '' otherwise."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


# ----------------------------------------------------------------------------------- 1. core imports no UI or jobs
FORBIDDEN_IN_CORE = ("streamlit", "jobs")


def forbidden_imports(source: str, path: str, forbidden=FORBIDDEN_IN_CORE) -> list[str]:
    """Static imports of ``forbidden`` packages anywhere in the file (functions and TYPE_CHECKING blocks included),
    and ``importlib.import_module`` / ``__import__`` of them by a literal name."""
    found = []
    for node in ast.walk(_parse(source)):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Call) and dotted(node.func) in ("importlib.import_module", "import_module",
                                                                    "__import__") and node.args \
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            names = [node.args[0].value]
        found += [(node.lineno, f"{path}:{node.lineno} imports {n}") for n in names if n.split(".")[0] in forbidden]
    return [text for _, text in sorted(found)]


def modules_of(paths: list[str]) -> list[str]:
    """Dotted module names of the files (``core/store/__init__.py`` -> ``core.store``)."""
    names = []
    for path in paths:
        parts = Path(path).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


_IMPORTER = textwrap.dedent("""
    import importlib, sys
    modules, forbidden = sys.argv[1].split(","), sys.argv[2].split(",")
    seen = set()
    for name in modules:
        importlib.import_module(name)
        for bad in forbidden:
            if bad in sys.modules and bad not in seen:
                seen.add(bad)
                print(f"importing {name} loads {bad}")
""")


def start_import(modules: list[str], forbidden: tuple[str, ...], pythonpath: list[str]) -> subprocess.Popen:
    """A fresh interpreter importing ``modules`` one by one; it prints, for each forbidden module that is in
    sys.modules afterwards, the module whose import first brought it in (:func:`import_report`)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(pythonpath)}
    return subprocess.Popen([sys.executable, "-c", _IMPORTER, ",".join(modules), ",".join(forbidden)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def import_report(process: subprocess.Popen) -> list[str]:
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err[-2000:]
    return out.splitlines()


# ----------------------------------------------------------------------------------------------- 2, 3. file sizes
PAGE_LIMIT = 99  # "under 100 lines"
MODULE_LIMIT = 400  # "at or under 400 lines"


def too_long(source: str, path: str, limit: int) -> list[str]:
    lines = len(source.splitlines())
    return [f"{path}:{lines} has {lines} lines, over {limit}"] if lines > limit else []


# --------------------------------------------------------------------------------------- 4. no print, no assert
def print_calls(source: str, path: str) -> list[str]:
    return [f"{path}:{n.lineno} calls print (log instead)" for n in ast.walk(_parse(source))
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "print"]


def assert_statements(source: str, path: str) -> list[str]:
    return [f"{path}:{n.lineno} asserts (raise an exception with a message instead)"
            for n in ast.walk(_parse(source)) if isinstance(n, ast.Assert)]


# ------------------------------------------------------------------------------------------- 5. metric functions
METRIC_MODULES = ["core/metrics.py", "core/metric_checks.py",
                  *sorted(str(p.relative_to(REPO)) for p in (REPO / "core/transferability").glob("*.py")
                          if not p.name.startswith("_") or p.name == "__init__.py")]
_DIM = re.compile(r"[A-Za-z](?:_[a-z])?|\d+")


def states_a_shape(doc: str) -> bool:
    """Whether ``doc`` writes an array shape: ``(N, d)``, ``(d, d)``, ``(N, D, K)``, ``(N,)`` or ``(n,)`` (dimension
    symbols, one of them upper case or ``d``, the feature width, or a one-tuple; ``(i, j)``, ``(lo, hi)`` and a
    call's ``min(64, N, d)`` are no shape)."""
    for inside in re.findall(r"(?<![\w)\]])\(([^()]*)\)", doc):  # not a call's brackets: min(64, N, d)
        dims = [d.strip() for d in inside.split(",")]
        if len(dims) < 2 or not all(_DIM.fullmatch(d) for d in dims if d) or "" in dims[:-1]:
            continue
        if dims[-1] == "" or any(d[0].isupper() or d == "d" for d in dims):
            return True
    return False


def metric_offences(source: str, path: str, exempt: set[str] | dict[str, str]) -> dict[str, list[str]]:
    """function name -> what it breaks, for each public top-level function of the module not in ``exempt``: an
    option (a parameter with a default) that can be passed by position, or a docstring missing or stating no
    input shape."""
    found = {}
    for fn in _parse(source).body:
        if not isinstance(fn, ast.FunctionDef) or fn.name.startswith("_") or fn.name in exempt:
            continue
        positional = fn.args.posonlyargs + fn.args.args
        options = positional[len(positional) - len(fn.args.defaults):] if fn.args.defaults else []
        wrong = [f"{path}:{fn.lineno} {fn.name}: option {a.arg!r} is not keyword-only (put it after *)"
                 for a in options]
        doc = ast.get_docstring(fn)
        if not doc:
            wrong.append(f"{path}:{fn.lineno} {fn.name} has no docstring")
        elif not states_a_shape(doc):
            wrong.append(f"{path}:{fn.lineno} {fn.name}'s docstring states no input shape, e.g. (N, d)")
        found[fn.name] = wrong
    return found


# ------------------------------------------------------------------------------------- 6. the methods' registry
METHOD_FILES = sorted(str(p.relative_to(REPO)) for p in (REPO / "core/methods").glob("*.py"))


def classes_of(sources: dict[str, str]) -> dict[str, tuple[str, ast.ClassDef]]:
    return {node.name: (path, node) for path, source in sources.items() for node in ast.walk(_parse(source))
            if isinstance(node, ast.ClassDef)}


def _bases(node: ast.ClassDef) -> list[str]:
    return [dotted(b).rsplit(".", 1)[-1] for b in node.bases]


def _method(node: ast.ClassDef, name: str) -> ast.FunctionDef | None:
    return next((f for f in node.body if isinstance(f, ast.FunctionDef) and f.name == name), None)


def _calls_super_post_init(fn: ast.FunctionDef) -> bool:
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "__post_init__"
               and isinstance(n.func.value, ast.Call) and dotted(n.func.value.func) == "super" for n in ast.walk(fn))


def config_offences(sources: dict[str, str], root: str = "MethodConfig") -> list[str]:
    """The method configs (``root`` and its subclasses) validate in ``__post_init__``: ``root`` defines one that
    does something, each subclass's own one calls ``super().__post_init__()`` first (the field type checks), and
    every ``MethodEntry(name, Config, ...)`` names one of them."""
    classes = classes_of(sources)
    if root not in classes:
        return [f"no class {root}"]
    configs, grew = {root}, True
    while grew:
        more = {name for name, (_, node) in classes.items() if set(_bases(node)) & configs} - configs
        configs |= more
        grew = bool(more)
    wrong = []
    path, base = classes[root]
    init = _method(base, "__post_init__")
    if init is None or all(isinstance(s, ast.Pass) or (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
                           for s in init.body):
        wrong.append(f"{path}:{base.lineno} {root} has no __post_init__ validation for its subclasses to inherit")
    for name in sorted(configs - {root}):
        path, node = classes[name]
        own = _method(node, "__post_init__")
        if own is not None and not _calls_super_post_init(own):
            wrong.append(f"{path}:{own.lineno} {name}.__post_init__ does not call super().__post_init__()")
        if not any(dotted(d.func if isinstance(d, ast.Call) else d).endswith("dataclass") for d in node.decorator_list):
            wrong.append(f"{path}:{node.lineno} {name} is not a dataclass")
    for path, source in sources.items():
        for n in ast.walk(_parse(source)):
            if isinstance(n, ast.Call) and dotted(n.func).endswith("MethodEntry") and len(n.args) >= 2 \
                    and isinstance(n.args[1], ast.Name) and n.args[1].id in classes and n.args[1].id not in configs:
                wrong.append(f"{path}:{n.lineno} MethodEntry's config {n.args[1].id} is no {root}")
    return wrong


def method_names(sources: dict[str, str], catalogue: str) -> set[str]:
    """The registry's names: each ``MethodEntry("name", ...)`` literal, and the peft catalogue's tables."""
    names = {n.args[0].value for source in sources.values() for n in ast.walk(_parse(source))
             if isinstance(n, ast.Call) and dotted(n.func).endswith("MethodEntry") and n.args
             and isinstance(n.args[0], ast.Constant) and isinstance(n.args[0].value, str)}
    return names | set(tomllib.loads(catalogue))


def _names_a_method(test: ast.AST, names: set[str]) -> bool:
    return any(isinstance(n, ast.Compare) and any(isinstance(op, (ast.Eq, ast.In)) for op in n.ops)
               and any(isinstance(c, ast.Constant) and c.value in names for side in (n.left, *n.comparators)
                       for c in ast.walk(side)) for n in ast.walk(test))


def method_branches(source: str, path: str, names: set[str]) -> list[str]:
    """if/elif chains (and match statements) with two or more branches on method names: the registry's entry
    holds what differs between methods."""
    found, inner = [], set()
    for node in ast.walk(_parse(source)):
        if isinstance(node, ast.If) and id(node) not in inner:
            branches, here = 0, node
            while isinstance(here, ast.If):
                branches += _names_a_method(here.test, names)
                inner.add(id(here))
                here = here.orelse[0] if len(here.orelse) == 1 and isinstance(here.orelse[0], ast.If) else None
            if branches >= 2:
                found.append(f"{path}:{node.lineno} branches on method names ({branches} branches); use the registry")
        elif isinstance(node, ast.Match):
            cases = sum(any(isinstance(p, ast.MatchValue) and isinstance(p.value, ast.Constant) and p.value.value in names
                            for p in ast.walk(case.pattern)) for case in node.cases)
            if cases >= 2:
                found.append(f"{path}:{node.lineno} matches method names ({cases} cases); use the registry")
    return found


def registry_offences(source: str, path: str) -> list[str]:
    """``METHODS`` is a mapping built as a dict (name -> MethodEntry, whose fields hold config and build)."""
    for node in _parse(source).body:
        target = node.target if isinstance(node, ast.AnnAssign) else (node.targets[0] if isinstance(node, ast.Assign)
                                                                        else None)
        if isinstance(target, ast.Name) and target.id == "METHODS":
            if isinstance(node.value, (ast.Dict, ast.DictComp)):
                return []
            return [f"{path}:{node.lineno} METHODS is not built as a dict"]
    return [f"{path}: no METHODS registry"]


# ---------------------------------------------------------------------------------------- 7. a job's main(argv)
JOB_FILES = sorted(f"jobs/{p.name}" for p in (REPO / "jobs").glob("*.py"))


def main_guard(tree: ast.Module) -> ast.If | None:
    return next((n for n in tree.body if isinstance(n, ast.If) and isinstance(n.test, ast.Compare)
                 and dotted(n.test.left) == "__name__" and isinstance(n.test.comparators[0], ast.Constant)
                 and n.test.comparators[0].value == "__main__"), None)


def main_offences(source: str, path: str) -> list[str]:
    """A job run as a command (an ``if __name__ == "__main__":`` block doing more than refusing with
    ``jobs.cli.not_a_command``) defines ``main(argv: list[str] | None = None)``."""
    tree = _parse(source)
    guard = main_guard(tree)
    if guard is None or all(isinstance(s, (ast.Import, ast.ImportFrom)) or (
            isinstance(s, ast.Expr) and isinstance(s.value, ast.Call) and dotted(s.value.func).endswith("not_a_command"))
            for s in guard.body):
        return []
    main = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main"), None)
    if main is None:
        return [f"{path}:{guard.lineno} runs as a command but defines no main(argv: list[str] | None = None)"]
    args = main.args
    ok = (len(args.posonlyargs + args.args) == 1 and args.args and args.args[0].arg == "argv"
          and args.args[0].annotation is not None
          and ast.unparse(args.args[0].annotation).replace(" ", "") in ("list[str]|None", "Optional[list[str]]")
          and len(args.defaults) == 1 and isinstance(args.defaults[0], ast.Constant) and args.defaults[0].value is None
          and not args.kwonlyargs and not args.vararg and not args.kwarg)
    return [] if ok else [f"{path}:{main.lineno} main is not main(argv: list[str] | None = None)"]


# ------------------------------------------------------------------------------------- 8. the app's SQL and caches
SQL_CALLS = ("execute", "executemany", "sql", "query")


def _built_string(node: ast.AST) -> bool:
    """An f-string, ``"..." % x``, ``"...".format(...)`` or ``"..." + x``."""
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mod, ast.Add)):
        return any(isinstance(side, (ast.Constant, ast.JoinedStr)) and not isinstance(getattr(side, "value", ""), bytes)
                   for side in (node.left, node.right)) or _built_string(node.left) or _built_string(node.right)
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format" \
        and isinstance(node.func.value, ast.Constant)


def built_sql(source: str, path: str) -> list[str]:
    """SQL text built from values (directly, or through a variable assigned one in the same scope) passed to
    ``.execute``/``.sql``/``.query``: use parameters (``?``, ``$name``) instead."""
    found = []
    scopes = [n for n in ast.walk(_parse(source)) if isinstance(n, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef))]
    for scope in scopes:
        body = [n for n in ast.walk(scope) if n is scope or not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        built = {t.id for n in body if isinstance(n, ast.Assign) and _built_string(n.value)
                 for t in n.targets if isinstance(t, ast.Name)}
        for n in body:
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in SQL_CALLS:
                first = n.args[0] if n.args else next((k.value for k in n.keywords if k.arg == "query"), None)
                if first is not None and (_built_string(first) or (isinstance(first, ast.Name) and first.id in built)):
                    found.append(f"{path}:{n.lineno} .{n.func.attr}() is given SQL built from values")
    return sorted(set(found), key=lambda s: int(s.split(":")[1].split()[0]))


MODEL_LOADS = ("load_model", "create_model_and_transforms", "from_pretrained", "warm_model", "ModelPool")
def cache_kind(fn: ast.FunctionDef) -> str:
    for d in fn.decorator_list:
        name = dotted(d.func if isinstance(d, ast.Call) else d)
        if name.endswith(("cache_data", "cache_resource")):
            return name.rsplit(".", 1)[-1]
    return ""


def cache_offences(source: str, path: str, resource_data: set[tuple[str, str]]) -> list[str]:
    """Models go in ``st.cache_resource`` (or core.model_pool's process-wide pool), never in ``st.cache_data`` (a
    pickled copy per call) nor loaded uncached; ``st.cache_resource`` holds models only, but for ``resource_data``."""
    found, cached = [], {}
    tree = _parse(source)
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) and cache_kind(fn):
            cached[fn.name] = (cache_kind(fn), fn)
    for name, (kind, fn) in cached.items():
        loads = [n for n in ast.walk(fn) if isinstance(n, ast.Call) and dotted(n.func).rsplit(".", 1)[-1] in MODEL_LOADS]
        if kind == "cache_data" and loads:
            found.append(f"{path}:{fn.lineno} {name} is cache_data but loads a model (use st.cache_resource)")
        returns = ast.unparse(fn.returns) if fn.returns else ""
        if kind == "cache_resource" and not loads and "model" not in (name + returns).lower() \
                and (path, name) not in resource_data:
            found.append(f"{path}:{fn.lineno} {name} is cache_resource but holds no model (use st.cache_data)")
    inside = {id(n) for _, fn in cached.values() for n in ast.walk(fn)}
    found += [f"{path}:{n.lineno} loads a model outside st.cache_resource" for n in ast.walk(tree)
              if isinstance(n, ast.Call) and dotted(n.func).rsplit(".", 1)[-1] in ("load_model",
                                                                                 "create_model_and_transforms")
              and id(n) not in inside]
    return found


