"""The ROS 2 nodes of the package, one module per console script."""
