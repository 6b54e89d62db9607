"""The SimCC landmark head (`core.models.SimCCLandmarks`): soft-argmax decoding, mean-face start, its
classification loss, training through the convention offsets, and warm starts from another checkpoint."""

from __future__ import annotations

import math

import pytest
import torch

from core.errors import InputError
from core.models import build_model, init_points_bias, make_checkpoint, make_config, save_checkpoint
from training.conventions import WithConventionOffsets, convention_index
from training.losses import bin_loss
from training.train import warm_start

TINY = dict(input_size=32, widths=(8, 16), hidden=16, point_channels=2)


def tiny(**overrides):
    return build_model("resnet-simcc", make_config("resnet-simcc", **{**TINY, **overrides})).eval()


def test_bins_span_the_crop_and_its_margins():
    model = tiny(split_ratio=2.0, margin=0.1)
    assert model.num_bins == round(32 * 2 * 1.2) == 77
    centers = model.bin_centers
    step = 1.2 / 77
    assert centers[0].item() == pytest.approx(-0.1 + step / 2) and centers[-1].item() == pytest.approx(1.1 - step / 2)


def test_decode_is_the_expected_bin_centre():
    model = tiny()
    n = model.num_bins
    logits_x = torch.full((1, 4, n), -1e4)
    logits_y = torch.full((1, 4, n), -1e4)
    for k in range(4):
        logits_x[0, k, 10 + k] = 0.0
        logits_y[0, k, 40 - k] = 0.0
    logits_x[0, 3, 20] = 0.0  # point 3: two equally likely x bins -> their mean
    points = model.decode(logits_x, logits_y).reshape(4, 2)
    c = model.bin_centers
    for k in range(3):
        assert points[k].tolist() == pytest.approx([c[10 + k].item(), c[40 - k].item()], abs=1e-6)
    assert points[3, 0].item() == pytest.approx((c[13] + c[20]).item() / 2, abs=1e-6)


def test_output_rows_match_the_regression_nets_and_start_at_the_mean_face():
    model = tiny(quality=True)
    mean = torch.tensor([[0.35, 0.4], [0.65, 0.4], [0.5, 0.55], [0.5, 0.7]])
    init_points_bias(model, mean, quality_logit=1.5)
    out = model(torch.randn(3, 3, 32, 32))
    assert out.shape == (3, 9 + 4)  # points, quality logit, one score per point
    assert torch.allclose(out[:, :8], mean.reshape(1, 8).expand(3, 8), atol=0.02)
    assert torch.allclose(out[:, 8], torch.full((3,), 1.5), atol=0.5)
    assert ((out[:, 9:] >= 0) & (out[:, 9:] <= 1)).all()


def test_point_scores_are_high_for_a_sharp_peak_and_low_for_a_spread_guess():
    model = tiny()
    n = model.num_bins
    bins_per_px = model.config.split_ratio
    sharp = torch.full((1, 4, n), -1e4)
    sharp[..., n // 2] = 0.0  # all the mass in one bin
    flat = torch.zeros((1, 4, n))  # a uniform guess over the crop and its margins
    near = torch.full((1, 4, n), -1e4)
    near[..., n // 2] = 0.0
    near[..., n // 2 + int(bins_per_px)] = 0.0  # two bins one input pixel apart: inside the window
    far = torch.full((1, 4, n), -1e4)
    far[..., 5] = 0.0
    far[..., n - 5] = 0.0  # two far-apart guesses: half the mass
    assert torch.allclose(model.point_scores(sharp, sharp), torch.ones(1, 4), atol=1e-5)
    assert torch.allclose(model.point_scores(near, sharp), torch.ones(1, 4), atol=1e-5)
    assert torch.allclose(model.point_scores(far, sharp), torch.full((1, 4), 0.5 ** 0.5), atol=1e-5)
    window_bins = 2 * int(round(2.0 * bins_per_px)) + 1
    assert torch.allclose(model.point_scores(flat, flat), torch.full((1, 4), window_bins / n), atol=1e-5)


def test_a_model_without_point_scores_keeps_the_old_rows():
    model = tiny(quality=True, point_scores=False)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 9)


def test_bin_loss_is_smallest_at_the_label_and_ignores_targets_beyond_the_bins():
    centers = torch.linspace(0.0, 1.0, 101)
    target = torch.tensor([[[0.3, 0.6]]])  # (B=1, P=1, 2)
    sigma = 0.02

    def label(t):
        g = torch.exp(-0.5 * ((centers - t) / sigma) ** 2)
        return g / g.sum()

    lx, ly = label(0.3), label(0.6)
    best = bin_loss(lx.clamp_min(1e-30).log()[None, None], ly.clamp_min(1e-30).log()[None, None], target, centers,
                    sigma)
    entropy = 0.5 * (-torch.xlogy(lx, lx).sum() - torch.xlogy(ly, ly).sum())
    assert best.item() == pytest.approx(entropy.item(), rel=1e-5)
    shifted = bin_loss(label(0.35).clamp_min(1e-30).log()[None, None], ly.clamp_min(1e-30).log()[None, None],
                       target, centers, sigma)
    assert shifted.item() > best.item() + 0.1
    uniform = torch.zeros(1, 1, 101)
    assert bin_loss(uniform, uniform, target, centers, sigma).item() == pytest.approx(math.log(101), rel=1e-5)
    far = torch.tensor([[[5.0, 5.0]]])
    assert bin_loss(uniform, uniform, far, centers, sigma).item() == 0.0


def test_training_module_gives_the_bins_and_the_convention_shift():
    trainer = WithConventionOffsets(tiny(quality=True))
    caltech = convention_index("caltech")
    with torch.no_grad():
        trainer.offsets.offsets[caltech, 2] = torch.tensor([0.0, 0.2])
    x = torch.randn(2, 3, 32, 32)
    points, quality, box, bins = trainer(x, torch.tensor([0, caltech]), torch.tensor([False, False]))
    logits_x, logits_y, shift, centers = bins
    n = trainer.model.num_bins
    assert box is None and quality.shape == (2,) and logits_x.shape == logits_y.shape == (2, 4, n)
    own = trainer.model(x)[:, :8].reshape(2, 4, 2)
    assert torch.allclose(points.reshape(2, 4, 2) - shift, own, atol=1e-6)
    assert shift[0].abs().max().item() == 0.0  # iBUG-68 faces: no shift
    iod = (own[1, 1] - own[1, 0]).norm()
    assert shift[1, 2].norm().item() == pytest.approx(0.2 * iod.item(), rel=1e-4)  # Caltech's nose
    assert centers.shape == (n,) and not shift.requires_grad


def test_warm_start_copies_what_fits(tmp_path):
    source = build_model("resnet", make_config("resnet", input_size=32, widths=(8, 16), head_channels=8, hidden=16))
    path = tmp_path / "resnet.pt"
    save_checkpoint(path, make_checkpoint("resnet", source))
    target = tiny(input_size=48)
    copied, total = warm_start(target, str(path))
    backbone = [k for k in target.state_dict() if k.startswith("features.")]
    assert copied == len(backbone) < total
    assert torch.equal(target.state_dict()["features.0.0.weight"], source.state_dict()["features.0.0.weight"])
    box = build_model("box", make_config("box", input_size=32, widths=(4, 6), hidden=16))
    save_checkpoint(tmp_path / "box.pt", make_checkpoint("box", box))
    with pytest.raises(InputError, match="no weights fit"):
        warm_start(tiny(), str(tmp_path / "box.pt"))


def test_quality_comes_from_the_point_tokens_and_old_configs_keep_the_pooled_head(tmp_path):
    model = tiny(quality=True)
    assert model.config.quality_source == "tokens" and model.quality_head.in_features == 4 * TINY["hidden"]
    old = {**TINY, "quality": True, "num_points": 4, "input_size": 32}  # a config saved before the field
    legacy = build_model("resnet-simcc", old)
    assert legacy.config.quality_source == "pooled" and legacy.quality_head.in_features == TINY["widths"][-1]
    assert legacy(torch.zeros(2, 3, 32, 32)).shape == (2, 9 + 4)  # point scores need no weights
    save_checkpoint(tmp_path / "new.pt", make_checkpoint("resnet-simcc", model))
    from core.models import load_model

    loaded, ckpt = load_model(tmp_path / "new.pt")
    assert ckpt["config"]["quality_source"] == "tokens" and loaded.config.quality_source == "tokens"
    with pytest.raises(ValueError, match="quality_source"):
        tiny(quality=True, quality_source="histogram")
