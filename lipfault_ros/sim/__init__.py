"""The simulated robot (ROS-free): a pybullet Franka Panda cell producing camera frames, wrist
force/torque and joint states at robot-like rates, with faults on demand, and the recorder that
writes it into rosbags."""

from lipfault_ros.sim.config import SimConfig
from lipfault_ros.sim.robot import ARM_JOINTS, JOINT_NAMES, SimRobot

__all__ = ['ARM_JOINTS', 'JOINT_NAMES', 'SimConfig', 'SimRobot']
