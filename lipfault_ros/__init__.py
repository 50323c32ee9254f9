"""lipfault_ros: fault-tolerant multimodal perception for ROS 2 robots.

The core (everything outside ``lipfault_ros.ros`` and ``lipfault_ros.nodes``) is plain Python,
NumPy and PyTorch and never imports rclpy, so it runs offline on bags and in tests without a ROS
runtime. The ROS layer is a thin set of adapters on top.
"""

__version__ = '0.1.0'
