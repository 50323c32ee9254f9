"""Fault scenarios: which faults to inject into a clean bag, where and for how long.

A scenario is a YAML file (``config/fault_scenario.yaml`` is the default one)::

    version: 1
    seed: 0                 # seeds every fault's random numbers
    lead_in_s: 2.0          # clean time before the first fault (sequential layout)
    gap_s: 1.5              # clean time between faults (sequential layout)
    defaults: {severity: 0.7, duration_s: 1.0}
    topics:                 # optional: the topic names of the clean bag
      camera: /camera/image_raw
      wrench: /wrench
      joints: /joint_states
      truth: /lipfault_sim/fault_truth
    faults:
      - {modality: camera, kind: blur}                  # placed after the previous one
      - {modality: wrench, kind: drift, severity: 0.5, duration_s: 2.0}
      - {modality: joints, kind: stuck, start_s: 30.0}  # explicit onset (s after bag start)

Times are seconds after the first header stamp of the bag. A fault without ``start_s`` starts
``gap_s`` after the previous fault ended (``lead_in_s`` after the bag start for the first), so a
list of faults becomes a schedule with clean stretches between them. The same entries can be
given on the command line as ``modality:kind:severity:start_s:duration_s`` (the
``faults.FaultSpec`` syntax).

Unknown keys, modalities, fault kinds and topics are refused with the file and entry named.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from lipfault_ros.errors import ConfigError, FaultError
from lipfault_ros.tuples import MODALITIES, Modality

__all__ = ['DEFAULT_SCENARIO', 'Scenario', 'ScheduledFault', 'default_scenario_path',
           'load_scenario']

_TOP_KEYS = {'version', 'seed', 'lead_in_s', 'gap_s', 'defaults', 'topics', 'faults',
             'description'}
_FAULT_KEYS = {'modality', 'kind', 'severity', 'start_s', 'duration_s'}
_TOPIC_KEYS = {'camera', 'wrench', 'joints', 'truth'}

#: File name of the scenario shipped in ``config/``.
DEFAULT_SCENARIO = 'fault_scenario.yaml'


@dataclass(frozen=True)
class ScheduledFault:
    """One fault of a scenario. ``start_s`` None means "after the previous one" (sequential).

    ``severity`` is in (0, 1]; times are seconds after the bag's first header stamp.
    """

    modality: Modality
    kind: str
    severity: float
    duration_s: float
    start_s: float | None = None


@dataclass(frozen=True)
class Scenario:
    """A validated fault scenario (see the module docstring)."""

    faults: tuple[ScheduledFault, ...]
    seed: int = 0
    lead_in_s: float = 2.0
    gap_s: float = 1.5
    topics: Mapping[str, str] = field(default_factory=dict)
    source: str = '<command line>'

    def schedule(self) -> tuple[ScheduledFault, ...]:
        """Every fault with an explicit ``start_s``, in the order given."""
        out = []
        t = self.lead_in_s
        for f in self.faults:
            start = f.start_s if f.start_s is not None else t
            out.append(replace(f, start_s=float(start)))
            t = start + f.duration_s + self.gap_s
        return tuple(out)

    def end_s(self) -> float:
        """When the last fault ends (s after the bag start)."""
        sched = self.schedule()
        return max((f.start_s + f.duration_s for f in sched), default=0.0)

    def fitted(self, available_s: float) -> Scenario:
        """The same schedule compressed in time so that it ends by ``available_s``.

        Start times, durations, gaps and the lead-in all shrink by one factor; scenarios that
        already fit are returned as they are.
        """
        end = self.end_s() + self.gap_s
        if end <= available_s or end <= 0:
            return self
        k = available_s / end
        faults = tuple(replace(f, start_s=None if f.start_s is None else f.start_s * k,
                               duration_s=f.duration_s * k) for f in self.faults)
        return replace(self, faults=faults, lead_in_s=self.lead_in_s * k, gap_s=self.gap_s * k)

    def fault_specs(self) -> list[Any]:
        """``faults.FaultSpec`` records of the schedule (start/duration in seconds)."""
        from lipfault_ros.faults import FaultSpec

        return [FaultSpec(f.modality, f.kind, f.severity, f.start_s, f.duration_s)
                for f in self.schedule()]

    @classmethod
    def from_specs(cls, specs: Sequence[str], *, seed: int = 0) -> Scenario:
        """Parse ``modality:kind:severity:start_s:duration_s`` strings (``--fault``)."""
        faults = []
        for text in specs:
            parts = str(text).split(':')
            if len(parts) != 5:
                raise FaultError(f'--fault {text!r}: expected modality:kind:severity:start_s:'
                                 f'duration_s, e.g. wrench:drift:0.5:3.0:2.0')
            entry = dict(zip(('modality', 'kind', 'severity', 'start_s', 'duration_s'), parts))
            faults.append(_fault(entry, {}, f'--fault {text!r}'))
        scenario = cls(tuple(faults), seed=int(seed))
        scenario.validate()
        return scenario

    def validate(self) -> None:
        """Refuse overlapping faults of one modality and non-positive durations."""
        sched = self.schedule()
        if not sched:
            raise ConfigError(f'{self.source}: the scenario holds no fault')
        for m in MODALITIES:
            mine = sorted((f for f in sched if f.modality == m), key=lambda f: f.start_s)
            for a, b in zip(mine, mine[1:]):
                if b.start_s < a.start_s + a.duration_s:
                    raise ConfigError(f'{self.source}: {m.value} faults {a.kind} (at '
                                      f'{a.start_s:g} s) and {b.kind} (at {b.start_s:g} s) '
                                      f'overlap; one fault per modality at a time')
        for f in sched:
            if f.start_s < 0:
                raise ConfigError(f'{self.source}: {f.modality.value}:{f.kind} starts at '
                                  f'{f.start_s:g} s, before the bag starts')


def _number(value: Any, what: str, where: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f'{where}: {what} must be a number, got {value!r}') from None
    return out


def _fault(entry: Any, defaults: Mapping[str, Any], where: str) -> ScheduledFault:
    from lipfault_ros.faults import check_fault

    if not isinstance(entry, Mapping):
        raise ConfigError(f'{where}: a fault must be a mapping with modality and kind')
    unknown = sorted(set(entry) - _FAULT_KEYS)
    if unknown:
        raise ConfigError(f'{where}: unknown keys {unknown}; allowed {sorted(_FAULT_KEYS)}')
    merged = {**defaults, **entry}
    if 'modality' not in merged or 'kind' not in merged:
        raise ConfigError(f'{where}: a fault needs modality and kind')
    try:
        modality = Modality(str(merged['modality']))
    except ValueError:
        raise ConfigError(f'{where}: unknown modality {merged["modality"]!r}; use one of '
                          f'{[m.value for m in MODALITIES]}') from None
    try:
        kind = check_fault(modality, str(merged['kind']))
    except FaultError as exc:
        raise FaultError(f'{where}: {exc}') from None
    severity = _number(merged.get('severity', 0.7), 'severity', where)
    if not 0.0 < severity <= 1.0:
        raise ConfigError(f'{where}: severity must be in (0, 1], got {severity:g}')
    duration = _number(merged.get('duration_s', 1.0), 'duration_s', where)
    if duration <= 0:
        raise ConfigError(f'{where}: duration_s must be > 0, got {duration:g}')
    start = merged.get('start_s')
    start_s = None if start is None else _number(start, 'start_s', where)
    return ScheduledFault(modality, str(kind), severity, duration, start_s)


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file (see the module docstring)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'scenario file {path} does not exist')
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f'{path} is not valid YAML: {exc}') from None
    if not isinstance(doc, Mapping):
        raise ConfigError(f'{path}: a scenario is a mapping with a `faults` list')
    unknown = sorted(set(doc) - _TOP_KEYS)
    if unknown:
        raise ConfigError(f'{path}: unknown keys {unknown}; allowed {sorted(_TOP_KEYS)}')
    if int(doc.get('version', 1)) != 1:
        raise ConfigError(f'{path}: scenario version {doc.get("version")} is not supported '
                          f'(this version reads 1)')
    defaults = doc.get('defaults') or {}
    if not isinstance(defaults, Mapping) or set(defaults) - {'severity', 'duration_s'}:
        raise ConfigError(f'{path}: defaults may set severity and duration_s only')
    topics = doc.get('topics') or {}
    if not isinstance(topics, Mapping):
        raise ConfigError(f'{path}: topics must map camera/wrench/joints/truth to topic names')
    if set(topics) - _TOPIC_KEYS:
        raise ConfigError(f'{path}: unknown topic keys {sorted(set(topics) - _TOPIC_KEYS)}; '
                          f'allowed {sorted(_TOPIC_KEYS)}')
    entries = doc.get('faults')
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f'{path}: `faults` must be a non-empty list')
    faults = tuple(_fault(e, defaults, f'{path}: faults[{i}]') for i, e in enumerate(entries))
    scenario = Scenario(faults, seed=int(doc.get('seed', 0)),
                        lead_in_s=_number(doc.get('lead_in_s', 2.0), 'lead_in_s', str(path)),
                        gap_s=_number(doc.get('gap_s', 1.5), 'gap_s', str(path)),
                        topics={str(k): str(v) for k, v in topics.items()}, source=str(path))
    scenario.validate()
    return scenario


def default_scenario_path() -> Path | None:
    """``config/fault_scenario.yaml`` of the source tree or the installed share directory."""
    import sys

    here = Path(__file__).resolve().parents[2]
    for p in (here / 'config' / DEFAULT_SCENARIO,
              Path(sys.prefix) / 'share' / 'lipfault_ros' / 'config' / DEFAULT_SCENARIO):
        if p.is_file():
            return p
    return None
