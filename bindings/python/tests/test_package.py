"""The package as a user meets it: names, stubs, docstrings, typing marker."""

import ast
import dataclasses
import inspect
import os

import psyne
from psyne import _psyne

PKG = os.path.dirname(psyne.__file__)


def stub_names(path):
    tree = ast.parse(open(path).read())
    names = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names[node.name] = {n.name for n in node.body
                                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
            names[node.name] |= {n.target.id for n in node.body if isinstance(n, ast.AnnAssign)}
    return names


def test_installed_with_typing_marker_and_stubs():
    for f in ("py.typed", "__init__.pyi", "_psyne.pyi"):
        assert os.path.exists(os.path.join(PKG, f)), f


def test_every_stubbed_member_exists():
    for path, module in (("_psyne.pyi", _psyne), ("__init__.pyi", psyne)):
        for cls, members in stub_names(os.path.join(PKG, path)).items():
            obj = getattr(module, cls)
            fields = {f.name for f in dataclasses.fields(obj)} if dataclasses.is_dataclass(obj) else set()
            for m in members - {"__new__", "__init__", "__buffer__"}:
                assert hasattr(obj, m) or m in fields, f"{path}: {cls}.{m}"


def test_every_public_member_is_documented():
    for name in psyne.__all__:
        obj = getattr(psyne, name)
        if isinstance(obj, str):
            continue
        assert inspect.getdoc(obj), name
        if not inspect.isclass(obj):
            continue
        for klass in (k for k in inspect.getmro(obj) if k.__module__.startswith("psyne")):
            for attr, value in vars(klass).items():
                if attr.startswith("_") and attr not in ("__enter__", "__exit__", "__iter__", "__next__", "__len__"):
                    continue
                if callable(value) or isinstance(value, property) or type(value).__name__.endswith("descriptor"):
                    assert inspect.getdoc(getattr(klass, attr)), f"{klass.__name__}.{attr}"


def test_all_lists_the_api():
    assert {"Channel", "Mode", "ChannelType", "Compression", "CompressionConfig", "Error",
            "MessageView", "Reservation", "Metrics"} <= set(psyne.__all__)
    assert psyne.VERSION == psyne.__version__


def test_readme_python_snippet_runs(capsys):
    readme = open(os.path.join(os.path.dirname(__file__), "..", "..", "..", "README.md")).read()
    section = readme.split("\n## Python\n", 1)[1].split("\n## ", 1)[0]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(code, "README.md (Python)", "exec"), {})
    assert capsys.readouterr().out.splitlines() == ["1 1.0", "(b'copying is fine too', 2)"]
