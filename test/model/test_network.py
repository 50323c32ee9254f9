"""LipfaultNet.forward: bypass for clean tuples, correction for faulty ones, missing modalities."""

from __future__ import annotations

import torch

from lipfault_ros.model import LipfaultNet, ModelConfig


def _net_and_inputs(batch: int = 4):
    torch.manual_seed(0)
    net = LipfaultNet(ModelConfig.tiny()).eval()
    cam = torch.rand(batch, 3, 32, 32)
    wr, jo = torch.randn(batch, 6, 16), torch.randn(batch, 21, 16)
    return net, cam, wr, jo


def test_all_clean_batch_bypasses_the_compute_block():
    net, cam, wr, jo = _net_and_inputs()
    with torch.no_grad():
        out = net(cam, wr, jo)  # thresholds are +inf before calibration: all clean
    assert not out.computed
    assert bool(out.bypassed.all()) and not bool(out.faults.any())
    for r, c in zip(out.reconstruction, out.corrected):
        assert torch.equal(r, c)


def test_only_faulty_rows_take_the_correction_path():
    net, cam, wr, jo = _net_and_inputs()
    force = torch.zeros(4, 3, dtype=torch.bool)
    force[1, 1] = True
    with torch.no_grad():
        out = net(cam, wr, jo, force_fault=force)
    assert out.computed
    assert out.bypassed.tolist() == [True, False, True, True]
    assert out.faults[1].tolist() == [False, True, False]
    assert torch.isinf(out.scores[1, 1])
    assert torch.equal(out.corrected[0][0], out.reconstruction[0][0])
    assert not torch.equal(out.corrected[1][1], out.reconstruction[1][1])


def test_thresholds_decide_faults_only_for_present_modalities():
    net, cam, wr, jo = _net_and_inputs()
    net.thresholds.fill_(-1e9)  # everything above threshold
    present = torch.ones(4, 3)
    present[:, 0] = 0
    with torch.no_grad():
        out = net(cam * 0, wr, jo, present)
    assert not bool(out.faults[:, 0].any()) and bool(out.faults[:, 1:].all())
    assert not bool(out.bypassed.any())


def test_missing_modality_is_reconstructed_from_the_others():
    net, cam, wr, jo = _net_and_inputs()
    present = torch.tensor([[0.0, 1.0, 1.0]] * 4)
    with torch.no_grad():
        out = net(torch.zeros_like(cam), wr, jo, present)
    assert out.reconstruction[0].shape == cam.shape
    assert torch.isfinite(out.reconstruction[0]).all()
