"""ModelConfig: validation, round trip, and networks of every supported image size."""

from __future__ import annotations

import pytest
import torch

from lipfault_ros.errors import ConfigError, InputError
from lipfault_ros.model import LipfaultNet, LipfaultOutput, ModelConfig


def test_defaults_fit_the_panda_and_round_trip_through_dict():
    cfg = ModelConfig()
    assert cfg.image_size == 128 and cfg.wrench_window == 32 and cfg.joints_channels == 21
    again = ModelConfig.from_dict(cfg.to_dict())
    assert again == cfg


@pytest.mark.parametrize('changes, match', [
    (dict(image_size=100), 'image_size=100 must be a multiple'),
    (dict(wrench_window=20), 'wrench_window=20 must be a multiple'),
    (dict(lip_compute=1.2), 'lip_compute=1.2 must be in'),
    (dict(compute_skip=0.95), 'compute_skip=0.95'),
    (dict(joint_names=('a', 'a')), 'duplicates'),
    (dict(latent=0), 'latent must be >= 1'),
])
def test_invalid_sizes_are_refused_by_name(changes, match):
    with pytest.raises(ConfigError, match=match):
        ModelConfig(**changes)


def test_unknown_keys_are_refused():
    with pytest.raises(ConfigError, match='unknown ModelConfig keys: bogus'):
        ModelConfig.from_dict({'bogus': 1})


def test_modulation_off_accepts_any_compute_constant_and_has_no_parametrizations():
    net = LipfaultNet(ModelConfig.tiny(modulation=False, lip_compute=3.0))
    assert not any('parametrizations' in k for k in net.state_dict())


@pytest.mark.parametrize('size', [64, 128, 256])
def test_forward_shapes_for_each_image_size(size):
    torch.manual_seed(0)
    cfg = ModelConfig(image_size=size)
    net = LipfaultNet(cfg).eval()
    cam = torch.rand(2, 3, size, size)
    wr, jo = torch.randn(2, 6, 32), torch.randn(2, 21, 32)
    with torch.no_grad():
        out = net(cam, wr, jo, always_correct=True)
    assert isinstance(out, LipfaultOutput)
    assert [tuple(x.shape) for x in out.corrected] == [(2, 3, size, size), (2, 6, 32),
                                                       (2, 21, 32)]
    assert out.scores.shape == (2, 3) and out.computed


def test_wrong_shape_or_dtype_raises_input_error_naming_the_modality():
    cfg = ModelConfig.tiny()
    net = LipfaultNet(cfg)
    cam = torch.rand(1, 3, 32, 32)
    wr, jo = torch.randn(1, 6, 16), torch.randn(1, 21, 16)
    with pytest.raises(InputError, match=r'wrench input must be \(B, 6, 16\)'):
        net(cam, torch.randn(1, 6, 8), jo)
    with pytest.raises(InputError, match='camera input must be floating point'):
        net(cam.to(torch.uint8), wr, jo)
    with pytest.raises(InputError, match='joints input has batch 2'):
        net(cam, wr, torch.randn(2, 21, 16))
    with pytest.raises(InputError, match=r'present mask must be \(1, 3\)'):
        net(cam, wr, jo, torch.ones(1, 2))
