"""``python -m lipfault_ros.nodes.replay``: the ``replay_node`` console script."""

from lipfault_ros.nodes.replay.cli import main

if __name__ == '__main__':
    raise SystemExit(main())
