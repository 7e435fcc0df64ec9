import numpy as np
import pytest
import torch

from spikelens.hybrid_net.checkpoint import load_checkpoint, save_checkpoint
from spikelens.hybrid_net.refocusnet import RefocusNet, RefocusNetConfig, apse, warp_frames
from spikelens.pipelines.refocusnet import evaluate_apse, simulate_samples, train_refocusnet


def test_warp_by_whole_pixels_is_a_shift_with_zero_fill():
    frames = torch.rand(2, 5, 2, 8, 12)
    psi = torch.tensor([1.0, -2.0])
    out = warp_frames(frames, psi, ref_bin=2.0)
    for s in range(2):
        for b in range(5):
            k = int(psi[s] * (b - 2))
            want = torch.zeros(2, 8, 12)
            if k >= 0:
                want[..., k:] = frames[s, b, ..., : 12 - k]
            else:
                want[..., :k] = frames[s, b, ..., -k:]
            torch.testing.assert_close(out[s, b], want, atol=1e-5, rtol=0)


def test_warp_is_differentiable_in_psi():
    frames = torch.rand(1, 4, 2, 6, 6)
    psi = torch.tensor([0.3], requires_grad=True)
    warp_frames(frames, psi, 1.5).sum().backward()
    assert psi.grad is not None and torch.isfinite(psi.grad).all()


def test_warping_with_the_true_psi_refocuses():
    s = simulate_samples(4, seed=3)
    sharp = warp_frames(s.frames, s.psi, s.ref_bin).sum(dim=(1, 2)).flatten(1).var(dim=1)
    blurred = s.frames.sum(dim=(1, 2)).flatten(1).var(dim=1)
    assert torch.all(sharp > 1.5 * blurred)


def test_model_shape_checks_and_apse():
    model = RefocusNet(RefocusNetConfig(n_bins=6, channels=8))
    assert model(torch.zeros(3, 6, 2, 16, 16)).shape == (3,)
    with pytest.raises(ValueError, match="expected"):
        model(torch.zeros(3, 5, 2, 16, 16))
    # offsets |b - 1.5| for b = 0..3 average 1.0, so APSE = mean |error| = 0.5
    assert apse(torch.tensor([1.0, 2.0]), torch.tensor([1.5, 2.5]), 4, 1.5) == pytest.approx(0.5)


def test_checkpoint_roundtrip_and_rejects_other_files(tmp_path):
    torch.manual_seed(0)
    model = RefocusNet(RefocusNetConfig(n_bins=4, channels=8)).eval()
    save_checkpoint(model, tmp_path / "m.pt")
    again = load_checkpoint(RefocusNet, tmp_path / "m.pt")
    assert again.config == model.config
    x = torch.rand(2, 4, 2, 16, 16)
    torch.testing.assert_close(again(x), model(x))
    torch.save({"evil": object()}, tmp_path / "bad.pt")  # needs unpickling of arbitrary objects
    with pytest.raises(ValueError, match="not a RefocusNet checkpoint"):
        load_checkpoint(RefocusNet, tmp_path / "bad.pt")


@pytest.mark.slow
def test_short_training_learns_and_is_reproducible():
    torch.set_num_threads(2)
    train, val = simulate_samples(64, seed=0), simulate_samples(24, seed=1)
    untrained = evaluate_apse(RefocusNet(RefocusNetConfig(n_bins=train.n_bins)), val)
    model, hist = train_refocusnet(train, val, epochs=6, seed=0)
    assert min(hist.val_apse) < 0.5 * untrained
    assert evaluate_apse(model, val) == pytest.approx(min(hist.val_apse))
    _, again = train_refocusnet(train, val, epochs=6, seed=0)
    assert np.allclose(again.train_loss, hist.train_loss) and np.allclose(again.val_apse, hist.val_apse)


def test_train_cli_writes_checkpoint_and_reports_apse(tmp_path, capsys):
    from spikelens.cli import main

    out = tmp_path / "net.pt"
    assert main(["train-refocusnet", "-o", str(out), "--samples", "24", "--epochs", "2"]) == 0
    text = capsys.readouterr().out
    assert "APSE on 8 simulated validation scenes: RefocusNet" in text and "autofocus" in text
    assert load_checkpoint(RefocusNet, out).config.n_bins == 16
