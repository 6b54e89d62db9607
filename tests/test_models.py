"""Model shapes at several input sizes, the optional face-quality output, checkpoint round trip,
refusing foreign checkpoints."""

import numpy as np
import pytest
import torch

from core.errors import InputError
from core.meta import ModelMeta
from core.models import (
    MODELS,
    build_model,
    count_parameters,
    init_points_bias,
    load_model,
    make_checkpoint,
    make_config,
    model_meta,
    points_layer,
    read_checkpoint,
    save_checkpoint,
)


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("size", [64, 96, 128])
def test_output_shape_follows_input_size(name, size):
    model = build_model(name, make_config(name, input_size=size)).eval()
    out = model(torch.zeros(3, 3, size, size))
    if name == "centernet":  # one row per stride-4 cell: score, box, four points
        assert out.shape == (3, (size // 4) ** 2, 13)
    else:
        assert out.shape == (3, {"box": 5, "resnet-simcc": 8 + 4}.get(name, 8))  # SimCC: and 4 point scores


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


@pytest.mark.parametrize("name", ["nalbert", "net", "landmark-bbox", "resnet"])
def test_quality_models_output_a_logit_after_the_points(tmp_path, name):
    model = build_model(name, make_config(name, input_size=64, quality=True)).eval()
    assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 9)
    path = tmp_path / "q.pt"
    save_checkpoint(path, make_checkpoint(name, model))
    loaded, ckpt = load_model(path, expect_kind="landmarks")
    assert ckpt["config"]["quality"] is True and ckpt["meta"]["quality"] is True
    assert ModelMeta.from_dict(ckpt["meta"]).output_width == 9
    assert loaded(torch.zeros(1, 3, 64, 64)).shape == (1, 9)


def test_configs_from_before_the_quality_head_build_point_only_models():
    config = {"input_size": 64, "num_points": 4, "dropout": 0.1}  # an old checkpoint's config: no "quality"
    model = build_model("resnet", config).eval()
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 8)
    assert model_meta("resnet", model.config).quality is False
    assert model_meta("box", make_config("box")).output_width == 5


def test_init_points_bias_sets_points_and_quality_logit():
    model = build_model("resnet", make_config("resnet", input_size=64, quality=True))
    mean = torch.arange(8, dtype=torch.float32) / 10
    init_points_bias(model, mean, quality_logit=1.5)
    bias = points_layer(model).bias.detach()
    assert torch.allclose(bias[:8], mean) and bias[8].item() == pytest.approx(1.5)
