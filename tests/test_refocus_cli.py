import cv2
import numpy as np
import pytest

from spikelens.cli import main
from spikelens.datasets import RecordingMeta, write_h5
from spikelens.datasets.formats.esai import write_esai
from spikelens.datasets.patterns import sai_points
from spikelens.datasets.sai_scene import SAIScene
from spikelens.datasets.sensor_size import DAVIS346
from spikelens.refocus import pack_frames, shift_rate
from spikelens.refocus.reference import pack_frames_esai_reference


def esai_file(tmp_path, depth=1.2):
    ev, t_ref = sai_points(depth=depth, occluder_depth=0.4, n_events=150_000, seed=5)
    extra = {"fx": 320.0, "v": 0.177, "depth": depth, "t_ref_us": t_ref, "occ_free_aps": np.zeros((260, 346), np.uint8)}
    path = tmp_path / "sample.npy"
    write_esai(path, ev, RecordingMeta(None, "esai-npy", 346, 260, None, extra))
    return path, ev, t_ref


def test_refocus_at_given_depth_writes_pos_neg(tmp_path, capsys):
    path, ev, t_ref = esai_file(tmp_path)
    out, png = tmp_path / "r.npz", tmp_path / "r.png"
    assert main(["refocus", str(path), "--depth", "1.2", "--bins", "8", "-o", str(out), "--png", str(png)]) == 0
    z = np.load(out)
    want = pack_frames(ev, shift_rate(320, 0.177, 1.2), t_ref, 8, DAVIS346)
    np.testing.assert_array_equal(z["pos"], want[:, 0])  # channel 0 = ON
    np.testing.assert_array_equal(z["neg"], want[:, 1])
    assert z["pos"].dtype == np.int16 and float(z["depth"]) == 1.2
    img = cv2.imread(str(png), cv2.IMREAD_GRAYSCALE)
    assert img.shape == (260, 346) and img.max() == 255
    assert "depth 1.2000 m (given)" in capsys.readouterr().out


def test_refocus_auto_esai_compat_roi(tmp_path, capsys):
    path, ev, t_ref = esai_file(tmp_path)
    out = tmp_path / "a.npz"
    assert (
        main(["refocus", str(path), "--auto", "--esai-compat", "--roi", "2", "45", "256", "256", "-o", str(out)]) == 0
    )
    z = np.load(out)
    assert z["pos"].shape == (30, 256, 256)
    assert abs(float(z["depth"]) - 1.2) < 0.024
    scene = SAIScene(fx=320.0, v=0.177, t_ref_us=t_ref, sensor=DAVIS346)
    want = pack_frames_esai_reference(ev, scene, float(z["depth"]), 30, (2, 45, 256, 256))
    np.testing.assert_array_equal(z["pos"], want[:, 0])
    np.testing.assert_array_equal(z["neg"], want[:, 1])


@pytest.mark.parametrize("roi", [None, ("2", "45", "256", "256")])
def test_refocus_esai_compat_at_a_given_depth_is_the_transcription(tmp_path, roi):
    """`spikelens refocus IN.npy --depth D --esai-compat` on a simulated E-SAI sample (float seconds on disk)."""
    from spikelens.datasets.formats.esai import write_esai
    from spikelens.datasets.simulator.sai import SAIConfig, make_scene, simulate_scene

    rng = np.random.default_rng(3)
    events, meta = simulate_scene(make_scene("procedural:stripes:2", rng, SAIConfig(duration_us=300_000)), rng)
    path = tmp_path / "0000.npy"
    write_esai(path, events, meta)
    out = tmp_path / "f.npz"
    args = ["refocus", str(path), "--depth", "0.9", "--esai-compat", "-o", str(out)]
    assert main(args + (["--roi", *roi] if roi else [])) == 0
    z = np.load(out)
    roi_t = tuple(int(v) for v in roi) if roi else None
    want = pack_frames_esai_reference(events, SAIScene.from_events(meta, events), 0.9, 30, roi_t)
    np.testing.assert_array_equal(z["pos"], want[:, 0])
    np.testing.assert_array_equal(z["neg"], want[:, 1])


def test_refocus_without_sai_metadata_needs_fx_and_v(tmp_path, capsys):
    ev, _ = sai_points(n_events=20_000, seed=1)
    path = tmp_path / "plain.h5"
    write_h5(path, ev, RecordingMeta(None, "test", 346, 260))
    assert main(["refocus", str(path), "--depth", "1", "-o", str(tmp_path / "x.npz")]) == 2
    assert "no SAI metadata for ['fx', 'v']" in capsys.readouterr().err
    assert (
        main(["refocus", str(path), "--depth", "1", "--fx", "320", "--v", "0.177", "-o", str(tmp_path / "x.npz")]) == 0
    )
    for flags in ([], ["--depth", "1", "--auto"]):  # argparse's mutually exclusive group, shown in --help
        with pytest.raises(SystemExit) as exit_info:
            main(["refocus", str(path), *flags, "-o", str(tmp_path / "y.npz")])
        assert exit_info.value.code == 2
    assert "(--depth DEPTH | --auto)" in capsys.readouterr().err


@pytest.mark.parametrize(("flag", "name"), [("-o", "x.h5"), ("--png", "y.jpg")])
def test_refocus_refuses_an_output_named_for_another_format(tmp_path, capsys, flag, name):
    path, _, _ = esai_file(tmp_path)
    args = ["refocus", str(path), "--depth", "1.2", "-o", str(tmp_path / "x.npz"), flag, str(tmp_path / name)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert name in err and "name the file" in err
    assert not (tmp_path / name).exists() and not (tmp_path / "x.npz").exists()


def test_a_request_checks_its_events_once_at_the_door(tmp_path, monkeypatch):
    """Autofocus, packing, the image and the physics pass all trust the events open_sai checked."""
    from spikelens.pipelines.reconstruction import load_sample
    from spikelens.pipelines.sai import refocus_recording
    from spikelens.refocus import frames

    path, _, _ = esai_file(tmp_path)
    calls = []
    real = frames.kernels.check_stream
    monkeypatch.setattr(frames.kernels, "check_stream", lambda ev: calls.append(ev.size) or real(ev))
    refocus_recording(path, None, esai_compat=True, with_image=True)  # autofocus + E-SAI packing + image
    assert len(calls) == 1
    load_sample(path, auto=True)  # autofocus + packing + integrate + accumulation
    assert len(calls) == 2
