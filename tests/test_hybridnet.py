"""HybridNet (E-SAI) and HybridLite: E-SAI's checkpoint layout, the from-the-text reference, the registry."""

import os
import pickle

import pytest
import torch
from esai_reference import RefHybridNet, randomise

from spikelens.hybrid_net.reconstruct import HybridLite, HybridLiteConfig, HybridNet
from spikelens.hybrid_net.registry import CheckpointError, load_model, resolve_device, save_model


def frames(b=1, t=6, h=32, w=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(b, t, 2, h, w, generator=g) < 0.15).float() * torch.randint(1, 4, (b, t, 2, h, w), generator=g)


@pytest.fixture(scope="module")
def esai_checkpoint(tmp_path_factory):
    """Random weights saved as E-SAI saves them: a DataParallel state dict, every key prefixed ``module.``."""
    ref = randomise(RefHybridNet()).eval()
    path = tmp_path_factory.mktemp("esai") / "Hybrid.pth"
    torch.save(torch.nn.DataParallel(ref).state_dict(), path)
    return ref, path


def test_esai_checkpoint_loads_as_is_and_matches_the_reference(esai_checkpoint):
    ref, path = esai_checkpoint
    state = torch.load(path, weights_only=True)
    assert all(k.startswith("module.") for k in state) and "module.Gen.model.10.conv_block.6.weight" in state
    net = load_model(path, "cpu")
    assert isinstance(net, HybridNet) and not net.training
    x = frames()
    with torch.no_grad():
        want, got = ref(x), net(x)
    assert got.shape == (1, 1, 32, 48) and want.abs().max() > 0.05
    assert (got - want).abs().max().item() < 1e-4


def test_encoder_spikes_equal_the_step_by_step_reference(esai_checkpoint):
    """Our layer-at-a-time encoder gives exactly the spikes of stepping all layers together."""
    ref, path = esai_checkpoint
    net = load_model(path, "cpu")
    x = frames(b=2, t=9, seed=3)
    captured = {}
    ref.Gen.model.register_forward_pre_hook(lambda m, a: captured.setdefault("z", a[0]))
    with torch.no_grad():
        ref(x)
        stepped, batched = net.encode(x, batched=False), net.encode(x, batched=True)  # in place (no autograd)
    assert torch.equal(stepped, captured["z"]) and torch.equal(batched, captured["z"]) and 0 < stepped.mean() < 1
    assert torch.equal(net.encode(x, batched=False).detach(), stepped)  # with autograd: lif_step's path


def test_our_checkpoints_round_trip_with_their_header(tmp_path):
    torch.manual_seed(0)
    for model in (HybridLite(HybridLiteConfig(width=16, n_blocks=1)), HybridNet()):
        path = tmp_path / f"{type(model).__name__}.pt"
        save_model(model.eval(), path)
        header = torch.load(path, weights_only=True)["header"]
        assert type(model).__name__.lower() in header
        again = load_model(path, "cpu")
        assert type(again) is type(model) and again.config == model.config
        x = frames(t=4, h=16, w=16)
        with torch.no_grad():
            assert torch.equal(again(x), model(x))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_bad_checkpoints_are_refused_clearly_and_run_nothing(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'PWNED'}",))

    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"header": "{}", "state_dict": Evil()}))
    with pytest.raises(CheckpointError, match=r"evil\.pt"):
        load_model(evil, "cpu")
    assert not (tmp_path / "PWNED").exists()
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a SpikeLens or E-SAI checkpoint"):
        load_model(junk, "cpu")
    other = tmp_path / "other.pt"
    torch.save({"weight": torch.zeros(3)}, other)
    with pytest.raises(CheckpointError, match="neither a spikelens checkpoint"):
        load_model(other, "cpu")
    with pytest.raises(CheckpointError, match="no bundled model"):
        load_model("no-such-model", "cpu")


def test_device_auto_and_refusals():
    assert resolve_device("auto").type in ("cpu", "cuda")
    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu7")


def test_frames_must_be_b_t_2_h_w():
    with pytest.raises(ValueError, match="B x T x 2 x H x W"):
        HybridLite()(torch.zeros(1, 4, 3, 16, 16))


@pytest.mark.slow
def test_a_tiny_training_run_lowers_the_loss():
    """HybridLite learns to map refocused event frames to an image (here: their ON-minus-OFF sum)."""
    torch.manual_seed(0)
    model = HybridLite(HybridLiteConfig(width=16, n_blocks=1))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    x = frames(b=4, t=5, h=24, w=24, seed=1)
    target = torch.tanh(x[:, :, 0].sum(1, keepdim=True) - x[:, :, 1].sum(1, keepdim=True))
    losses = []
    for _ in range(60):
        loss = (model(x) - target).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]


def test_half_size_lite_keeps_the_full_size_output():
    """stride 2: the encoder reads 2x2 patches; the output still covers every input pixel, any size."""
    from spikelens.hybrid_net.reconstruct import HybridLite, HybridLiteConfig
    from spikelens.pipelines.reconstruction import run_model

    torch.manual_seed(0)
    lite = HybridLite(HybridLiteConfig(stride=2)).eval()
    assert lite.multiple == 8 and lite.encoder.conv1.kernel_size == (2, 2)
    x = frames(b=1, t=5, seed=1)
    with torch.no_grad():
        y = lite(torch.cat((x, x[..., :8]), -1))  # 32 x 56
    assert y.shape == (1, 1, 32, 56) and y.abs().max() <= 1
    out = run_model(lite, x[0, :, :, :30, :45].numpy())
    assert out.shape == (30, 45)
