"""The network's batch-1 forward as two fixed stages, eager or traced and frozen.

The live path splits the forward where the bypass decision is taken (``detect``, then
``correct`` only when a modality is to be corrected), so that each stage is a graph TorchScript
can trace, and the ONNX export (:mod:`lipfault_ros.ort_stages`) exports the same two.
"""

from __future__ import annotations

import torch

from lipfault_ros.model.network import fault_decision

__all__ = ['CompiledStages', 'Stages']


class Stages(torch.nn.Module):
    """The network's forward for one tuple, split where the bypass decision is taken, so each
    stage is a fixed graph that TorchScript can trace: ``detect`` (encode, fuse, decode, score)
    and ``correct`` (fuse without the faulty modalities, compute block, decode). The same ops
    in the same order as :meth:`LipfaultNet.forward` (outputs are bit-identical)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def detect(self, cam: torch.Tensor, wr: torch.Tensor, jo: torch.Tensor,
               present: torch.Tensor, force: torch.Tensor, change: torch.Tensor,
               thresholds: torch.Tensor) -> tuple[torch.Tensor, ...]:
        latents, z = self.model.encode(cam, wr, jo, present)
        recon = self.model.decode(z)
        _, logits = self.model.detect((cam, wr, jo), latents, z, recon, present, change)
        scores, faults = fault_decision(logits, thresholds, present, force)
        return (scores, faults) + tuple(latents) + tuple(recon)

    def correct(self, lat_c: torch.Tensor, lat_w: torch.Tensor, lat_j: torch.Tensor,
                present: torch.Tensor, faults: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.model.decode(self.model.correct((lat_c, lat_w, lat_j), present,
                                                          faults)))


class CompiledStages:
    """Traced and frozen stages of :class:`Stages` for batch-1 CPU inference: the same
    outputs as the eager forward, without the Python dispatch of every module (about 1.5x
    faster for the default model)."""

    def __init__(self, model: torch.nn.Module, example: tuple[torch.Tensor, ...]) -> None:
        import warnings

        stages = Stages(model).eval()  # the engine's model is already plain
        cam, wr, jo, present, force, change = example
        thresholds = model.thresholds.detach().clone()
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter('ignore')  # trace warnings about constant shapes
            a = torch.jit.trace_module(stages, {'detect': (cam, wr, jo, present, force, change,
                                                           thresholds)}, check_trace=False)
            out = stages.detect(cam, wr, jo, present, force, change, thresholds)
            b = torch.jit.trace_module(stages, {'correct': (out[2], out[3], out[4], present,
                                                            out[1])}, check_trace=False)
            self.detect = torch.jit.freeze(a, preserved_attrs=['detect']).detect
            self.correct = torch.jit.freeze(b, preserved_attrs=['correct']).correct
        with torch.inference_mode():  # TorchScript optimises on its first runs: do them now
            for _ in range(3):
                out = self.detect(cam, wr, jo, present, force, change, thresholds)
                self.correct(out[2], out[3], out[4], present, out[1])
