"""Small rosbag2 recordings written with ``rosbags`` directly, for the bag and training tests.

The signals are smooth functions of the header stamp (so a model can learn them in a few steps)
and each stream's bag time lags its header stamp by a stream-specific delay, as on a robot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

JOINTS = tuple(f'panda_joint{i}' for i in range(1, 8))


def write_bag(path: Path, *, storage: str = 'mcap', duration_s: float = 3.0,
              camera_hz: float = 10.0, wrench_hz: float = 100.0, joints_hz: float = 50.0,
              image_size: tuple[int, int] = (24, 32), joints: Sequence[str] = JOINTS,
              distro: str = 'ROS2_KILTED', start_s: float = 100.0,
              camera_topic: str = '/camera/image_raw', wrench_topic: str = '/wrench',
              joints_topic: str = '/joint_states',
              wrench_type: str = 'geometry_msgs/msg/WrenchStamped',
              truth: Sequence[tuple[str, str, float, float]] = (), seed: int = 0,
              skip: Sequence[str] = ()) -> Path:
    """Write a bag and return its path. ``truth`` holds (modality, kind, start_s, end_s) relative
    to the start; ``skip`` names modalities not to record."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores[distro])
    T = ts.types
    rng = np.random.default_rng(seed)
    h, w = image_size
    plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
    events = []  # (bag_ns, order, topic, msgtype, message)

    def header(t_ns: int, frame: str):
        return T['std_msgs/msg/Header'](
            stamp=T['builtin_interfaces/msg/Time'](sec=t_ns // 10**9, nanosec=t_ns % 10**9),
            frame_id=frame)

    def stamps(hz: float, delay_ns: int):
        n = int(duration_s * hz)
        for i in range(n):
            t = int(start_s * 1e9) + int(i * 1e9 / hz) + int(rng.integers(0, 2_000_000))
            yield i, t, t + delay_ns

    yy, xx = np.mgrid[0:h, 0:w]
    if 'camera' not in skip:
        for i, t, bag_t in stamps(camera_hz, 30_000_000):
            phase = (t / 1e9) * 2.0
            r = (127 + 100 * np.sin(xx / 5 + phase)).astype(np.uint8)
            g = (127 + 100 * np.cos(yy / 4 - phase)).astype(np.uint8)
            b = np.full((h, w), 80, np.uint8)
            img = np.stack([r, g, b], -1)
            msg = T['sensor_msgs/msg/Image'](header=header(t, 'sim_camera'), height=h, width=w,
                                             encoding='rgb8', is_bigendian=0, step=w * 3,
                                             data=img.reshape(-1))
            events.append((bag_t, 0, camera_topic, 'sensor_msgs/msg/Image', msg))
    if 'wrench' not in skip:
        for i, t, bag_t in stamps(wrench_hz, 3_000_000):
            s = t / 1e9
            v = [np.sin(s * 3 + k) * (k + 1) for k in range(6)]
            vec = T['geometry_msgs/msg/Vector3']
            wr = T['geometry_msgs/msg/Wrench'](force=vec(x=v[0], y=v[1], z=v[2]),
                                               torque=vec(x=v[3], y=v[4], z=v[5]))
            if wrench_type == 'geometry_msgs/msg/WrenchStamped':
                msg = T['geometry_msgs/msg/WrenchStamped'](header=header(t, 'panda_hand'),
                                                           wrench=wr)
            else:
                msg = wr
            events.append((bag_t, 1, wrench_topic, wrench_type, msg))
    if 'joints' not in skip:
        for i, t, bag_t in stamps(joints_hz, 5_000_000):
            s = t / 1e9
            n = len(joints)
            pos = np.array([np.sin(s + k) for k in range(n)], np.float64)
            vel = np.array([np.cos(s + k) for k in range(n)], np.float64)
            eff = np.array([0.5 * np.sin(2 * s + k) for k in range(n)], np.float64)
            msg = T['sensor_msgs/msg/JointState'](header=header(t, ''), name=list(joints),
                                                  position=pos, velocity=vel, effort=eff)
            events.append((bag_t, 2, joints_topic, 'sensor_msgs/msg/JointState', msg))
    if truth:
        t0 = int(start_s * 1e9)
        for k in range(int(duration_s * 10)):
            t = t0 + int(k * 1e8)
            statuses = []
            for mod in ('camera', 'wrench', 'joints'):
                active = [(kind, a, b) for m, kind, a, b in truth
                          if m == mod and t0 + a * 1e9 <= t < t0 + b * 1e9]
                kv = T['diagnostic_msgs/msg/KeyValue']
                if active:
                    kind, a, b = active[0]
                    values = [kv(key='fault', value=kind), kv(key='severity', value='0.8'),
                              kv(key='start_ns', value=str(int(t0 + a * 1e9))),
                              kv(key='end_ns', value=str(int(t0 + b * 1e9)))]
                    statuses.append(T['diagnostic_msgs/msg/DiagnosticStatus'](
                        level=2, name=mod, message=kind, hardware_id='', values=values))
                else:
                    values = [kv(key='fault', value='none'), kv(key='severity', value='0'),
                              kv(key='start_ns', value='0'), kv(key='end_ns', value='0')]
                    statuses.append(T['diagnostic_msgs/msg/DiagnosticStatus'](
                        level=0, name=mod, message='ok', hardware_id='', values=values))
            msg = T['diagnostic_msgs/msg/DiagnosticArray'](header=header(t, ''), status=statuses)
            events.append((t + 1_000_000, 3, '/lipfault_sim/fault_truth',
                           'diagnostic_msgs/msg/DiagnosticArray', msg))
    events.sort(key=lambda e: (e[0], e[1]))
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        conns = {}
        for bag_t, _o, topic, msgtype, msg in events:
            if topic not in conns:
                conns[topic] = writer.add_connection(topic, msgtype, typestore=ts)
            writer.write(conns[topic], bag_t, ts.serialize_cdr(msg, msgtype))
    return path
