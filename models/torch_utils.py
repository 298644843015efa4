"""Seeding, weight initialisation, checkpoints and sparse packing shared by the torch scorers.

Every random draw of a scorer comes from a ``numpy.random.Generator`` or ``torch.Generator``
derived from the seed given to ``fit`` (STYLE.md habit 1): the global torch RNG is never
seeded, and modules are built on the meta device so that building them does not even
consume it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn


def derive_seed(seed: int, *keys: int) -> int:
    """A 63-bit seed derived from ``seed`` and integer ``keys`` (independent streams)."""
    seq = np.random.SeedSequence([int(seed), *(int(k) for k in keys)])
    return int(seq.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def numpy_rng(seed: int, *keys: int) -> np.random.Generator:
    """A NumPy generator for the stream ``(seed, *keys)``."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), *(int(k) for k in keys)]))


def make_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``seed`` (never the global one)."""
    gen = torch.Generator(device=torch.device(device))
    gen.manual_seed(int(seed))
    return gen


def init_linear_(layer: nn.Linear, generator: torch.Generator) -> None:
    """PyTorch's default ``nn.Linear`` initialisation, drawn from ``generator``."""
    nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
    if layer.bias is not None:
        bound = 1.0 / math.sqrt(layer.in_features) if layer.in_features > 0 else 0.0
        nn.init.uniform_(layer.bias, -bound, bound, generator=generator)


ModuleT = TypeVar("ModuleT", bound=nn.Module)


def build_module(
    factory: Callable[[], ModuleT],
    init: Callable[[ModuleT, torch.Generator], None],
    seed: int,
    device: torch.device,
) -> ModuleT:
    """Build a module on the meta device, initialise it on the CPU from ``seed``, move it.

    Initialising on the CPU makes the weights identical whatever ``device`` is.
    """
    with torch.device("meta"):
        module = factory()
    module = module.to_empty(device="cpu")
    with torch.no_grad():
        init(module, make_generator(seed))
    return module.to(device)


def empty_module(factory: Callable[[], ModuleT]) -> ModuleT:
    """A module with uninitialised CPU weights, for loading a checkpoint into (no RNG used)."""
    with torch.device("meta"):
        module = factory()
    return module.to_empty(device="cpu")


def init_all_linear_(module: nn.Module, generator: torch.Generator) -> None:
    """Initialise every ``nn.Linear`` inside ``module`` in registration order."""
    for sub in module.modules():
        if isinstance(sub, nn.Linear):
            init_linear_(sub, generator)


def dropout(
    x: torch.Tensor, p: float, generator: torch.Generator | None, training: bool
) -> torch.Tensor:
    """Inverted dropout with an explicit generator (``nn.Dropout`` only uses the global RNG)."""
    if not training or p <= 0.0 or generator is None:
        return x
    keep = torch.rand(x.shape, generator=generator, device=x.device) >= p
    return x * keep / (1.0 - p)


def batch_indices(
    n: int, batch_size: int, rng: np.random.Generator | None = None
) -> Iterator[np.ndarray]:
    """Consecutive batches of ``range(n)``, shuffled by ``rng`` when given."""
    order = np.arange(n) if rng is None else rng.permutation(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def pick_source_domain(item_domain: np.ndarray, target_domain: int, ratings: sp.spmatrix) -> int:
    """The non-target domain with the most ratings (the two-domain models use one source)."""
    n_domains = int(item_domain.max()) + 1
    if n_domains < 2:
        raise ValueError("a cross-domain model needs a source domain besides the target")
    counts = np.bincount(item_domain[sp.csr_matrix(ratings).indices], minlength=n_domains)
    counts = counts.astype(np.int64)
    counts[target_domain] = -1
    return int(np.argmax(counts))


def csr_to_tensors(prefix: str, mat: sp.spmatrix) -> dict[str, torch.Tensor]:
    """Pack a sparse matrix as plain tensors (``torch.load(weights_only=True)`` reads them)."""
    m = sp.csr_matrix(mat)
    return {
        f"{prefix}.indptr": torch.from_numpy(m.indptr.astype(np.int64)),
        f"{prefix}.indices": torch.from_numpy(m.indices.astype(np.int64)),
        f"{prefix}.data": torch.from_numpy(m.data.astype(np.float64)),
        f"{prefix}.shape": torch.tensor(m.shape, dtype=torch.int64),
    }


def tensors_to_csr(prefix: str, tensors: dict[str, torch.Tensor]) -> sp.csr_matrix:
    """Inverse of :func:`csr_to_tensors`."""
    shape = tuple(int(s) for s in tensors[f"{prefix}.shape"].tolist())
    return sp.csr_matrix(
        (
            tensors[f"{prefix}.data"].numpy(),
            tensors[f"{prefix}.indices"].numpy(),
            tensors[f"{prefix}.indptr"].numpy(),
        ),
        shape=shape,
    )


@dataclass
class Checkpoint:
    """What a scorer writes: its kind, its config as JSON, and named tensors.

    ``tensors`` holds module weights (``"net."`` prefix by convention) and fitted arrays
    (converted to tensors so that loading never unpickles arbitrary objects).
    """

    kind: str
    config_json: str
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    extra: dict[str, float | int | str] = field(default_factory=dict)


def save_checkpoint(path: Path, ckpt: Checkpoint) -> None:
    """Write ``ckpt`` to ``path`` (parents created), tensors moved to the CPU first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {
        "kind": ckpt.kind,
        "config_json": ckpt.config_json,
        "tensors": {k: v.detach().to("cpu").contiguous() for k, v in ckpt.tensors.items()},
        "extra": dict(ckpt.extra),
    }
    torch.save(payload, path)


def load_checkpoint(path: Path, expected_kind: str) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`; the kind must match."""
    payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    if payload.get("kind") != expected_kind:
        raise ValueError(
            f"{path} holds a {payload.get('kind')!r} checkpoint, not {expected_kind!r}"
        )
    return Checkpoint(
        kind=payload["kind"],
        config_json=payload["config_json"],
        tensors=dict(payload["tensors"]),
        extra=dict(payload["extra"]),
    )


def module_tensors(prefix: str, module: nn.Module) -> dict[str, torch.Tensor]:
    """A module's state dict under ``prefix.``."""
    return {f"{prefix}.{k}": v for k, v in module.state_dict().items()}


def load_module_tensors(prefix: str, module: nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Load the ``prefix.`` entries of ``tensors`` into ``module`` (strict)."""
    cut = len(prefix) + 1
    state = {k[cut:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
    module.load_state_dict(state, strict=True)
