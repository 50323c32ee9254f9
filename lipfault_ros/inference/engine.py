"""The engine: a loaded artifact that judges and corrects synchronised tuples, NumPy in and out.

See :mod:`lipfault_ros.inference` for the output policy. The batch-1 forward runs eager, then
(CPU fp32, after a few calls) on the traced and frozen :mod:`~lipfault_ros.inference.stages`, or
on ONNX Runtime from the start (``runtime='onnxruntime'``).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from lipfault_ros.artifact import Artifact, load_artifact
from lipfault_ros.background import with_evidence
from lipfault_ros.device import resolve_device
from lipfault_ros.errors import ConfigError, InputError
from lipfault_ros.inference.inputs import OneInputs, checked_evidence
from lipfault_ros.inference.results import (BatchInference, Inference, ModalityResult,
                                            apply_policy, to_image)
from lipfault_ros.inference.stages import CompiledStages, Stages
from lipfault_ros.model.network import fault_decision
from lipfault_ros.model.residuals import frame_change
from lipfault_ros.tuples import MODALITIES, SensorTuple, TupleArrays

__all__ = ['Engine', 'RUNTIMES']

#: Where the batch-1 forward of :meth:`Engine.infer` runs: torch (eager, then the traced and
#: frozen stages) or ONNX Runtime (the same two stages exported to ONNX, CPU)
RUNTIMES: tuple[str, ...] = ('torch', 'onnxruntime')

log = logging.getLogger(__name__)

#: Per-tuple fault flags (3,) bool and score - threshold (3,) -> the modalities to correct (3,)
Decide = Callable[[np.ndarray, np.ndarray], np.ndarray]


#: The ``Engine.infer`` call that compiles the batch-1 CPU forward (a few hundred ms, once; the
#: node's warm-up makes it; one-off uses stay eager)
_COMPILE_AFTER = 2


class Engine:
    """A loaded model ready for inference (see :mod:`lipfault_ros.inference` for the output
    policy)."""

    def __init__(self, artifact: Artifact, *, device: str | torch.device = 'auto',
                 half: bool = False, runtime: str = 'torch',
                 compile_after: int = _COMPILE_AFTER) -> None:
        self.artifact = artifact
        self.device = resolve_device(device)
        self.half = bool(half) and self.device.type == 'cuda'
        self.dtype = torch.float16 if self.half else torch.float32
        from lipfault_ros.export import plain_network
        # Lipschitz parametrizations folded into plain weights (identical values in eval mode):
        # no per-call weight recomputation on the live path
        self.model = plain_network(artifact.model).to(self.device, self.dtype).eval()
        self.stats = artifact.stats
        self.thresholds = np.asarray(artifact.thresholds, np.float64)
        self._last_image_hw: tuple[int, int] | None = None
        # the camera's temporal context: stamp and model-space frame of the last camera input
        self._history: tuple[int, torch.Tensor] | None = None
        self._calls = 0
        self._compile_after = int(compile_after)  # 0: never
        self._compiled: Any = None  # CompiledStages, OrtStages, or None: eager
        self._eager = Stages(self.model)
        self._import_cv2()
        if runtime not in RUNTIMES:
            raise ConfigError(f'runtime must be one of {RUNTIMES}, got {runtime!r}')
        self.runtime = runtime
        if runtime == 'onnxruntime':  # the fast stages from the start, never traced
            if self.device.type != 'cpu' or self.half:
                raise ConfigError('runtime onnxruntime runs the model on the CPU in float32; '
                                  f'device {self.device} / half={self.half} is not supported')
            from lipfault_ros.ort_stages import OrtStages
            s, cfg = self.image_size, self.artifact.config
            blank = self._prepare(
                np.zeros((1, s, s, 3), np.uint8), np.zeros((1, cfg.wrench_window, 6), np.float32),
                np.zeros((1, cfg.joints_window, len(self.joint_names), 3), np.float32),
                np.zeros((1, 3), bool))
            self._compiled = OrtStages(self._eager, blank + (self.model.thresholds,),
                                       threads=torch.get_num_threads())
            self._compile_after = 0

    @property
    def eager_stages(self) -> Stages:
        """The staged forward in eager torch (the reference every faster runtime matches)."""
        return self._eager

    @property
    def compiled_stages(self) -> Any:
        """The compiled or ONNX Runtime stages ``infer`` runs now; None while it runs eager."""
        return self._compiled

    def _import_cv2(self) -> None:
        import cv2
        self._cv2 = cv2

    @classmethod
    def from_artifact(cls, path: Path | str, *, device: str | torch.device = 'auto',
                      half: bool = False, runtime: str = 'torch') -> Engine:
        return cls(load_artifact(path), device=device, half=half, runtime=runtime)

    @property
    def joint_names(self) -> tuple[str, ...]:
        return self.artifact.config.joint_names

    @property
    def image_size(self) -> int:
        """Side of the square image the model works at (inputs of any size are resized)."""
        return self.artifact.config.image_size

    @property
    def wrench_window(self) -> int:
        return self.artifact.config.wrench_window

    @property
    def joints_window(self) -> int:
        return self.artifact.config.joints_window

    # -- validation ---------------------------------------------------------------------------

    def _check_image(self, image: np.ndarray) -> np.ndarray:
        if not isinstance(image, np.ndarray):
            raise InputError(f'image must be a numpy array, got {type(image).__name__}')
        if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
            raise InputError(f'image must be (H, W, 3), got {image.shape}')
        if image.dtype != np.uint8:
            raise InputError(f'image must be uint8 RGB, got dtype {image.dtype}')
        return image

    def _check_signal(self, name: str, data: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        if not isinstance(data, np.ndarray):
            raise InputError(f'{name} must be a numpy array, got {type(data).__name__}')
        if data.shape != shape:
            raise InputError(f'{name} window must be {shape}, got {data.shape}')
        if not np.issubdtype(data.dtype, np.floating):
            raise InputError(f'{name} must be floating point, got dtype {data.dtype}')
        return data

    def _check_names(self, names: tuple[str, ...]) -> None:
        if tuple(names) != self.joint_names:
            unknown = [n for n in names if n not in self.joint_names]
            absent = [n for n in self.joint_names if n not in names]
            raise InputError(f'joint names {tuple(names)} do not match the model '
                             f'{self.joint_names} (unknown: {unknown}, absent: {absent})')

    # -- core -----------------------------------------------------------------------------------

    def _prepare(self, images: np.ndarray, wrench: np.ndarray, joints: np.ndarray,
                 missing: np.ndarray) -> tuple[torch.Tensor, ...]:
        """Model-space tensors from model-size images (N,S,S,3) uint8, raw windows, (N,3)
        missing; returns camera, wrench, joints, present, force_fault and the camera's frame
        change (N,), -1 (no previous frame) until :meth:`_with_history` fills it in."""
        # a reading beyond float32 (1e308) becomes inf here, a forced fault below, not a warning
        with np.errstate(over='ignore', invalid='ignore'):
            wr = self.stats.normalise_wrench(wrench)
            jo = self.stats.normalise_joints(joints)
        bad_w = ~np.isfinite(wr).all(axis=(1, 2))
        bad_j = ~np.isfinite(jo).all(axis=(1, 2))
        if bad_w.any():
            wr[~np.isfinite(wr)] = 0.0
        if bad_j.any():
            jo[~np.isfinite(jo)] = 0.0
        present = ~missing
        wr[~present[:, 1]] = 0.0
        jo[~present[:, 2]] = 0.0
        force = np.zeros_like(missing)
        force[:, 1] = bad_w & present[:, 1]
        force[:, 2] = bad_j & present[:, 2]
        cam = torch.from_numpy(np.ascontiguousarray(images)).to(self.device)
        cam = cam.permute(0, 3, 1, 2).to(self.dtype).div_(255.0)
        if not present[:, 0].all():
            cam[torch.from_numpy(~present[:, 0]).to(self.device)] = 0.0
        dev = self.device
        return (cam, torch.from_numpy(wr).to(dev, self.dtype),
                torch.from_numpy(jo).to(dev, self.dtype),
                torch.from_numpy(present).to(dev, self.dtype), torch.from_numpy(force).to(dev),
                torch.full((len(images),), -1.0, device=dev, dtype=self.dtype))

    def _with_history(self, tensors: tuple[torch.Tensor, ...], stamps_ns: np.ndarray,
                      camera: np.ndarray) -> tuple[torch.Tensor, ...]:
        """Fill in the frame change of consecutive calls' camera frames (rows in time order,
        ``camera`` (N,) bool: the row has one) and remember the last frame for the next call.
        The previous frame counts when ``ModelConfig.follows`` its stamp (the rule training
        uses); a row without a camera frame leaves the history as it is."""
        cfg = self.artifact.config
        cam = tensors[0]
        change = tensors[5].clone()
        for i in np.flatnonzero(camera):
            stamp = int(stamps_ns[i])
            if self._history is not None and bool(cfg.follows(stamp - self._history[0])):
                change[i] = frame_change(cam[i:i + 1], self._history[1],
                                         torch.ones(1, dtype=torch.bool, device=cam.device))[0]
            self._history = (stamp, cam[i:i + 1].clone())
        return tensors[:5] + (change,)

    def model_inputs(self, t: SensorTuple) -> tuple[torch.Tensor, ...]:
        """One tuple as the network's inputs, as :meth:`infer` makes them but without the frame
        history (plain tensors: a benchmark may trace them)."""
        one = self._one_inputs(t)
        return self._prepare(one.small[None], one.wrench[None], one.joints[None], one.missing)

    def forward_one(self, tensors: tuple[torch.Tensor, ...]) -> tuple[Any, ...]:
        """The network call :meth:`infer` makes (compiled or eager stages), no lifecycle."""
        return self._forward_one(tensors)

    def forward(self, tensors: tuple[torch.Tensor, ...]) -> Any:
        """The whole network's forward (``LipfaultOutput``) on :meth:`model_inputs`."""
        return self._run(*tensors)

    def forget_history(self) -> None:
        """Drop the remembered camera frame (a new episode starts)."""
        self._history = None

    def _run(self, *tensors: torch.Tensor):
        with torch.inference_mode():
            cam, wr, jo, present, force, change = tensors
            return self.model(cam, wr, jo, present, force_fault=force if force.any() else None,
                              camera_change=change)

    def _forward_one(self, tensors: tuple[torch.Tensor, ...], decide: Decide | None = None,
                     thresholds: torch.Tensor | None = None,
                     evidence: np.ndarray | None = None) -> tuple[Any, ...]:
        """One tuple through the network: scores, per-tuple faults, bypassed, outputs, and the
        (1,3) mask of modalities that were corrected. ``decide`` maps the per-tuple fault flags
        (3,) and the scores' margins over their thresholds (3,) to the modalities to correct
        (the fault lifecycle); NaN/Inf inputs are corrected
        whatever it says. ``evidence`` (3,) from detectors outside the network raises each
        score to at least threshold + evidence where finite (NaN: none). A CPU fp32 engine
        switches to the compiled stages after a few calls
        (live use); anything that cannot be compiled stays eager."""
        self._calls += 1
        if self._compiled is None and self._calls == self._compile_after and \
                self.device.type == 'cpu' and self.dtype == torch.float32:
            try:
                self._compiled = CompiledStages(self.model, tensors)
            except (RuntimeError, TypeError, ValueError) as exc:
                log.debug('batch-1 forward not compiled, staying eager: %s', exc)
        stages = self._compiled if self._compiled is not None else self._eager
        cam, wr, jo, present, force, change = tensors
        with torch.inference_mode():
            thr = self.model.thresholds if thresholds is None else thresholds
            out = stages.detect(cam, wr, jo, present, force, change, thr)
            scores, faults = out[0], out[1]
            if evidence is not None:
                known = np.where(present.cpu().numpy() > 0.5, evidence[None], np.nan)
                raised, over = with_evidence(scores.float().cpu().numpy(),
                                             thr.float().cpu().numpy(), known,
                                             log_domain=False)
                scores = torch.from_numpy(raised).to(scores)
                faults = faults | torch.from_numpy(over).to(faults.device)
            mask = faults
            if decide is not None:
                margins = (scores.float() - thr.float().reshape(1, -1))[0].cpu().numpy()
                want = np.asarray(decide(faults[0].cpu().numpy(), margins), bool).reshape(1, -1)
                mask = fault_decision(scores, thr, present, force,
                                      raised=torch.from_numpy(want).to(faults.device))[1]
            if bool(mask.any()):
                corrected = stages.correct(out[2], out[3], out[4], present, mask)
                return scores, faults, torch.tensor([False]), corrected, mask
            return scores, faults, torch.tensor([True]), out[5:], mask

    def set_threshold_offsets(self, offsets: Sequence[float]) -> None:
        """Thresholds = the artifact's calibrated ones + ``offsets`` (3,) in logit units: a
        positive offset means fewer alarms (tuning without retraining). Applies to
        :meth:`infer` and :meth:`infer_arrays` from the next call."""
        off = np.asarray(offsets, np.float64).reshape(-1)
        if off.shape != (3,) or not np.isfinite(off).all():
            raise ConfigError(f'threshold offsets must be 3 finite numbers, got {offsets!r}')
        self.thresholds = np.asarray(self.artifact.thresholds, np.float64) + off
        t = torch.as_tensor(self.thresholds, dtype=self.model.thresholds.dtype)
        with torch.no_grad():  # both stages read them at every call
            self.model.thresholds.copy_(t.to(self.device))

    def _resize(self, image: np.ndarray, h: int, w: int, interp: int) -> np.ndarray:
        if image.shape[:2] == (h, w):
            return image
        return self._cv2.resize(image, (w, h), interpolation=interp)

    def _one_inputs(self, t: SensorTuple) -> OneInputs:
        """The checked inputs of one tuple, zeros where a modality is missing (InputError for
        a wrong shape, dtype or joint names)."""
        cfg = self.artifact.config
        s = cfg.image_size
        missing = np.array([[m in t.missing or t.data(m) is None for m in MODALITIES]])
        if not missing[0, 2]:
            self._check_names(t.joint_names)
        if not missing[0, 0]:
            image = self._check_image(t.image)
            in_hw = image.shape[:2]
            self._last_image_hw = in_hw
            small = self._resize(image, s, s, self._cv2.INTER_AREA)
        else:
            image = None
            in_hw = self._last_image_hw or (s, s)
            small = np.zeros((s, s, 3), np.uint8)
        j = len(self.joint_names)
        if not missing[0, 1]:
            wrench = self._check_signal('wrench', t.wrench, (cfg.wrench_window, 6))
        else:
            wrench = np.zeros((cfg.wrench_window, 6), np.float32)
        if not missing[0, 2]:
            joints = self._check_signal('joints', t.joints, (cfg.joints_window, j, 3))
        else:
            joints = np.zeros((cfg.joints_window, j, 3), np.float32)
        return OneInputs(missing, image, tuple(in_hw), small, wrench, joints)

    def infer(self, t: SensorTuple, decide: Decide | None = None,
              scene_offsets: np.ndarray | None = None,
              evidence: np.ndarray | None = None) -> Inference:
        """Judge and correct one tuple (see module doc). ``decide``, when given, receives the
        per-tuple fault flags (3,) bool and each score's margin over its threshold (3,) and
        returns which modalities to correct (the live fault
        lifecycle: an alarm that is up keeps correcting on a tuple under threshold, a lone
        flag before the alarm is raised passes the raw signal). Missing modalities and NaN/Inf
        inputs are replaced whatever it returns. ``scene_offsets`` (3,), when given, raise this
        tuple's thresholds (:mod:`lipfault_ros.scene_thresholds`); each result reports the raised
        threshold and its offset. ``evidence`` (3,), when given, is what detectors outside the
        network say in logit units over the threshold (:mod:`lipfault_ros.background`; NaN:
        nothing): a modality with evidence over 0 is faulty on this tuple, and its score is at
        least threshold + evidence; evidence under 0 changes nothing."""
        one = self._one_inputs(t)
        missing = one.missing
        start = time.perf_counter()
        with torch.inference_mode():
            tensors = self._with_history(
                self._prepare(one.small[None], one.wrench[None], one.joints[None], missing),
                np.array([t.stamp_ns]), ~missing[:, 0])
        offsets = np.zeros(3) if scene_offsets is None else np.asarray(scene_offsets, np.float64)
        thr_t = None
        if offsets.any():
            thr_t = self.model.thresholds + torch.as_tensor(
                offsets, dtype=self.model.thresholds.dtype, device=self.model.thresholds.device)
        ev = checked_evidence(evidence)
        scores_t, faults_t, bypassed_t, corrected_t, mask_t = self._forward_one(
            tensors, decide, thr_t, ev)
        scores = scores_t[0].float().cpu().numpy().astype(np.float64)
        faults = faults_t[0].cpu().numpy()
        replace = mask_t[0].cpu().numpy() | missing[0]
        small, w_win, j_win = apply_policy(
            self.stats, replace[None], [c.float().cpu().numpy() for c in corrected_t],
            one.small[None], one.wrench[None], one.joints[None])
        # a replaced image goes out at the input's size; a clean one is the input itself
        img_out = self._resize(small[0], one.in_hw[0], one.in_hw[1], self._cv2.INTER_LINEAR) \
            if replace[0] else one.image
        w_out, j_last = w_win[0, -1], j_win[0, -1]
        latency = (time.perf_counter() - start) * 1e3
        results = {}
        for i, m in enumerate(MODALITIES):
            results[m] = ModalityResult(
                score=float('nan') if missing[0, i] else float(scores[i]),
                threshold=float(self.thresholds[i] + offsets[i]), fault=bool(faults[i]),
                missing=bool(missing[0, i]), corrected=bool(replace[i]),
                scene_offset=float(offsets[i]),
                evidence=float('nan') if ev is None else float(ev[i]))
        return Inference(t.stamp_ns, results, bool(bypassed_t[0]), img_out, w_out,
                         j_last[:, 0].copy(), j_last[:, 1].copy(), j_last[:, 2].copy(), latency)

    def infer_arrays(self, arrays: TupleArrays, batch_size: int = 64, *,
                     progress: bool = False) -> BatchInference:
        """Judge and correct N stacked tuples in batches (offline evaluation). Rows are in time
        order; the camera history starts afresh (and is left at the last row)."""
        cfg = self.artifact.config
        s = cfg.image_size
        self._check_names(arrays.joint_names)
        n = len(arrays)
        j = len(self.joint_names)
        if arrays.wrench.shape[1] != cfg.wrench_window or arrays.joints.shape[1] != \
                cfg.joints_window:
            raise InputError(f'windows must be wrench {cfg.wrench_window}, joints '
                             f'{cfg.joints_window}; got {arrays.wrench.shape[1]}, '
                             f'{arrays.joints.shape[1]}')
        if arrays.images.dtype != np.uint8:
            raise InputError(f'images must be uint8, got {arrays.images.dtype}')
        if batch_size < 1:
            raise ConfigError(f'batch_size must be >= 1, got {batch_size}')
        scores = np.zeros((n, 3))
        faults = np.zeros((n, 3), bool)
        bypassed = np.zeros(n, bool)
        images = np.zeros((n, s, s, 3), np.uint8)
        wrench = np.zeros((n, cfg.wrench_window, 6))
        joints = np.zeros((n, cfg.joints_window, j, 3))
        r_img, r_w, r_j = np.zeros_like(images), np.zeros_like(wrench), np.zeros_like(joints)
        missing_all = np.asarray(arrays.missing, bool)
        self.forget_history()
        starts = range(0, n, batch_size)
        if progress:
            from tqdm import tqdm
            starts = tqdm(starts, desc='inference', unit='batch')
        for b0 in starts:
            sl = slice(b0, min(n, b0 + batch_size))
            imgs = np.asarray(arrays.images[sl])
            if imgs.shape[1:3] != (s, s):
                imgs = np.stack([self._resize(im, s, s, self._cv2.INTER_AREA) for im in imgs])
            w_in = np.asarray(arrays.wrench[sl], np.float32)
            j_in = np.asarray(arrays.joints[sl], np.float32)
            miss = missing_all[sl]
            with torch.inference_mode():
                tensors = self._with_history(self._prepare(imgs, w_in, j_in, miss),
                                             np.asarray(arrays.stamps_ns[sl]), ~miss[:, 0])
            out = self._run(*tensors)
            sc = out.scores.float().cpu().numpy()
            sc[miss] = np.nan
            scores[sl] = sc
            fl = out.faults.cpu().numpy()
            faults[sl] = fl
            bypassed[sl] = out.bypassed.cpu().numpy()
            images[sl], wrench[sl], joints[sl] = apply_policy(
                self.stats, fl | miss, [c.float().cpu().numpy() for c in out.corrected],
                imgs, w_in, j_in)
            rec = [c.float().cpu().numpy() for c in out.reconstruction]
            r_img[sl] = to_image(rec[0])
            r_w[sl] = self.stats.denormalise_wrench(rec[1])
            r_j[sl] = self.stats.denormalise_joints(rec[2])
        return BatchInference(np.asarray(arrays.stamps_ns), scores, faults, missing_all,
                              bypassed, self.thresholds.copy(), images, wrench, joints,
                              r_img, r_w, r_j)
