"""Several bags, one open at a time: samples and fault truth read bag after bag, and
:func:`check_bags`, which validates the bags against each other before any long work."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from lipfault_ros.bags.reader.bag import BagReader
from lipfault_ros.bags.reader.info import BagInfo
from lipfault_ros.errors import BagError
from lipfault_ros.topics import TopicConfig
from lipfault_ros.tuples import MODALITIES, Modality, Sample

__all__ = ['check_bags', 'read_samples', 'read_truth']


def _as_paths(bags: str | Path | Iterable[str | Path]) -> list[Path]:
    if isinstance(bags, (str, Path)):
        return [Path(bags)]
    paths = [Path(b) for b in bags]
    if not paths:
        raise BagError('no bag given; pass at least one rosbag2 directory or file')
    return paths


def read_samples(bags: str | Path | Iterable[str | Path], *, topics: TopicConfig | None = None,
                 modalities: Sequence[Modality] = MODALITIES, progress: bool = False
                 ) -> Iterator[tuple[str, Sample]]:
    """``(bag path, sample)`` for every sensor message of every bag, bag after bag, each bag in
    header-stamp order (see :mod:`lipfault_ros.bags.reader.bag`). One bag is open at a time."""
    paths = _as_paths(bags)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(desc='reading bags', unit='msg', leave=False)
    try:
        for path in paths:
            with BagReader(path, topics=topics) as reader:
                reader.check(modalities)
                update = bar.update if bar is not None else None
                for sample in reader.samples(modalities, progress=update):
                    yield str(path), sample
    finally:
        if bar is not None:
            bar.close()


def read_truth(bags: str | Path | Iterable[str | Path], *, topics: TopicConfig | None = None
               ) -> list[Any]:
    """Fault intervals of all bags together (``truth.FaultInterval``, stamps in ns)."""
    out: list[Any] = []
    for path in _as_paths(bags):
        with BagReader(path, topics=topics) as reader:
            out.extend(reader.truth())
    return out


def check_bags(bags: str | Path | Iterable[str | Path], *, topics: TopicConfig | None = None,
               modalities: Sequence[Modality] = MODALITIES, min_duration_ns: int = 0,
               readers: Mapping[Path, BagReader] | None = None
               ) -> tuple[list[BagInfo], tuple[str, ...]]:
    """Validate bags before any long work: topics and types present, each bag at least
    ``min_duration_ns`` long, the same joints in every bag (matched by name, any order).

    ``readers`` maps bag paths to readers the caller has already opened (with the same topics):
    those are used as they are and left open. Returns the infos and the joint names of the first
    bag.
    """
    infos: list[BagInfo] = []
    names: tuple[str, ...] | None = None
    first: Path | None = None
    for path in _as_paths(bags):
        given = readers.get(path) if readers else None
        with (nullcontext(given) if given is not None
              else BagReader(path, topics=topics)) as reader:
            info = reader.check(modalities)
            if info.duration_ns < min_duration_ns:
                raise BagError(f'bag {path} spans {info.duration_ns / 1e9:.3f} s, shorter than '
                               f'the {min_duration_ns / 1e9:.3f} s one history window needs; '
                               f'record longer or leave this bag out')
            if Modality.JOINTS in [Modality(m) for m in modalities]:
                these = reader.joint_names()
                if names is None:
                    names, first = these, path
                elif set(these) != set(names):
                    extra = sorted(set(these) - set(names))
                    lacking = sorted(set(names) - set(these))
                    raise BagError(f'bag {path} has joints {list(these)}, but bag {first} has '
                                   f'{list(names)} (extra here: {extra}, missing here: '
                                   f'{lacking}); train on bags of one robot, or set the model\'s '
                                   f'joint_names to the joints they share')
            infos.append(info)
    return infos, names or ()
