"""Model shapes at several input sizes, checkpoint round trip, refusing foreign checkpoints."""

import numpy as np
import pytest
import torch

from core.errors import InputError
from core.models import (
    MODELS,
    build_model,
    count_parameters,
    load_model,
    make_checkpoint,
    make_config,
    read_checkpoint,
    save_checkpoint,
)


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("size", [64, 96, 128])
def test_output_shape_follows_input_size(name, size):
    model = build_model(name, make_config(name, input_size=size)).eval()
    out = model(torch.zeros(3, 3, size, size))
    assert out.shape == (3, 5 if name == "box" else 8)


def test_nalbert_matches_the_course_architecture():
    model = build_model("nalbert", make_config("nalbert", input_size=224))
    convs = [m for m in model.features if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 64, 128, 256, 512]
    assert [c.kernel_size[0] for c in convs] == [5, 3, 3, 3, 1]
    linears = [m for m in model.head if isinstance(m, torch.nn.Linear)]
    assert linears[0].in_features == 512 * 6 * 6  # s = 6 at 224 px
    assert [lin.out_features for lin in linears] == [1024, 512, 8]
    drops = [m for m in model.head if isinstance(m, torch.nn.Dropout)]
    assert [d.p for d in drops] == [0.25, 0.25]


def test_course_models_with_box_heads_give_points_and_boxes():
    for name in ("net", "landmark-bbox"):
        model = build_model(name, make_config(name, input_size=64)).eval()
        points, box = model.forward_all(torch.zeros(2, 3, 64, 64))
        assert points.shape == (2, 8) and box.shape == (2, 4)


def test_box_regressor_box_is_inside_unit_square():
    model = build_model("box", make_config("box", input_size=64)).eval()
    out = model(torch.randn(4, 3, 64, 64) * 10)
    assert out.shape == (4, 5)
    assert (out[:, :4] >= 0).all() and (out[:, :4] <= 1).all()


@pytest.mark.parametrize("half", [False, True])
def test_checkpoint_round_trip(tmp_path, half):
    model = build_model("resnet", make_config("resnet", input_size=64)).eval()
    path = tmp_path / "m.pt"
    save_checkpoint(path, make_checkpoint("resnet", model, half=half, epoch=3))
    loaded, ckpt = load_model(path, expect_kind="landmarks")
    assert ckpt["epoch"] == 3 and ckpt["meta"]["kind"] == "landmarks" and ckpt["meta"]["input_size"] == 64
    x = torch.randn(2, 3, 64, 64)
    tol = 5e-2 if half else 1e-6
    assert torch.allclose(model(x), loaded(x), atol=tol)
    assert count_parameters(loaded) == count_parameters(model)


def test_checkpoint_of_other_kind_is_refused(tmp_path):
    model = build_model("box", make_config("box", input_size=64))
    path = tmp_path / "box.pt"
    save_checkpoint(path, make_checkpoint("box", model))
    with pytest.raises(InputError, match="box model"):
        load_model(path, expect_kind="landmarks")


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickle_bearing_checkpoint_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": "resnet", "config": {}, "state_dict": {}, "payload": _Evil()}, path)
    with pytest.raises(InputError, match="not a loadable facetrack checkpoint"):
        read_checkpoint(path)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04truncated"])
def test_garbage_checkpoint_is_one_clear_error(tmp_path, content):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(InputError, match="bad.pt"):
        read_checkpoint(path)


def test_foreign_dict_checkpoint_is_refused(tmp_path):
    path = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(InputError, match="not a facetrack checkpoint"):
        read_checkpoint(path)


def test_unknown_model_name():
    with pytest.raises(InputError, match="unknown model"):
        build_model("transformer")
    assert np.isfinite(count_parameters(build_model("nalbert")))


def test_too_small_input_is_a_clear_error():
    with pytest.raises(InputError, match="too small"):
        build_model("nalbert", make_config("nalbert", input_size=40))
