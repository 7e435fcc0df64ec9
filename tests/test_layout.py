"""DESIGN.md's layer map, checked on the syntax tree of every module.

"Imports point down this list only: app -> pipelines -> (hybrid_net, refocus) -> datasets. Nothing below
app imports Qt; nothing below pipelines imports torch.distributed or file dialogs." The thin root
(spikelens/) sits on top: it may use every room, and no room may use it.
"""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYER = {"datasets": 0, "refocus": 1, "hybrid_net": 1, "pipelines": 2, "app": 3, "spikelens": 4}
ROOMS = set(LAYER) - {"spikelens"}
QT = {"PyQt6", "PyQt5", "PySide6", "PySide2", "pyqtgraph", "superqt", "qtpy"}
DIALOGS = {"tkinter", "easygui", "plyer"}


def imported(tree: ast.AST, package: str) -> list[tuple[int, str]]:
    """Every module a file imports, at any depth (lazy imports count), with relative imports resolved."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            name = ".".join([*base, node.module] if node.module else base)
            if name == "spikelens" or not node.module:  # `from spikelens import cli`, `from .. import app`
                found += [(node.lineno, f"{name}.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, name))
    return found


def violations(source: str, room: str, package: str) -> list[str]:
    """The rule each import of one module in `room` breaks, as `line: what`."""
    out = []
    for line, name in imported(ast.parse(source), package):
        top, *rest = name.split(".")
        if top in ROOMS:
            out.append(f"{line}: bare import of {name} (use spikelens.{name})")
        elif top == "spikelens" and rest:
            target = rest[0] if rest[0] in LAYER else "spikelens"
            if target == room:
                continue
            if LAYER[target] >= LAYER[room]:
                out.append(f"{line}: {room} imports {name}, which is not below it")
        elif top in QT and room != "app":
            out.append(f"{line}: Qt ({name}) below app")
        elif top in DIALOGS:
            out.append(f"{line}: a file dialog ({name})")
        elif name.startswith("torch.distributed") and LAYER[room] < LAYER["pipelines"]:
            out.append(f"{line}: torch.distributed below pipelines")
    return out


def modules():
    for room in LAYER:
        for path in sorted((ROOT / room).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            package = ".".join(["spikelens", *parts] if room != "spikelens" else parts)
            if path.name != "__init__.py":
                package = package.rsplit(".", 1)[0]
            yield room, path, package


def test_every_import_points_down_the_layer_map():
    broken = []
    for room, path, package in modules():
        broken += [f"{path.relative_to(ROOT)}:{v}" for v in violations(path.read_text(), room, package)]
    assert broken == []


def test_the_check_sees_each_kind_of_breach():
    """Without this the test above could pass by reading nothing."""
    cases = {
        ("datasets", "from spikelens.refocus import kernels"): "not below",
        ("refocus", "from spikelens.hybrid_net import neurons"): "not below",  # siblings
        ("pipelines", "def f():\n    from spikelens.app import theme"): "not below",  # lazy
        ("pipelines", "import spikelens.cli"): "not below",
        ("hybrid_net", "from spikelens import exits"): "not below",
        ("pipelines", "from .. import app"): "not below",  # relative
        ("hybrid_net", "import torch.distributed as dist"): "torch.distributed",
        ("pipelines", "from pyqtgraph import ImageItem"): "Qt",
        ("pipelines", "from tkinter import filedialog"): "file dialog",
        ("app", "import refocus.kernels"): "bare import",
    }
    for (room, source), why in cases.items():
        found = violations(source, room, f"spikelens.{room}")
        assert len(found) == 1 and why in found[0], (room, source, found)
    fine = "import torch.distributed\nfrom spikelens.refocus import kernels"
    assert violations(fine, "pipelines", "spikelens.pipelines") == []
    assert violations("import PyQt6\nfrom spikelens.pipelines import clock", "app", "spikelens.app") == []


def test_the_map_covers_every_room_with_code():
    rooms = {room for room, _, _ in modules()}
    assert rooms == set(LAYER)
    assert sum(1 for _ in modules()) > 80


def test_importing_datasets_stays_light():
    code = "import sys, spikelens.datasets; print(sorted(m for m in ('torch', 'PyQt6', 'tonic') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_readme_commands_are_what_ci_runs_and_pin_the_torch_the_code_names():
    """One install line: CI runs the README's test block itself, and both README blocks pin TORCH_PIN."""
    from spikelens.pipelines.extras import TORCH_PIN

    readme = (ROOT / "README.md").read_text()
    blocks = [b.split("```", 1)[0].strip() for b in readme.split("```bash\n")[1:]]
    setup, tests = blocks[0], blocks[1]
    assert setup.startswith("python3 -m venv .venv") and "spikelens info" in setup
    assert tests.startswith("python3 -m venv .venv") and "pytest" in tests
    for cmd in (setup, tests):
        assert f"pip install {TORCH_PIN} " in cmd
    ci = (ROOT / ".ci" / "run").read_text()
    assert "README.md" in ci and "torch" not in ci.replace("torch pin", "")  # CI names no version of its own
