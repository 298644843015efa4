"""Mean shift, clusters and the unexpectedness formulas of PURS (MODELS.md 3.3)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from models.purs_unexp import (
    cluster_centres,
    cluster_labels,
    mean_shift,
    unexpected_activation,
    unexpectedness,
)


def test_activation_is_zero_at_zero_and_peaks_at_one() -> None:
    x = torch.linspace(0.0, 6.0, 601, dtype=torch.float64)
    f = unexpected_activation(x)
    assert float(f[0]) == 0.0
    assert float(x[int(f.argmax())]) == pytest.approx(1.0)
    assert float(f.max()) == pytest.approx(math.exp(-1.0))
    assert float(unexpected_activation(torch.tensor(30.0))) < 1e-11


def test_mean_shift_finds_two_planted_clusters_with_their_sizes() -> None:
    gen = torch.Generator().manual_seed(0)
    a = torch.tensor([0.0, 0.0, 0.0]) + 0.02 * torch.randn(7, 3, generator=gen)
    b = torch.tensor([1.0, 1.0, 0.0]) + 0.02 * torch.randn(3, 3, generator=gen)
    x = torch.cat([a, b])[torch.tensor([0, 7, 1, 2, 8, 3, 4, 9, 5, 6])][None]  # interleaved
    mask = torch.ones(1, 10, dtype=torch.bool)
    modes = mean_shift(x, mask, bandwidth=0.2, tol=1e-5, max_iter=100)
    labels = cluster_labels(modes, mask, merge_radius=0.1)
    sizes = sorted(torch.bincount(labels[0]).tolist())
    assert [s for s in sizes if s > 0] == [3, 7]
    centres = cluster_centres(modes, labels, mask)[0]
    big = labels[0] == labels[0, 0]
    torch.testing.assert_close(centres[big].mean(0), a.mean(0), atol=1e-3, rtol=0)


def test_mean_shift_ignores_padding() -> None:
    x = torch.tensor([[[0.0, 0.0], [0.05, 0.0], [0.06, 0.0], [0.02, 0.0]]])
    mask = torch.tensor([[True, True, True, False]])
    modes = mean_shift(x, mask, bandwidth=0.2)
    labels = cluster_labels(modes, mask, merge_radius=0.1)
    assert labels[0].tolist() == [0, 0, 0, -1]
    torch.testing.assert_close(modes[0, 3], x[0, 3])  # padding left in place


def test_unexpectedness_paper_and_code_forms_by_hand() -> None:
    # Cluster A (3 points) at (0, 0), cluster B (1 point) at (3, 4).
    centres = torch.tensor([[[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [3.0, 4.0]]])
    weights = torch.full((1, 4), 0.25)
    items = torch.tensor([[[0.0, 0.0], [3.0, 0.0]]])
    paper = unexpectedness(items, centres, weights)
    np.testing.assert_allclose(paper[0].numpy(), [0.25 * 5, 0.75 * 3 + 0.25 * 4], rtol=1e-6)
    mean = centres.mean(dim=1, keepdim=True)  # (0.75, 1)
    code = unexpectedness(items, mean, torch.ones(1, 1))
    np.testing.assert_allclose(code[0].numpy(), [1.25, math.hypot(2.25, 1.0)], rtol=1e-6)
    assert bool(torch.all(code <= paper + 1e-6))  # triangle inequality (MODELS.md 3.3)
