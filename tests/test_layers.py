"""The layers import one way: core <- tracker, training <- export <- facetrack (the CLI).

    facetrack (CLI)     imports everything below
    export              core, training.data (probe and calibration faces)
    tracker | training  core only; neither imports the other
    core                nothing of the project

Every import counts, also the lazy ones inside functions. torch stays off the ONNX path: in the base
layer only `core.models` imports it, and in the runtime only the torch backend does (lazily).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "tracker", "training", "export", "facetrack")
ALLOWED = {
    "core": ("core",),
    "tracker": ("core", "tracker"),
    "training": ("core", "training"),
    "export": ("core", "training.data", "export"),
    "facetrack": PACKAGES,
}
# core.detector_net is a model module like core.models (which alone imports it)
TORCH_ALLOWED_IN = {"core": ("core.models", "core.detector_net"), "tracker": ("tracker.backends",)}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, int]]:
    """(imported module, line) for every import in the file, at any depth."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, node.lineno))
            # `from core import models` imports the module core.models
            found += [(f"{node.module}.{alias.name}", node.lineno) for alias in node.names]
    return found


def _project_files():
    for package in PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def test_every_package_is_checked():
    assert all((ROOT / p / "__init__.py").is_file() for p in PACKAGES)
    assert len(list(_project_files())) > 40


def test_lower_layers_never_import_higher_ones():
    wrong = []
    for path in _project_files():
        layer = _module_name(path).split(".")[0]
        for name, line in _imports(path):
            top = name.split(".")[0]
            if top not in PACKAGES:
                continue
            if not any(_within(name, allowed) or _within(allowed, name) for allowed in ALLOWED[layer]):
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_torch_only_where_it_belongs():
    wrong = []
    for path in _project_files():
        module = _module_name(path)
        layer = module.split(".")[0]
        if layer not in TORCH_ALLOWED_IN:
            continue
        for name, line in _imports(path):
            if name.split(".")[0] in ("torch", "torchvision") and module not in TORCH_ALLOWED_IN[layer]:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert not wrong, "torch on the ONNX path:\n" + "\n".join(wrong)


def test_no_import_cycles_between_modules():
    modules = {_module_name(p): p for p in _project_files()}
    graph = {m: set() for m in modules}
    for module, path in modules.items():
        for name, _ in _imports(path):
            target = name if name in modules else name.rsplit(".", 1)[0] if "." in name else name
            if target in modules and target != module and not module.startswith(target + "."):
                graph[module].add(target)
    cycles, state = [], {}

    def visit(node, stack):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


@pytest.mark.parametrize("module", ["core.preprocess", "core.postprocess", "core.onnx_session", "tracker.pipeline",
                                    "tracker.runtime", "facetrack.cli.video_cmd", "facetrack.cli.images_cmd"])
def test_onnx_path_imports_no_torch(module):
    if not (ROOT / Path(*module.split("."))).with_suffix(".py").is_file():
        pytest.skip(f"{module} does not exist")
    code = f"import sys, {module}; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0, f"importing {module} pulled in torch"
