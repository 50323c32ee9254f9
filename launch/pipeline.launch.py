"""Start the lipfault pipeline (and optionally the simulated robot, rviz2 and the live view).

    ros2 launch lipfault_ros pipeline.launch.py model:=/path/to/artifact
    ros2 launch lipfault_ros pipeline.launch.py model:=... sim:=true rviz:=true
    ros2 launch lipfault_ros pipeline.launch.py model:=... sim:=true view:=true
    ros2 launch lipfault_ros pipeline.launch.py params_file:=robot.yaml namespace:=arm1

Every parameter default lives in config/pipeline.yaml (``params_file``, sections keyed
``/**/<node name>`` so they apply in any namespace). ``model``, ``device`` and ``use_sim_time``
override that file only when given: left empty, the file's values stand. ``rviz:=true`` where
rviz2 is not installed logs a warning and starts everything else as usual. ``view:=true`` starts
``view_node``, the live view for Foxglove (``ws://127.0.0.1:8765``, or ``view_port``), a process
of its own that drops rather than slows the pipeline; its defaults are config/view.yaml, which
a ``/**/lipfault_view`` section of ``params_file`` overrides. If torch lives in a
virtual environment, create it with ``--system-site-packages`` (or put it on PYTHONPATH) so that
the nodes ros2 launch starts see it.
"""

from pathlib import Path

from ament_index_python.packages import PackageNotFoundError, get_package_prefix
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.logging import get_logger
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

from lipfault_ros.topics import INPUT_NAMES, SIM_NODE
from lipfault_ros.tuples import Modality

SHARE = FindPackageShare('lipfault_ros')
#: the launch argument that remaps each sensor input (the nodes' relative name -> the robot's)
REMAP_ARGS = {INPUT_NAMES[m]: f'{m.value}_topic' for m in INPUT_NAMES}


def overrides(context, names):
    """``{name: value}`` for each launch argument of ``names`` given a non-empty value."""
    types = {'use_sim_time': bool}
    return {name: ParameterValue(LaunchConfiguration(name), value_type=types.get(name, str))
            for name in names if LaunchConfiguration(name).perform(context)}


def rviz2_installed() -> bool:
    """Whether the ament index has rviz2 with its executable (what the rviz2 Node needs)."""
    try:
        return (Path(get_package_prefix('rviz2')) / 'lib' / 'rviz2' / 'rviz2').is_file()
    except PackageNotFoundError:
        return False


def nodes(context):
    """The actions to start, once the launch arguments are known."""
    params_file = LaunchConfiguration('params_file')
    namespace = LaunchConfiguration('namespace')
    sim_time = overrides(context, ['use_sim_time'])
    remaps = [(name, LaunchConfiguration(arg)) for name, arg in REMAP_ARGS.items()]
    actions = [
        Node(package='lipfault_ros', executable='pipeline_node', name='lipfault_pipeline',
             namespace=namespace, output='screen',
             parameters=[params_file, overrides(context, ['model', 'device', 'use_sim_time'])],
             remappings=remaps),
        Node(package='lipfault_ros', executable='sim_node', name=SIM_NODE,
             namespace=namespace, output='screen', parameters=[params_file, sim_time],
             condition=IfCondition(LaunchConfiguration('sim'))),
    ]
    view_port = LaunchConfiguration('view_port')
    actions.append(Node(
        package='lipfault_ros', executable='view_node', name='lipfault_view',
        namespace=namespace, output='screen',
        parameters=[PathJoinSubstitution([SHARE, 'config', 'view.yaml']), params_file,
                    {'port': ParameterValue(view_port, value_type=int)}
                    if view_port.perform(context) else {}, sim_time],
        remappings=remaps,
        condition=IfCondition(LaunchConfiguration('view'))))
    if IfCondition(LaunchConfiguration('rviz')).evaluate(context):
        if rviz2_installed():
            from lipfault_ros.ros.rviz_config import write_rviz_config
            config = write_rviz_config(
                PathJoinSubstitution([SHARE, 'config', 'lipfault.rviz']).perform(context),
                namespace.perform(context),
                {name: LaunchConfiguration(arg).perform(context)
                 for name, arg in REMAP_ARGS.items()},
                LaunchConfiguration('rviz_frame').perform(context))
            actions.append(Node(
                package='rviz2', executable='rviz2', name='rviz2', output='screen',
                arguments=['-d', str(config)], parameters=[sim_time]))
        else:
            get_logger('pipeline.launch').warning(
                'rviz:=true, but rviz2 is not installed (no package rviz2 with an rviz2 '
                'executable): starting the other nodes without it')
    return actions


def generate_launch_description() -> LaunchDescription:
    args = [
        DeclareLaunchArgument('params_file',
                              default_value=PathJoinSubstitution([SHARE, 'config',
                                                                  'pipeline.yaml']),
                              description='parameter file of all lipfault nodes'),
        DeclareLaunchArgument('model', default_value='',
                              description='model artifact directory (lipfault train --out); '
                                          'empty: the params_file value'),
        DeclareLaunchArgument('device', default_value='',
                              description='auto, cpu or cuda; empty: the params_file value'),
        DeclareLaunchArgument('namespace', default_value='',
                              description='namespace of the nodes'),
        DeclareLaunchArgument('use_sim_time', default_value='',
                              description='true: use /clock (bag replay, simulation); '
                                          'empty: the params_file value'),
        DeclareLaunchArgument('camera_topic', default_value=INPUT_NAMES[Modality.CAMERA],
                              description='input image topic (remap)'),
        DeclareLaunchArgument('wrench_topic', default_value=INPUT_NAMES[Modality.WRENCH],
                              description='input wrench topic (remap)'),
        DeclareLaunchArgument('joints_topic', default_value=INPUT_NAMES[Modality.JOINTS],
                              description='input joint states topic (remap)'),
        DeclareLaunchArgument('sim', default_value='false',
                              description='also start the simulated robot (sim_node)'),
        DeclareLaunchArgument('rviz', default_value='false',
                              description='also start rviz2 with config/lipfault.rviz (its '
                                          'topics moved to the namespace and remaps) '
                                          '(skipped with a warning if rviz2 is not installed)'),
        DeclareLaunchArgument('rviz_frame', default_value='panda_hand',
                              description="rviz's fixed frame: the wrench's frame draws the "
                                          'wrench and the fault texts without TF (the '
                                          'simulated robot publishes none); on a robot with '
                                          'robot_state_publisher, its base frame'),
        DeclareLaunchArgument('view', default_value='false',
                              description='also start the live view for Foxglove (view_node; '
                                          'open ws://127.0.0.1:8765 in the Foxglove app)'),
        DeclareLaunchArgument('view_port', default_value='',
                              description='port of the live view; empty: the config/view.yaml '
                                          'value (8765)'),
    ]
    return LaunchDescription(args + [OpaqueFunction(function=nodes)])
