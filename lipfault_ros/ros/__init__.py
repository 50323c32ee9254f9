"""The ROS layer: thin adapters (parameters, QoS, message conversion) over the ROS-free core."""
