from glob import glob

from setuptools import find_packages, setup

package_name = 'lipfault_ros'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/launch', glob('launch/*.py')),
        ('share/' + package_name + '/config', glob('config/*.yaml') + glob('config/*.rviz') + glob('config/*.json')),
    ],
    package_data={package_name: ['data/*']},
    include_package_data=True,
    install_requires=['setuptools'],
    zip_safe=False,
    maintainer='lipfault_ros maintainers',
    maintainer_email='lipfault-ros@example.org',
    description='Fault-tolerant multimodal perception (camera, force/torque, joints) for ROS 2 '
                'with layer-specific Lipschitz modulation.',
    license='Apache-2.0',
    python_requires='>=3.10',
    entry_points={
        'console_scripts': [
            'pipeline_node = lipfault_ros.nodes.pipeline:main',
            'training_node = lipfault_ros.nodes.training:main',
            'sim_node = lipfault_ros.nodes.sim:main',
            'replay_node = lipfault_ros.nodes.replay:main',
            'view_node = lipfault_ros.nodes.view:main',
            'lipfault = lipfault_ros.cli:main',
        ],
    },
)
