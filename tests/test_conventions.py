"""Per-convention offsets in the face frame: hand-computed moves, the mirrored offsets of flipped crops,
the reference convention held at zero, the numpy and torch versions agreeing, and the training module
scoring each face in its own convention."""

import numpy as np
import pytest
import torch

from training.conventions import (
    ConventionOffsets,
    WithConventionOffsets,
    apply_face_frame_offsets,
    convention_index,
    mirror_offsets,
    move_in_face_frame,
    offsets_in_face_frame,
)
from training.data.samples import CONVENTIONS

# eyes 2 apart on a level line, nose and mouth below: the face frame is the image frame, unit 2
LEVEL = [[0.0, 0.0], [2.0, 0.0], [1.0, 1.0], [1.0, 2.0]]
# the same face turned 90 degrees clockwise on screen (y down): x axis (0, 1), y axis (-1, 0)
TURNED = [[0.0, 0.0], [0.0, 2.0], [-1.0, 1.0], [-2.0, 1.0]]


def test_move_in_face_frame_by_hand():
    offsets = torch.tensor([[[0.0, 0.0], [0.0, 0.0], [0.1, 0.2], [-0.05, 0.0]]] * 2)
    moved = move_in_face_frame(torch.tensor([LEVEL, TURNED]), offsets)
    # level: nose + 2 * (0.1, 0.2) = (1.2, 1.4); mouth + 2 * (-0.05, 0) = (0.9, 2.0)
    np.testing.assert_allclose(moved[0].numpy(), [[0, 0], [2, 0], [1.2, 1.4], [0.9, 2.0]], atol=1e-6)
    # turned: nose + 2 * (0.1 * (0, 1) + 0.2 * (-1, 0)) = (-1.4, 1.2); mouth + 2 * -0.05 * (0, 1) = (-2, 0.9)
    np.testing.assert_allclose(moved[1].numpy(), [[0, 0], [0, 2], [-1.4, 1.2], [-2.0, 0.9]], atol=1e-6)


def test_torch_and_numpy_versions_agree_and_invert():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(5, 4, 2)) * 30 + 60
    offsets = rng.normal(size=(5, 4, 2)) * 0.1
    moved = move_in_face_frame(torch.tensor(points), torch.tensor(offsets)).numpy()
    np.testing.assert_allclose(moved, apply_face_frame_offsets(points, offsets), atol=1e-9)
    # offsets measured back in the moved points' frame: the eyes did not move, so the frame is the same
    still = offsets.copy()
    still[:, :2] = 0
    back = offsets_in_face_frame(apply_face_frame_offsets(points, still), points)
    np.testing.assert_allclose(back, still, atol=1e-9)


def test_mirrored_offsets_swap_the_eyes_and_turn_x():
    table = torch.tensor([[[0.01, 0.02], [0.03, 0.04], [0.05, 0.06], [0.07, 0.08]]])
    np.testing.assert_allclose(mirror_offsets(table).numpy(),
                               [[[-0.03, 0.04], [-0.01, 0.02], [-0.05, 0.06], [-0.07, 0.08]]], atol=1e-7)


def test_offsets_module_keeps_the_reference_at_zero_and_mirrors_flipped_faces():
    module = ConventionOffsets()
    mtfl, ibug = convention_index("mtfl"), convention_index("ibug68")
    assert CONVENTIONS[ibug] == "ibug68"
    with torch.no_grad():
        module.offsets.fill_(0.1)  # the reference row too: it must still act as zero
    points = torch.tensor([LEVEL] * 3)
    moved = module(points, torch.tensor([ibug, mtfl, mtfl]), torch.tensor([False, False, True]))
    shift = (moved - points).detach().numpy()
    np.testing.assert_allclose(shift[0], 0, atol=1e-7)
    np.testing.assert_allclose(shift[1], np.full((4, 2), 0.2), atol=1e-6)  # 0.1 x the inter-ocular 2
    # mirrored: x offsets turn round (the eyes' rows swap, both 0.1 here)
    np.testing.assert_allclose(shift[2], np.tile([-0.2, 0.2], (4, 1)), atol=1e-6)
    # a gradient step leaves the reference convention's offsets at zero
    module.offsets.grad = None
    moved.sum().backward()
    assert module.offsets.grad[ibug].abs().max() == 0 and module.offsets.grad[mtfl].abs().max() > 0
    values = module.as_dict()
    assert values["ibug68"] == [[0.0, 0.0]] * 4 and values["mtfl"][2] == pytest.approx([0.1, 0.1])
    fresh = ConventionOffsets()
    fresh.load_dict(values)
    assert fresh.as_dict() == values


class _FixedPoints(torch.nn.Module):
    """A 'model' that always predicts the LEVEL face (crop units) and a quality logit of 2."""

    class config:  # noqa: N801 - mimics a model's config attribute
        num_points = 4

    def forward(self, x):
        row = torch.tensor(LEVEL).reshape(-1).tolist() + [2.0]
        return torch.tensor(row).repeat(len(x), 1)


def test_training_module_scores_each_face_in_its_convention():
    trainer = WithConventionOffsets(_FixedPoints())
    caltech = convention_index("caltech")
    with torch.no_grad():
        trainer.offsets.offsets[caltech, 2] = torch.tensor([0.0, 0.2])  # Caltech's nose: 0.2 iod lower
    points, quality, box, bins = trainer(torch.zeros(2, 3, 8, 8), torch.tensor([0, caltech]),
                                         torch.tensor([False, False]))
    assert box is None and bins is None and quality.tolist() == [2.0, 2.0]
    points = points.detach().numpy().reshape(2, 4, 2)
    np.testing.assert_allclose(points[0], LEVEL, atol=1e-7)
    np.testing.assert_allclose(points[1], [[0, 0], [2, 0], [1.0, 1.4], [1, 2]], atol=1e-6)  # nose 1.0 + 0.2 * 2
