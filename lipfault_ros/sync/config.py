"""The synchroniser's settings (:class:`SyncConfig`) and the policy for messages without a
header stamp (:class:`Headerless`)."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from lipfault_ros.errors import ConfigError
from lipfault_ros.settings import check_declared, param
from lipfault_ros.tuples import MODALITIES, Modality

__all__ = ['Headerless', 'NS', 'SyncConfig']

#: nanoseconds per second
NS = 1_000_000_000


class Headerless(str, enum.Enum):
    """What to do with a message whose header stamp is zero (the driver set no header)."""

    #: drop it and count it in ``SyncStats.headerless`` (default: never guess a time)
    DROP = 'drop'
    #: stamp it with its arrival time (only where an arrival time is given, i.e. live)
    ARRIVAL = 'arrival'
    #: raise SyncError
    REFUSE = 'refuse'

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class SyncConfig:
    """How the three streams are put together. Times in seconds, rates in Hz.

    Per-input queue sizes are ``ceil(rate * queue_span) + 1`` unless ``queue_sizes`` gives them
    (camera, wrench, joints): a queue must span more than the worst latency difference between
    the inputs, whatever the rate.
    """

    #: the nominal rates size the queues, the windows and the watchdog
    camera_rate: float = param(30.0, 'nominal camera rate (Hz)', low=0.1, high=10000.0)
    wrench_rate: float = param(500.0, 'nominal wrench rate (Hz)', low=0.1, high=100000.0)
    joints_rate: float = param(250.0, 'nominal joint_states rate (Hz)', low=0.1, high=100000.0)
    slop: float = param(0.02, 'largest stamp difference (s) between a camera frame and the '
                              'nearest wrench/joint message', low=0.0, high=1.0)
    #: a queue must span more than the worst latency difference between the inputs
    queue_span: float = param(0.5, 'time (s) each input queue covers; queue sizes follow the '
                                   'rates', low=0.01, high=10.0)
    #: explicit queue sizes (camera, wrench, joints), overriding ``queue_span``
    queue_sizes: tuple[int, int, int] | None = None
    #: history window lengths (samples) handed to the model with each tuple
    wrench_window: int = 32
    joints_window: int = 32
    silent_periods: float = param(10.0, 'a modality silent for this many of its periods is '
                                        'marked missing', low=1.0, high=1e9)
    #: so a busy executor is not taken for a dead sensor
    silent_min: float = param(0.3, 'but never before this many seconds (executor hiccups are '
                                   'not a dead sensor)', low=0.0, high=3600.0)
    #: covers messages of one input arriving out of order; 0: past the stamp is enough
    settle: float = param(0.0, 'extra wait (s) past a frame stamp for out-of-order messages',
                          low=0.0, high=1.0)
    #: a stamp older than its input's newest by more than this is a backwards jump -> reset
    jump_back: float = param(0.5, 'a stamp this far (s) behind its input resets the '
                                  'synchroniser (bag loop, sim restart)', low=0.001, high=1e6)
    headerless: Headerless = param(Headerless.DROP, 'messages with a zero stamp: drop '
                                   '(counted), arrival (stamp with arrival time) or refuse',
                                   choices=tuple(h.value for h in Headerless))
    #: a frame whose wrench or joints have no message within ``slop`` still makes a tuple, with
    #: that modality missing (False: the frame is dropped, as message_filters does)
    partial: bool = True

    def __post_init__(self) -> None:
        check_declared(self)
        for name in ('wrench_window', 'joints_window'):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f'sync parameter {name} must be >= 1, got '
                                  f'{getattr(self, name)!r}')
        if self.queue_sizes is not None:
            sizes = tuple(int(q) for q in self.queue_sizes)
            if len(sizes) != 3 or min(sizes) < 1:
                raise ConfigError(f'sync parameter queue_sizes must be three sizes >= 1 '
                                  f'(camera, wrench, joints), got {self.queue_sizes!r}')
            object.__setattr__(self, 'queue_sizes', sizes)
        try:
            object.__setattr__(self, 'headerless', Headerless(self.headerless))
        except ValueError:
            raise ConfigError(f'sync parameter headerless must be one of '
                              f'{[h.value for h in Headerless]}, got {self.headerless!r}') from None

    def rate(self, modality: Modality) -> float:
        """Nominal rate of one modality in Hz."""
        return {Modality.CAMERA: self.camera_rate, Modality.WRENCH: self.wrench_rate,
                Modality.JOINTS: self.joints_rate}[Modality(modality)]

    def period_ns(self, modality: Modality) -> int:
        """Nominal period of one modality in ns."""
        return int(round(NS / self.rate(modality)))

    def queue_size(self, modality: Modality) -> int:
        """Queue length of one input."""
        if self.queue_sizes is not None:
            return self.queue_sizes[MODALITIES.index(Modality(modality))]
        return int(math.ceil(self.rate(modality) * self.queue_span)) + 1

