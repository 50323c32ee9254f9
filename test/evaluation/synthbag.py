"""A small synthetic clean bag for evaluation tests, written with ``rosbags`` directly.

A moving colour gradient at 30 Hz (32 x 32 rgb8), a 6-axis wrench of sines at 500 Hz and 3 joints
(position, velocity, effort) at 250 Hz: smooth, so every injected fault is visible, and quick to
write. Header stamps equal bag times.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

JOINTS = ('j1', 'j2', 'j3')
T0_NS = 1_700_000_000_000_000_000
#: The fault schedule of the evaluation fixtures: clean stretches between faults, each modality.
SPECS = ('camera:black_frame:0.9:1.0:0.6', 'wrench:bias:0.9:2.2:0.6',
         'joints:bias:0.9:3.4:0.6', 'camera:occlusion:0.9:4.6:0.6',
         'wrench:dropout:0.8:5.8:0.5', 'joints:stuck:1.0:6.8:0.6')


def image_at(t: float, size: int = 32) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size] / size
    r = 0.5 + 0.5 * np.sin(2 * np.pi * (x + 0.3 * t))
    g = 0.5 + 0.5 * np.cos(2 * np.pi * (y - 0.2 * t))
    b = 0.5 + 0.25 * np.sin(2 * np.pi * (x + y + 0.1 * t))
    return (np.stack([r, g, b], -1) * 255).astype(np.uint8)


def write_bag(path: Path, *, duration_s: float = 3.0, storage: str = 'mcap',
              with_truth: bool = False, t0_ns: int = T0_NS) -> Path:
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.LATEST)
    T = ts.types
    Time = T['builtin_interfaces/msg/Time']
    Header = T['std_msgs/msg/Header']

    def header(t_ns: int, frame: str):
        return Header(stamp=Time(sec=t_ns // 10**9, nanosec=t_ns % 10**9), frame_id=frame)

    events = []
    for rate, kind in ((30, 'camera'), (500, 'wrench'), (250, 'joints')):
        n = int(duration_s * rate)
        for i in range(n):
            events.append((t0_ns + int(round(i * 1e9 / rate)), kind))
    events.sort()
    plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
    with Writer(path, version=9, storage_plugin=plugin) as w:
        cam = w.add_connection('/camera/image_raw', 'sensor_msgs/msg/Image', typestore=ts)
        wr = w.add_connection('/wrench', 'geometry_msgs/msg/WrenchStamped', typestore=ts)
        js = w.add_connection('/joint_states', 'sensor_msgs/msg/JointState', typestore=ts)
        truth = None
        if with_truth:
            truth = w.add_connection('/lipfault_sim/fault_truth',
                                     'diagnostic_msgs/msg/DiagnosticArray', typestore=ts)
        for t_ns, kind in events:
            t = (t_ns - t0_ns) / 1e9
            if kind == 'camera':
                img = image_at(t)
                msg = T['sensor_msgs/msg/Image'](
                    header=header(t_ns, 'sim_camera'), height=32, width=32, encoding='rgb8',
                    is_bigendian=0, step=96, data=img.reshape(-1).copy())
                w.write(cam, t_ns, ts.serialize_cdr(msg, 'sensor_msgs/msg/Image'))
            elif kind == 'wrench':
                v = [np.sin(2 * np.pi * (0.5 + 0.1 * k) * t + k) * (5 if k < 3 else 0.5)
                     for k in range(6)]
                V3 = T['geometry_msgs/msg/Vector3']
                msg = T['geometry_msgs/msg/WrenchStamped'](
                    header=header(t_ns, 'panda_hand'),
                    wrench=T['geometry_msgs/msg/Wrench'](force=V3(x=v[0], y=v[1], z=v[2]),
                                                         torque=V3(x=v[3], y=v[4], z=v[5])))
                w.write(wr, t_ns, ts.serialize_cdr(msg, 'geometry_msgs/msg/WrenchStamped'))
            else:
                pos = np.array([np.sin(0.7 * t + k) for k in range(3)])
                vel = np.array([0.7 * np.cos(0.7 * t + k) for k in range(3)])
                eff = np.array([2.0 + np.sin(0.3 * t + k) for k in range(3)])
                msg = T['sensor_msgs/msg/JointState'](
                    header=header(t_ns, ''), name=list(JOINTS), position=pos, velocity=vel,
                    effort=eff)
                w.write(js, t_ns, ts.serialize_cdr(msg, 'sensor_msgs/msg/JointState'))
            if truth is not None and kind == 'camera':
                St = T['diagnostic_msgs/msg/DiagnosticStatus']
                KV = T['diagnostic_msgs/msg/KeyValue']
                status = [St(level=0, name=m, message='ok', hardware_id='',
                             values=[KV(key='fault', value='none')])
                          for m in ('camera', 'wrench', 'joints')]
                msg = T['diagnostic_msgs/msg/DiagnosticArray'](header=header(t_ns, ''),
                                                               status=status)
                w.write(truth, t_ns, ts.serialize_cdr(msg, 'diagnostic_msgs/msg/DiagnosticArray'))
    return path


def write_empty_bag(path: Path) -> Path:
    """A bag with the three sensor topics and not one message (what a recorder leaves when it
    is stopped before the sensors start)."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.LATEST)
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as w:
        for topic, t in (('/camera/image_raw', 'sensor_msgs/msg/Image'),
                         ('/wrench', 'geometry_msgs/msg/WrenchStamped'),
                         ('/joint_states', 'sensor_msgs/msg/JointState')):
            w.add_connection(topic, t, typestore=ts)
    return path
