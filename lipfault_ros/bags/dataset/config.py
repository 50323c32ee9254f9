""":class:`DatasetConfig`: how bags become training tuples (sizes, topics, synchroniser settings,
the split, chunking), checked once when it is made."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from lipfault_ros.bags.dataset.split import SplitMode
from lipfault_ros.errors import ConfigError
from lipfault_ros.topics import TopicConfig

__all__ = ['DatasetConfig']


@dataclass(frozen=True)
class DatasetConfig:
    """How bags become training tuples.

    ``image_size``, ``wrench_window``, ``joints_window`` and ``joint_names`` must equal the
    model's (:meth:`from_model` copies them); ``joint_names`` None takes the first bag's order.
    ``sync`` holds extra keyword arguments for :class:`lipfault_ros.sync.SyncConfig` (slop,
    rates...); the windows are always set from this config.
    """

    image_size: int = 128
    wrench_window: int = 32
    joints_window: int = 32
    joint_names: tuple[str, ...] | None = None
    topics: TopicConfig = field(default_factory=TopicConfig)
    sync: Mapping[str, Any] = field(default_factory=dict)
    # Validation: by time block (default) or by bag, the fraction of data set apart, the block
    # length, and the margin around validation blocks that training tuples must keep.
    split: SplitMode = SplitMode.TIME
    val_fraction: float = 0.2
    block_s: float = 10.0
    gap_s: float = 1.0
    # Rows (at the model's size) buffered in memory before they are written to the cache files.
    chunk_rows: int = 256
    # The header-stamp reorder window of the bag reader (ns).
    reorder_ns: int = 500_000_000

    def __post_init__(self) -> None:
        object.__setattr__(self, 'split', SplitMode(self.split))
        if self.joint_names is not None:
            object.__setattr__(self, 'joint_names', tuple(str(n) for n in self.joint_names))
        if isinstance(self.topics, Mapping):
            object.__setattr__(self, 'topics', TopicConfig.from_mapping(self.topics))
        if self.image_size < 1 or self.wrench_window < 1 or self.joints_window < 1:
            raise ConfigError('DatasetConfig image_size, wrench_window and joints_window must be '
                              '>= 1')
        if not 0 < self.val_fraction < 1:
            raise ConfigError(f'DatasetConfig.val_fraction={self.val_fraction} must be in (0, 1)')
        if self.block_s <= 0 or self.gap_s < 0:
            raise ConfigError('DatasetConfig.block_s must be > 0 and gap_s >= 0')
        if self.chunk_rows < 1:
            raise ConfigError('DatasetConfig.chunk_rows must be >= 1')

    @classmethod
    def from_model(cls, model_config: Any, **changes: Any) -> DatasetConfig:
        """Sizes from a :class:`~lipfault_ros.model.config.ModelConfig`, the rest from
        ``changes``."""
        base = dict(image_size=int(model_config.image_size),
                    wrench_window=int(model_config.wrench_window),
                    joints_window=int(model_config.joints_window),
                    joint_names=tuple(model_config.joint_names))
        base.update(changes)
        return cls(**base)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], **base: Any) -> DatasetConfig:
        """From a config file section; unknown keys are refused by name."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f'unknown data settings {unknown}; expected some of {sorted(names)}')
        values = dict(base)
        values.update(data)
        try:
            return cls(**values)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f'invalid data settings: {exc}') from None

    def sync_config(self, rates: Mapping[str, float] | None = None) -> Any:
        """The synchroniser configuration with this config's windows; ``rates``
        (``camera_rate``... in Hz, e.g. measured from a bag) fill in rates ``sync`` leaves out."""
        from lipfault_ros.sync import SyncConfig

        kwargs = {k: v for k, v in (rates or {}).items() if k not in self.sync}
        kwargs.update(self.sync)
        kwargs.update(wrench_window=self.wrench_window, joints_window=self.joints_window)
        try:
            return SyncConfig(**kwargs)
        except TypeError as exc:
            raise ConfigError(f'invalid synchroniser settings {dict(self.sync)}: {exc}') from None

    def cache_settings(self, rates: Mapping[str, float] | None = None) -> dict[str, Any]:
        """Everything that changes the cached rows (split settings do not)."""
        sync = self.sync_config(rates)
        sync_dict = dataclasses.asdict(sync)
        return {'image_size': self.image_size, 'wrench_window': self.wrench_window,
                'joints_window': self.joints_window,
                'joint_names': list(self.joint_names) if self.joint_names else None,
                'topics': dataclasses.asdict(self.topics),
                'sync': json.loads(json.dumps(sync_dict, default=str)),
                'reorder_ns': self.reorder_ns}
