"""Start the lipfault pipeline (and optionally the simulated robot and rviz2).

    ros2 launch lipfault_ros pipeline.launch.py model:=/path/to/artifact
    ros2 launch lipfault_ros pipeline.launch.py model:=... sim:=true rviz:=true
    ros2 launch lipfault_ros pipeline.launch.py model:=... camera_topic:=/cam/color/image_raw

Every parameter default lives in config/pipeline.yaml (``params_file``); this file only passes
on what the arguments override. If torch lives in a virtual environment, create it with
``--system-site-packages`` (or put it on PYTHONPATH) so that the nodes ros2 launch starts see it.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare('lipfault_ros')
    args = [
        DeclareLaunchArgument('params_file',
                              default_value=PathJoinSubstitution([share, 'config',
                                                                  'pipeline.yaml']),
                              description='parameter file of all lipfault nodes'),
        DeclareLaunchArgument('model', default_value='',
                              description='model artifact directory (lipfault train --out)'),
        DeclareLaunchArgument('device', default_value='auto',
                              description='auto, cpu or cuda'),
        DeclareLaunchArgument('namespace', default_value='',
                              description='namespace of the nodes'),
        DeclareLaunchArgument('use_sim_time', default_value='false',
                              description='use /clock (bag replay, simulation)'),
        DeclareLaunchArgument('camera_topic', default_value='camera/image_raw',
                              description='input image topic (remap)'),
        DeclareLaunchArgument('wrench_topic', default_value='wrench',
                              description='input wrench topic (remap)'),
        DeclareLaunchArgument('joints_topic', default_value='joint_states',
                              description='input joint states topic (remap)'),
        DeclareLaunchArgument('sim', default_value='false',
                              description='also start the simulated robot (sim_node)'),
        DeclareLaunchArgument('rviz', default_value='false',
                              description='also start rviz2 with config/lipfault.rviz'),
    ]
    params_file = LaunchConfiguration('params_file')
    use_sim_time = ParameterValue(LaunchConfiguration('use_sim_time'), value_type=bool)
    pipeline = Node(
        package='lipfault_ros', executable='pipeline_node', name='lipfault_pipeline',
        namespace=LaunchConfiguration('namespace'), output='screen',
        parameters=[params_file, {
            'model': ParameterValue(LaunchConfiguration('model'), value_type=str),
            'device': ParameterValue(LaunchConfiguration('device'), value_type=str),
            'use_sim_time': use_sim_time}],
        remappings=[('camera/image_raw', LaunchConfiguration('camera_topic')),
                    ('wrench', LaunchConfiguration('wrench_topic')),
                    ('joint_states', LaunchConfiguration('joints_topic'))])
    sim = Node(
        package='lipfault_ros', executable='sim_node', name='lipfault_sim',
        namespace=LaunchConfiguration('namespace'), output='screen',
        parameters=[params_file, {'use_sim_time': use_sim_time}],
        condition=IfCondition(LaunchConfiguration('sim')))
    rviz = Node(
        package='rviz2', executable='rviz2', name='rviz2', output='screen',
        arguments=['-d', PathJoinSubstitution([share, 'config', 'lipfault.rviz'])],
        parameters=[{'use_sim_time': use_sim_time}],
        condition=IfCondition(LaunchConfiguration('rviz')))
    return LaunchDescription(args + [pipeline, sim, rviz])
