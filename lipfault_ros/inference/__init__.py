"""Inference on synchronised tuples: NumPy in, NumPy out, for the live node and offline use.

``Engine.infer`` takes one :class:`~lipfault_ros.tuples.SensorTuple` and returns an
:class:`Inference`: per-modality score, threshold, fault and missing flags, and the output signals.
Output policy: a modality judged clean is passed through unchanged (the raw input: no
reconstruction blur, bit-exact); a faulty or missing one is replaced by the model's
reconstruction (from the corrected latent when the compute block ran). NaN/Inf inside a modality
marks it faulty (score +inf) and its values are zeroed before the model sees them; it never
raises. Wrong shapes, dtypes or joint names raise :class:`~lipfault_ros.errors.InputError`.

Modules: :mod:`~.engine` (:class:`Engine`, the loaded model), :mod:`~.results` (the records it
returns and the output policy that fills them), :mod:`~.stages` (the batch-1 forward split at
the bypass decision, eager or traced).
"""

from lipfault_ros.inference.engine import RUNTIMES, Engine
from lipfault_ros.inference.results import BatchInference, Inference, ModalityResult

__all__ = ['BatchInference', 'Engine', 'Inference', 'ModalityResult', 'RUNTIMES']
