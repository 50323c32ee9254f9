"""The output policy: clean modalities pass through bit-exact, replaced ones are the estimate."""

from __future__ import annotations

import numpy as np

from lipfault_ros.inference.results import apply_policy, to_image
from lipfault_ros.normalise import NormStats


def _case(n=3, s=4, t=5, j=2, seed=0):
    rng = np.random.default_rng(seed)
    stats = NormStats(wrench_mean=rng.normal(size=6), wrench_std=rng.uniform(0.5, 2, 6),
                      joints_mean=rng.normal(size=(j, 3)), joints_std=rng.uniform(0.5, 2, (j, 3)))
    images = rng.integers(0, 256, (n, s, s, 3), dtype=np.uint8)
    wrench = rng.normal(size=(n, t, 6)).astype(np.float32)
    joints = rng.normal(size=(n, t, j, 3)).astype(np.float32)
    estimate = [rng.uniform(-0.2, 1.2, (n, 3, s, s)).astype(np.float32),
                rng.normal(size=(n, 6, t)).astype(np.float32),
                rng.normal(size=(n, 3 * j, t)).astype(np.float32)]
    return stats, estimate, images, wrench, joints


def test_nothing_replaced_is_the_input_itself():
    stats, estimate, images, wrench, joints = _case()
    img, w, jo = apply_policy(stats, np.zeros((3, 3), bool), estimate, images, wrench, joints)
    assert img is images
    assert w.dtype == np.float64 and np.array_equal(w, wrench.astype(np.float64))
    assert np.array_equal(jo, joints.astype(np.float64))


def test_each_replaced_cell_is_the_estimate_and_the_rest_the_input():
    stats, estimate, images, wrench, joints = _case()
    replace = np.array([[True, False, False], [False, True, True], [False, False, False]])
    img, w, jo = apply_policy(stats, replace, estimate, images, wrench, joints)
    assert np.array_equal(img[0], to_image(estimate[0])[0])
    assert np.array_equal(img[1:], images[1:])
    assert np.allclose(w[1], stats.denormalise_wrench(estimate[1])[1])
    assert np.array_equal(w[[0, 2]], wrench[[0, 2]].astype(np.float64))
    assert np.allclose(jo[1], stats.denormalise_joints(estimate[2])[1])
    assert np.array_equal(jo[[0, 2]], joints[[0, 2]].astype(np.float64))


def test_image_estimates_are_clipped_and_rounded():
    x = np.array([-0.5, 0.0, 0.5, 1.0, 1.5], np.float32).reshape(1, 1, 1, 5).repeat(3, 1)
    assert to_image(x)[0, 0, :, 0].tolist() == [0, 0, 128, 255, 255]
