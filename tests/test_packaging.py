"""What a non-editable install gets: every module of every room, the bundled weights and the sample.

The editable install the tests run from maps the rooms onto the source tree, so a subpackage left out of
pyproject's explicit ``packages`` list (spikelens.pipelines.reconstruction once was) still imports here
and is missing from the wheel a user installs.
"""

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROOMS = {
    "spikelens": "spikelens",
    "datasets": "spikelens.datasets",
    "pipelines": "spikelens.pipelines",
    "refocus": "spikelens.refocus",
    "hybrid_net": "spikelens.hybrid_net",
    "app": "spikelens.app",
}


def source_packages() -> set[str]:
    found = set()
    for room, name in ROOMS.items():
        for init in (ROOT / room).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / room).parts
            found.add(".".join([name, *rel]))
    return found


def test_pyproject_lists_every_package_and_maps_every_room():
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert set(tool["packages"]) == source_packages()
    assert {v: k for k, v in tool["package-dir"].items()} == ROOMS


@pytest.mark.slow
def test_the_wheel_holds_every_module_the_weights_and_the_sample(tmp_path):
    """setuptools builds the wheel; its file list is compared with the source tree."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("spikelens-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = set()
    for room, name in ROOMS.items():
        prefix = name.replace(".", "/")
        for path in (ROOT / room).rglob("*.py"):
            expected.add(f"{prefix}/{path.relative_to(ROOT / room).as_posix()}")
    data = [*(ROOT / "hybrid_net" / "weights").glob("*.pt"), *(ROOT / "datasets" / "samples").glob("*.h5")]
    assert data, "no bundled weights or sample to check"
    for path in data:
        room = path.relative_to(ROOT).parts[0]
        expected.add(f"{ROOMS[room].replace('.', '/')}/{path.relative_to(ROOT / room).as_posix()}")
    assert expected - names == set()
    assert "spikelens/pipelines/reconstruction/inference.py" in names
