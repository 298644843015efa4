"""PURS unexpectedness: mean-shift clusters of a user's history and distance to them.

MODELS.md 3.3. The history item embeddings are clustered by mean shift with a Gaussian
kernel of bandwidth r; a candidate's unexpectedness is its size-weighted distance to the
cluster centres (PAPER eq.3), or the code's distance to their weighted mean. All functions
work on batches of users at once; the only loop is over mean-shift iterations.
"""

from __future__ import annotations

import torch


def unexpected_activation(x: torch.Tensor) -> torch.Tensor:
    """f(x) = x · e^{-x}: 0 at 0, peak 1/e at x = 1, -> 0 for large x (MODELS.md 3.3, CODE)."""
    return x * torch.exp(-x)


def mean_shift(
    x: torch.Tensor,
    mask: torch.Tensor,
    bandwidth: float = 0.2,
    tol: float = 1e-5,
    max_iter: int = 50,
) -> torch.Tensor:
    """Move every point to its kernel-density mode, all points at once (MODELS.md 3.3).

    c_j <- Σ_l K(c_j, x_l) x_l / Σ_l K(c_j, x_l), K(c, x) = exp(-||c - x||² / r²), starting at
    c_j = x_j, until max_j ||c_j^new - c_j|| < ``tol`` over the whole batch or ``max_iter``
    iterations (REC: the code's per-feature stopping norm is replaced by a per-point one).

    Args:
        x: (B, N, D) points.
        mask: (B, N) bool, False = padding (no weight, left in place).

    Returns:
        (B, N, D) modes.
    """
    weight = mask.to(x.dtype)[:, None, :]  # (B, 1, N)
    c = x
    for _ in range(max_iter):
        kernel = torch.exp(-torch.cdist(c, x).square() / bandwidth**2) * weight  # (B, N, N)
        moved = kernel @ x / kernel.sum(dim=-1, keepdim=True).clamp_min(1e-30)
        moved = torch.where(mask[..., None], moved, x)
        change = (moved - c).norm(dim=-1).max() if c.numel() else torch.zeros(())
        c = moved
        if float(change) < tol:
            break
    return c


def cluster_labels(modes: torch.Tensor, mask: torch.Tensor, merge_radius: float) -> torch.Tensor:
    """Points whose modes lie within ``merge_radius`` share a cluster (MODELS.md 3.3).

    The merge rule is RECONSTRUCTED: the code never forms clusters and the paper gives no
    radius; modes of one basin agree to about the stopping tolerance, distinct modes of a
    Gaussian KDE lie about a bandwidth apart, so half a bandwidth separates the two.

    Returns:
        (B, N) long: each point's label is the smallest index of a valid point with a mode
        within the radius (so labels are point indices); -1 on padding.
    """
    n = modes.shape[1]
    close = torch.cdist(modes, modes) < merge_radius
    close = close & mask[:, None, :] & mask[:, :, None]
    index = torch.arange(n, device=modes.device).expand_as(close)
    labels = torch.where(close, index, torch.full_like(index, n)).min(dim=-1).values
    return torch.where(mask, labels, torch.full_like(labels, -1))


def cluster_centres(modes: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Centre C_k (mean of its members' modes) of each point's cluster -> (B, N, D)."""
    same = (labels[:, :, None] == labels[:, None, :]) & mask[:, None, :] & mask[:, :, None]
    same = same.to(modes.dtype)
    return same @ modes / same.sum(dim=-1, keepdim=True).clamp_min(1.0)


def unexpectedness(
    items: torch.Tensor, centres: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """unexp(u, i) = Σ_k w_k ||e_i - C_k||₂ (MODELS.md 3.3, PAPER eq.3).

    With per-point centres and w_j = 1/N for the N valid history points this is the paper's
    Σ_k (N_k / N) ||e_i - C_k||; with one centre (the mean of the modes) and w = 1 it is the
    code's variant.

    Args:
        items: (B, C, D) candidate item embeddings.
        centres: (B, K, D).
        weights: (B, K), zero for padding.

    Returns:
        (B, C).
    """
    return (torch.cdist(items, centres) * weights[:, None, :]).sum(dim=-1)
