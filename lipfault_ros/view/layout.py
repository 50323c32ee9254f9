"""The Foxglove layout that goes with the live view: what an operator opens beside the robot.

Written with the Foxglove SDK's layout classes (``foxglove.layouts``), from the view's own
channel names (:class:`~lipfault_ros.view.payloads.Channel`) and the payload fields, so the
layout cannot name a topic or a field the view does not send. ``lipfault view --layout FILE``
writes it; ``config/foxglove_layout.json`` is this module's output for the Panda's joints, and
a test keeps the two equal.

Top to bottom: raw next to corrected camera; force and torque, raw (solid) against corrected
(dashed); joint positions likewise; each modality's margin (score minus threshold: above 0,
the tuple alone is over the threshold) and its alarm lifecycle (clear / raised / latched).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from lipfault_ros.model.config import PANDA_JOINTS
from lipfault_ros.tuples import MODALITIES
from lipfault_ros.view.payloads import Channel

__all__ = ['foxglove_layout', 'write_layout']


def _series(channel: Channel, path: str, label: str, dashed: bool = False):
    from foxglove.layouts import PlotSeries
    return PlotSeries(value=f'{channel.value}.{path}', label=label,
                      line_style='dashed' if dashed else 'solid')


def _raw_vs_corrected(title: str, raw: Channel, corrected: Channel,
                      paths: Sequence[tuple[str, str]]):
    from foxglove.layouts import PlotConfig, PlotPanel
    series = []
    for path, label in paths:
        series += [_series(raw, path, f'{label} raw'),
                   _series(corrected, path, f'{label} corrected', dashed=True)]
    return PlotPanel(title=title, config=PlotConfig(paths=series, show_legend=True))


def foxglove_layout(joint_names: Sequence[str] = PANDA_JOINTS):
    """The view's layout (a ``foxglove.layouts.Layout``) for arms with ``joint_names``."""
    from foxglove.layouts import (ImageConfig, ImageModeConfig, ImagePanel, Layout, PlotConfig,
                                  PlotPanel, SplitContainer, SplitItem, StateTransitionsConfig,
                                  StateTransitionsPanel, StateTransitionsSeries)

    def row(*panels, proportion: float = 1.0) -> SplitItem:
        return SplitItem(proportion=proportion, content=SplitContainer(
            direction='row', items=[SplitItem(content=p) for p in panels]))

    def image(channel: Channel, title: str) -> ImagePanel:
        return ImagePanel(title=title, config=ImageConfig(
            image_mode=ImageModeConfig(image_topic=channel.value)))

    status = Channel.FAULT_STATUS
    margins = PlotPanel(title='margin over threshold (> 0: over)', config=PlotConfig(
        paths=[_series(status, f'{m.value}.margin', m.value) for m in MODALITIES],
        show_legend=True))
    alarms = StateTransitionsPanel(title='alarm', config=StateTransitionsConfig(paths=[
        StateTransitionsSeries(value=f'{status.value}.{m.value}.alarm', label=m.value)
        for m in MODALITIES]))
    return Layout(content=SplitContainer(direction='column', items=[
        row(image(Channel.CAMERA_RAW, 'camera (raw)'),
            image(Channel.CAMERA_CORRECTED, 'camera (corrected)'), proportion=2.0),
        row(_raw_vs_corrected('force (N)', Channel.WRENCH_RAW, Channel.WRENCH_CORRECTED,
                              [(f'force.{a}', f'F{a}') for a in 'xyz']),
            _raw_vs_corrected('torque (Nm)', Channel.WRENCH_RAW, Channel.WRENCH_CORRECTED,
                              [(f'torque.{a}', f'T{a}') for a in 'xyz'])),
        row(_raw_vs_corrected('joint position (rad)', Channel.JOINTS_RAW,
                              Channel.JOINTS_CORRECTED,
                              [(f'position.{n}', n) for n in joint_names])),
        row(margins, alarms),
    ]))


def write_layout(path: Path | str, joint_names: Sequence[str] = PANDA_JOINTS) -> Path:
    """Write :func:`foxglove_layout` as JSON to ``path`` (Foxglove: Layouts, Import)."""
    path = Path(path)
    path.write_text(foxglove_layout(joint_names).to_json() + '\n')
    return path
