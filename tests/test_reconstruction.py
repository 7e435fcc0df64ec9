"""Reconstruction pipeline: metrics against scikit-image, prepare/train/evaluate/serve end to end."""

import json

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from spikelens.cli import main
from spikelens.datasets.simulator.sai import SAIConfig
from spikelens.hybrid_net.reconstruct import HybridLiteConfig
from spikelens.hybrid_net.registry import load_model
from spikelens.pipelines.reconstruction import load_sample, psnr, run_model, ssim
from spikelens.pipelines.simulate import write_sai_dataset


def test_psnr_and_ssim_match_scikit_image():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (40, 52), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-30, 30, a.shape), 0, 255).astype(np.uint8)
    assert psnr(a, b) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255))
    want = structural_similarity(a, b, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    assert ssim(a, b) == pytest.approx(want, abs=1e-6)


def test_run_model_takes_the_log_map_the_model_was_trained_on():
    """Samples hold the physics channels with both log maps; each model gets the one its config names,
    and the checkpoints from before the field existed read the plain map."""
    from spikelens.hybrid_net.reconstruct import HybridLite

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 3, (4, 2, 32, 32)).astype(np.int16)
    physics = {m: rng.normal(size=(2, 32, 32)).astype(np.float32) for m in ("plain", "unfolded")}
    small = {"stride": 2, "physics": True, "width": 8, "n_blocks": 1, "c1": 4, "c2": 4, "c3": 8}
    for log_map in ("plain", "unfolded"):
        torch.manual_seed(0)
        net = HybridLite(HybridLiteConfig(**small, log_map=log_map)).eval()
        mine, other = physics[log_map], physics["unfolded" if log_map == "plain" else "plain"]
        np.testing.assert_array_equal(run_model(net, frames, physics), run_model(net, frames, mine))
        assert not np.array_equal(run_model(net, frames, physics), run_model(net, frames, other))
    assert HybridLiteConfig(**small).log_map == "plain"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Six simulated E-SAI samples on an odd-sized sensor (not a multiple of 4: the model pads and crops)."""
    root = tmp_path_factory.mktemp("esai")
    cfg = SAIConfig(width=66, height=50, duration_us=300_000, aps_fps=10)
    write_sai_dataset(root, 8, seed=3, config=cfg)
    return root


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("net") / "lite.pt"
    args = ["train-reconstruct", str(dataset), "-o", str(out), "--epochs", "12", "--batch", "2", "--crop", "48", "-q"]
    assert main(args) == 0
    return out


@pytest.mark.slow
def test_training_writes_a_checkpoint_and_a_report(trained):
    report = json.loads(trained.with_suffix(".json").read_text())
    prefixes = (
        "",
        "baseline_",
        "integrate_",
        "frame_sai_",
        "frame_sai_robust_",
        "oracle_model_",
        "oracle_accumulation_",
        "oracle_integrate_",
        "oracle_integrate_log_",
    )
    want = {f"{p}{m}" for p in prefixes for m in ("psnr", "ssim")} | {"gain_db"}
    assert report["n"] >= 1 and set(report["mean"]) == want  # no E-SAI crop on a 66 x 50 sensor
    assert report["train"]["model_config"]["physics"] and report["train"]["model_config"]["stride"] == 2
    csv_rows = trained.with_suffix(".csv").read_text().splitlines()
    assert csv_rows[0].startswith("file,psnr,ssim") and len(csv_rows) == report["n"] + 1
    loss = report["train"]["loss"]
    assert len(loss) == 12 and loss[-1] < loss[0]
    assert not trained.with_suffix(".train.h5").exists()  # the cache is removed
    assert type(load_model(trained, "cpu")).__name__ == "HybridLite"


def test_reconstruct_beats_the_accumulation_baseline(dataset, trained, tmp_path, capsys):
    sample = sorted((dataset / "test").glob("*.npy"))[0]
    png, raw = tmp_path / "out.png", tmp_path / "out.npy"
    assert main(["reconstruct", str(sample), "--model", str(trained), "-o", str(png), "--raw", str(raw), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    timings = {"depth", "model", "device", "net_ms", "total_ms", "frames_used"}
    assert set(out) == timings | {"psnr", "ssim", "baseline_psnr"}
    assert out["psnr"] > out["baseline_psnr"] + 3
    assert out["frames_used"] is False  # this model reads events and physics only
    r = np.load(raw)
    assert r.dtype == np.float32 and r.shape == (50, 66) and np.abs(r).max() <= 1
    s = load_sample(sample)
    np.testing.assert_array_equal(r, run_model(load_model(trained, "cpu"), s.frames, s.physics))
    compat = ["reconstruct", str(sample), "--model", str(trained), "-o", str(png), "--raw", str(raw), "--esai-compat"]
    assert main(compat) == 0  # E-SAI's mode is the only mode: the same output
    capsys.readouterr()
    np.testing.assert_array_equal(np.load(raw), r)
    args = ["reconstruct", str(sample), "--auto", "--model", str(trained), "-o", str(png), "--json"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["depth"] > 0


def test_frames_are_esai_order_on_first(dataset):
    """Channel 0 is ON, E-SAI's ``Pos`` (its transcription's ``pos``), in what the networks read."""
    from spikelens.datasets import open_recording
    from spikelens.refocus import reference as ref

    f = sorted((dataset / "train").glob("*.npy"))[0]
    s = load_sample(f, bins=5)
    with open_recording(f) as rec:
        ev = rec.load()
    esai = ref.pack_frames_esai_reference(ev, s.scene, s.depth, 5)
    np.testing.assert_array_equal(s.frames, esai)
    assert s.frames[:, 0].sum() == np.count_nonzero(ev["p"] == 1)  # E-SAI keeps every event: all ON in 0


def test_reconstruct_refuses_a_file_without_sai_metadata(tmp_path, capsys):
    from spikelens.datasets.bundled import bundled_sample

    assert main(["reconstruct", str(bundled_sample()), "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and ("SAI" in err or "fx" in err)


def test_the_bundled_default_loads_by_name_and_reconstructs(dataset, tmp_path, capsys):
    """``--model`` defaults to the bundled HybridLite; run here on scenes from another simulator setting
    (the older scene generator, a 66 x 50 sensor), it beats the accumulation as shown, in PSNR and SSIM."""
    from spikelens.pipelines.reconstruction import evaluate

    assert type(load_model("hybridlite", "cpu")).__name__ == "HybridLite"
    m = evaluate("hybridlite", sorted((dataset / "test").glob("*.npy")), device="cpu")["mean"]
    assert m["psnr"] > m["baseline_psnr"] + 2 and m["ssim"] > m["baseline_ssim"]
    sample = sorted((dataset / "test").glob("*.npy"))[0]
    assert main(["reconstruct", str(sample), "-o", str(tmp_path / "d.png"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["model"] == "hybridlite"


def _ddp_rank(rank: int, port: int, data: str, out_dir: str) -> None:
    import torch.distributed as dist

    from spikelens.pipelines.reconstruction import TrainConfig, train

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        from spikelens.hybrid_net.reconstruct import HybridLite

        model = HybridLite(HybridLiteConfig(width=8, n_blocks=1))  # unseeded: DDP starts every rank from rank 0's
        if rank == 0:
            torch.save(model.state_dict(), f"{out_dir}/init.pt")
        train(model, data, TrainConfig(epochs=2, batch=1, crop=32), f"{out_dir}/ddp.pt", "cpu")
        torch.save({k: v.cpu() for k, v in model.state_dict().items()}, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_processes_train_to_identical_weights(dataset, tmp_path):
    """torchrun's layout on CPU: DDP over gloo, each rank its own recordings, one set of weights at the end."""
    from spikelens.pipelines.reconstruction import prepare

    from helpers import free_port

    cache = tmp_path / "train.h5"
    prepare(sorted((dataset / "train").glob("*.npy"))[:4], cache, bins=4)
    torch.multiprocessing.spawn(_ddp_rank, args=(free_port(), str(cache), str(tmp_path)), nprocs=2, join=True)
    a, b = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    init = torch.load(tmp_path / "init.pt", weights_only=True)
    assert not torch.equal(init["head.weight"], a["head.weight"])  # it trained
    assert torch.equal(load_model(tmp_path / "ddp.pt", "cpu").state_dict()["head.weight"], a["head.weight"])


def test_an_interrupted_run_resumes_to_the_same_weights(dataset, tmp_path):
    """Cancelled after the first epoch, resumed: the very weights of an unbroken run."""
    from spikelens.hybrid_net.reconstruct import HybridLite
    from spikelens.pipelines.jobs import Cancelled, Job
    from spikelens.pipelines.reconstruction import TrainConfig, prepare, train
    from spikelens.pipelines.training import state_path

    cache = tmp_path / "train.h5"
    prepare(sorted((dataset / "train").glob("*.npy"))[:3], cache, bins=4)
    cfg = TrainConfig(epochs=3, batch=2, crop=32)
    small = HybridLiteConfig(width=8, n_blocks=1)
    whole = tmp_path / "whole.pt"
    torch.manual_seed(0)
    train(HybridLite(small), cache, cfg, whole, "cpu")
    broken = tmp_path / "broken.pt"

    def stop_in_epoch_two(done, total, message):
        if done > 2:  # 2 steps per epoch: the first step of epoch 2
            job.cancel()

    job = Job(stop_in_epoch_two)
    torch.manual_seed(0)  # the same initial weights as the unbroken run
    with pytest.raises(Cancelled):
        train(HybridLite(small), cache, cfg, broken, "cpu", job)
    assert state_path(broken).exists() and not broken.exists()
    history = train(HybridLite(small), cache, cfg, broken, "cpu", resume=True)
    assert len(history) == 3 and not state_path(broken).exists()
    a, b = load_model(whole, "cpu").state_dict(), load_model(broken, "cpu").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_frame_based_sai_aligns_the_target_at_its_depth(dataset):
    """The classic baseline shifts each APS frame as events are shifted: sharpest against truth at the depth."""
    f = sorted((dataset / "train").glob("*.npy"))[1]
    s = load_sample(f, bins=2)
    at = psnr(s.frame_sai, s.truth)
    for k in (0.7, 1.4):
        assert at > psnr(load_sample(f, s.depth * k, bins=2).frame_sai, s.truth)


def test_fine_tuning_starts_from_a_checkpoint(dataset, trained, tmp_path):
    out = tmp_path / "tuned.pt"
    args = ["train-reconstruct", str(dataset), "-o", str(out), "--init", str(trained), "--epochs", "1", "-q"]
    assert main([*args, "--batch", "2", "--crop", "48"]) == 0
    first_fresh = json.loads(trained.with_suffix(".json").read_text())["train"]["loss"][0]
    first_tuned = json.loads(out.with_suffix(".json").read_text())["train"]["loss"][0]
    assert first_tuned < first_fresh and load_model(out, "cpu").config == load_model(trained, "cpu").config
