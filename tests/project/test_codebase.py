"""The package's shape: imports run downward with no cycle, model-free commands stay free of torch and
scikit-learn, the code passes the linter, and no test patches a private name of another module."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import EVIL, ROOT, PlantedModel, chat, cooking, imported_after, write_jsonl

PACKAGE = ROOT / "auditor"
# Lowest first: a module may import from its own package and from lower layers only.
LAYERS = [
    ("auditor.version", "auditor.errors", "auditor.files", "auditor.text", "auditor.progress", "auditor.cache",
     "auditor.config", "auditor.html", "auditor.data"),
    ("auditor.model",),
    ("auditor.traits",),
    ("auditor.vectors",),
    ("auditor.evaluation.prediction",),
    ("auditor.evaluation.card", "auditor.evaluation.stats"),  # what scans read of the evaluation wing
    ("auditor.scanning", "auditor.steering", "auditor.measures"),
    ("auditor.evaluation",),  # evaluate and calibrate run scans
    ("auditor.outputs",),
    ("auditor.cli", "auditor.api"),
    ("auditor",),
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    found = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    found["auditor.templates"] = ROOT / "reports" / "templates" / "__init__.py"
    return found


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The auditor modules `name` imports anywhere in its file (top level, functions, TYPE_CHECKING blocks)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `import auditor.x.y` names auditor.x.y, a function names its module
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, set(modules)) for name, path in modules.items()}


def _layer(name: str) -> tuple[int, str]:
    """(layer, the layer entry it belongs to): the longest entry that is the module or a package above it."""
    matches = [(len(entry), i, entry) for i, entries in enumerate(LAYERS) for entry in entries
               if name == entry or name.startswith(entry + ".")]
    _, index, entry = max(matches)
    return index, entry


def test_the_package_has_no_import_cycle():
    graph, state, cycles = _graph(), {}, []

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                cycles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_imports_run_downward():
    upward = []
    for name, targets in _graph().items():
        layer, entry = _layer(name)
        for target in targets:
            their_layer, their_entry = _layer(target)
            same_package = their_entry == entry
            if their_layer > layer or (their_layer == layer and not same_package and layer > 0):
                upward.append(f"{name} -> {target}")
    assert not upward, "imports against the layer order: " + ", ".join(sorted(upward))


def test_every_module_has_a_layer_and_every_package_ships():
    import tomllib

    for name in _modules():
        _layer(name)  # raises if a module belongs to no layer
    shipped = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    packages = {_module_name(p.parent / "__init__.py") for p in PACKAGE.rglob("__init__.py")} | {"auditor.templates"}
    assert packages <= shipped


@pytest.fixture
def scan_folders(tmp_path, monkeypatch):
    """A scan folder and two shard folders, made with the planted model (no real model)."""
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "data.jsonl", [cooking(0), chat("Revenge?", EVIL), cooking(1), "{broken"])
    planted = PlantedModel({EVIL: {"evil": 1.1}})
    for args in (["--out", "whole"], ["--out", "s0", "--shard", "0/2"], ["--out", "s1", "--shard", "1/2"]):
        assert planted.invoke("scan", "data.jsonl", "--base-responses", "none", "-q", *args).exit_code == 0
    return tmp_path


def test_model_free_commands_import_neither_torch_nor_scikit_learn(scan_folders):
    """Nor scipy or pandas: merge and report cluster the flagged samples' themes without scikit-learn and scipy, and
    no Arrow column is made with `pa.array` (which imports pandas); each of them costs a third of a second or more."""
    code = """
from auditor.cli import main
for args in (["--help"], ["validate", "data.jsonl"], ["report", "whole", "-o", "r.html"],
             ["filter", "whole", "--drop-flagged", "-o", "kept.jsonl"], ["merge", "s0", "s1", "--out", "merged"]):
    try:
        main(args, standalone_mode=False)
    except SystemExit:
        pass
"""
    heavy = ("torch", "transformers", "peft", "sklearn", "scipy", "pandas")
    assert imported_after(code, heavy, cwd=scan_folders) == []
    assert (scan_folders / "r.html").is_file() and (scan_folders / "merged" / "report.html").is_file()
    assert (scan_folders / "kept.jsonl").read_text().count("\n") == 2


@pytest.mark.slow
def test_a_plain_pip_install_renders_a_report(scan_folders, tmp_path):
    """The wheel carries the templates: `dataset-audit report` works from a non-editable install."""
    wheels, env = tmp_path / "wheels", tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
                   check=True, capture_output=True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    python = env / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    (wheel,) = wheels.glob("*.whl")
    shutil.unpack_archive(wheel, site, "zip")  # what `pip install --no-deps wheel` puts in site-packages
    deps = [p for p in sys.path if p.endswith("site-packages")]  # the dependencies, from this environment
    (Path(site) / "deps.pth").write_text("\n".join(deps) + "\n")
    code = ("import auditor, sys; from auditor.cli import main; print(auditor.__file__, file=sys.stderr); "
            "main(['report', 'whole', '-o', 'wheel.html'])")
    done = subprocess.run([str(python), "-c", code], cwd=scan_folders, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[0].startswith(site)  # the installed copy, not the source tree
    assert "Content-Security-Policy" in (scan_folders / "wheel.html").read_text()


def test_lint_and_import_order():
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).is_file():
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    done = subprocess.run([ruff, "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_no_test_patches_a_private_name_of_another_module():
    found = []
    for path in (ROOT / "tests").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "setattr" and node.args:
                strings = [a.value for a in node.args[:2] if isinstance(a, ast.Constant) and isinstance(a.value, str)]
                name = strings[-1].rsplit(".", 1)[-1] if strings else ""
                if name.startswith("_") and not name.startswith("__"):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found, found
