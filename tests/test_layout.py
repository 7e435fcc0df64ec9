"""The house rules of DESIGN.md that a grep can keep."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BELOW_APP = ["datasets", "refocus", "hybrid_net", "pipelines", "spikelens"]
QT = re.compile(r"^\s*(from|import)\s+(PyQt6|PySide6|pyqtgraph|superqt)\b", re.M)
BARE = re.compile(r"^\s*(from|import)\s+(datasets|refocus|hybrid_net|pipelines|app)(\.|\s|$)", re.M)


def python_files(*folders):
    for folder in folders:
        yield from (ROOT / folder).rglob("*.py") if (ROOT / folder).is_dir() else ()


def test_no_qt_below_app():
    offenders = [str(p.relative_to(ROOT)) for p in python_files(*BELOW_APP) if QT.search(p.read_text())]
    assert offenders == []


def test_no_bare_imports_of_top_level_folders():
    folders = [*BELOW_APP, "app", "tests", "benchmarks"]
    offenders = [str(p.relative_to(ROOT)) for p in python_files(*folders) if BARE.search(p.read_text())]
    assert offenders == []


def test_importing_datasets_stays_light():
    code = "import sys, spikelens.datasets; print(sorted(m for m in ('torch', 'PyQt6', 'tonic') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
