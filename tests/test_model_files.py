"""Every wrong model file is one line that says what the file is and what the command needs (status 2),
and no error repeats torch's advice to load unsafely."""

from __future__ import annotations

import json

import pytest
import torch

from spikelens.cli import main
from spikelens.hybrid_net.registry import BUNDLED, BUNDLED_KINDS, KINDS, load_model


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert "weights_only" not in err and "arbitrary code" not in err and "file an issue" not in err.lower()
    return err


def test_bundled_kinds_match_the_files():
    for name, kind in BUNDLED_KINDS.items():
        header = json.loads(torch.load(BUNDLED / f"{name}.pt", weights_only=True)["header"])
        assert KINDS[header["model"]] == kind
    assert {p.stem for p in BUNDLED.glob("*.pt")} == set(BUNDLED_KINDS)


@pytest.mark.parametrize("command", [["classify", "{rec}"], ["live", "{rec}"]])
def test_a_reconstruction_model_for_classify_or_live(command, tmp_path, capsys, sai_file):
    args = [a.format(rec=sai_file) for a in command]
    assert main([*args, "--model", "hybridlite"]) == 2
    err = one_line(capsys)
    assert "hybridlite is a reconstruction model; " in err and "needs a classifier: gesture" in err


def test_a_classifier_for_reconstruct(tmp_path, capsys, sai_file):
    assert main(["reconstruct", str(sai_file), "--model", "gesture", "-o", str(tmp_path / "o.png")]) == 2
    err = one_line(capsys)
    assert "gesture is a classifier; reconstruct needs a reconstruction model: hybridlite" in err
    copy = tmp_path / "net.pt"
    copy.write_bytes((BUNDLED / "gesture.pt").read_bytes())
    assert main(["reconstruct", str(sai_file), "--model", str(copy), "-o", str(tmp_path / "o.png")]) == 2
    assert f"{copy} holds a spiking_classifier, which is a classifier" in one_line(capsys)


@pytest.mark.parametrize(
    ("content", "what"),
    [
        (b'{"model": "x"}', "a JSON file"),
        (b"hello\n", "a text file"),
        (b"", "an empty file"),
        (b"\x00\xff" * 50, "binary"),
    ],
)
def test_files_that_are_no_checkpoint(tmp_path, capsys, content, what):
    bad = tmp_path / "model.pt"
    bad.write_bytes(content)
    assert main(["classify", str(tmp_path), "--model", str(bad)]) == 2
    err = one_line(capsys)
    assert f"{bad}: not a SpikeLens or E-SAI checkpoint ({what}" in err and "classify needs a classifier" in err


def test_a_pickle_with_code_is_refused_without_running_it(tmp_path):
    import pickle

    class Boom:
        def __reduce__(self):
            return (exec, ("open('/tmp/spikelens_pwned', 'w').write('x')",))

    bad = tmp_path / "evil.pt"
    torch.save({"header": "{}", "state_dict": Boom()}, bad, pickle_module=pickle)
    with pytest.raises(ValueError, match="not a SpikeLens or E-SAI checkpoint"):
        load_model(bad, "cpu", "classifier")
    import os

    assert not os.path.exists("/tmp/spikelens_pwned")
