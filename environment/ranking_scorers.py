"""The scorers the ranking protocol can train, by name, with model sizes chosen from the data.

``scale_defaults`` is the ONE place where the deep models' sizes and epochs follow the size
of the data; every scorer of ``evaluation.scorers`` is built from it by ``build_scorer``.
SerenDiff and PURS are imported lazily: a checkout without them still evaluates the rest.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from models.baselines import (
    BPRMFConfig,
    BPRMFScorer,
    PopularityScorer,
    UserCFConfig,
    UserCFScorer,
)
from models.scoring import Scorer
from models.serencdr import SerenCDRConfig, SerenCDRScorer
from models.vae import CrossDomainVAEConfig, CrossDomainVAEScorer

Tier = Literal["small", "medium", "large"]


@dataclass(frozen=True)
class ScaleDefaults:
    """Sizes and epochs of the trained scorers for one data size (see :func:`scale_defaults`)."""

    tier: Tier
    vae_hidden: int
    vae_latent: int
    vae_epochs: int
    vae_batch: int
    cdr_input: int
    cdr_latent: int
    cdr_epochs: int
    bpr_dim: int
    bpr_epochs: int


_TIERS: dict[str, tuple[int, int, int, int, int, int, int, int]] = {
    # VAE hidden, latent, epochs, batch; SerenCDR latent, epochs; BPR dim, epochs
    "small": (64, 16, 100, 32, 8, 100, 32, 100),
    "medium": (256, 64, 50, 128, 32, 60, 64, 50),
    "large": (512, 128, 20, 128, 64, 40, 64, 20),
}


def scale_defaults(n_users: int, n_items: int, tier: Tier | None = None) -> ScaleDefaults:
    """Model sizes that suit the data: small nets on hundreds of users, the papers' at scale.

    Three tiers by number of users (``n_items`` only caps the latent sizes):

    * small (< 1,000 users: MovieLens-latest-small, the synthetic worlds): VAE hidden 64 /
      latent 16, batch 32 (the VAE paper's MovieLens batch), 100 epochs; SerenCDR inputs 16 /
      latent 8, 100 epochs; BPR-MF dimension 32, 100 epochs. The models' first measurements
      on a few hundred users (the world of tests/models/conftest.py) found SerenCDR needs
      sizes this small to beat the baselines there, and the VAE trains well at 64 / 16;
    * medium (< 10,000 users, e.g. MovieLens-1M): VAE 256 / 64, batch 128, 50 epochs;
      SerenCDR 64 / 32, 60 epochs; BPR-MF 64, 50 epochs;
    * large: the papers' settings, VAE 512 / 128 with 20 epochs (MODELS.md 4.4, it saturates
      at ~20 on Amazon), SerenCDR 128 / 64 with 40 epochs (1.6); BPR-MF 64, 20 epochs.

    ``tier`` forces a tier whatever the number of users. SerenCDR's input size is twice its
    latent size so that the auxiliary loss can use the raw input item vectors (MODELS.md 1.4,
    CODE). These are a-priori choices, not tuned on any test split.
    """
    cap = max(1, n_items // 4)  # a latent wider than a quarter of the catalogue only memorises
    name: Tier = tier or ("small" if n_users < 1_000 else "medium" if n_users < 10_000 else "large")
    hid, lat, ep, batch, c_lat, c_ep, b_dim, b_ep = _TIERS[name]
    c_lat = min(c_lat, cap)
    return ScaleDefaults(
        tier=name,
        vae_hidden=hid,
        vae_latent=min(lat, cap),
        vae_epochs=ep,
        vae_batch=batch,
        cdr_input=2 * c_lat,
        cdr_latent=c_lat,
        cdr_epochs=c_ep,
        bpr_dim=min(b_dim, cap),
        bpr_epochs=b_ep,
    )


Builder = Callable[[ScaleDefaults, int | None], Scorer]


@dataclass(frozen=True)
class ScorerSpec:
    """How to build one named scorer, and what it needs from the data."""

    name: str
    build: Builder
    uses_labels: bool = False  # trains on the serendipity labels
    cross_domain: bool = False  # needs a source domain besides the target
    description: str = ""


def _vae(**extra: Any) -> Builder:
    def build(s: ScaleDefaults, epochs: int | None) -> Scorer:
        cfg = CrossDomainVAEConfig(
            hidden_dim=s.vae_hidden,
            latent_dim=s.vae_latent,
            batch_size=s.vae_batch,
            epochs=epochs or s.vae_epochs,
            **extra,
        )
        return CrossDomainVAEScorer(cfg)

    return build


def _serencdr(small_sizes: bool = False, **extra: Any) -> Builder:
    """SerenCDR at the world's tier sizes, or with ``small_sizes`` at the small tier's at any
    scale (capped like the tier's: the small latent is the smallest, so min() is the cap)."""

    def build(s: ScaleDefaults, epochs: int | None) -> Scorer:
        latent, default_epochs = s.cdr_latent, s.cdr_epochs
        if small_sizes:
            latent, default_epochs = min(_TIERS["small"][4], s.cdr_latent), _TIERS["small"][5]
        cfg = SerenCDRConfig(
            input_dim=2 * latent,
            latent_dim=latent,
            epochs=epochs or default_epochs,
            **extra,
        )
        return SerenCDRScorer(cfg)

    return build


def _bpr(s: ScaleDefaults, epochs: int | None) -> Scorer:
    return BPRMFScorer(BPRMFConfig(dim=s.bpr_dim, epochs=epochs or s.bpr_epochs))


def _lazy(module: str, scorer: str, config: str, **extra: Any) -> Builder:
    """A builder that imports ``module`` when called (its default config plus ``extra``,
    epochs overridden)."""

    def build(s: ScaleDefaults, epochs: int | None) -> Scorer:
        mod = importlib.import_module(module)
        cfg_cls = getattr(mod, config)
        fields = getattr(cfg_cls, "model_fields", {})
        cfg = cfg_cls(**extra, **({"epochs": epochs} if epochs and "epochs" in fields else {}))
        out: Scorer = getattr(mod, scorer)(cfg)
        return out

    return build


SPECS: dict[str, ScorerSpec] = {
    s.name: s
    for s in (
        ScorerSpec("popularity", lambda s, e: PopularityScorer(), description="training counts"),
        ScorerSpec("bpr_mf", _bpr, description="BPR matrix factorisation, all domains"),
        ScorerSpec(
            "user_cf",
            # Cosine with 100 neighbours: chosen over Pearson and k = 30 on a validation split
            # (bench/study_validation.py; validation HR_seren@10 0.315 against 0.226).
            lambda s, e: UserCFScorer(UserCFConfig(similarity="cosine", k=100)),
            description="user-kNN vote (cosine, k = 100)",
        ),
        ScorerSpec("vae", _vae(mode="cross"), cross_domain=True, description="cross-domain VAE"),
        ScorerSpec("vae_single", _vae(mode="single"), description="target-only VAE"),
        ScorerSpec(
            "vae_merged", _vae(mode="merged"), cross_domain=True, description="one-catalogue VAE"
        ),
        ScorerSpec(
            "vae_cold",
            _vae(mode="cross", cold_start=True),
            cross_domain=True,
            description="cross-domain VAE, cold-start variant (z_s -> z_t map)",
        ),
        ScorerSpec("serencdr", _serencdr(), True, True, "SerenCDR"),
        ScorerSpec("serencdr_no_aux", _serencdr(use_aux=False), True, True, "SerenCDR, no aux"),
        ScorerSpec(
            "serencdr_no_shared",
            _serencdr(use_shared=False),
            True,
            True,
            "SerenCDR, no shareable part",
        ),
        ScorerSpec(
            "serencdr_unrated",
            # All negatives drawn from the catalogue: the share chosen on a validation split
            # among 0, 0.25, ..., 1 (bench/study_validation.py).
            _serencdr(unrated_negatives=1.0),
            True,
            True,
            "SerenCDR, negatives drawn from the catalogue",
        ),
        ScorerSpec(
            "serencdr_bias",
            # serencdr_unrated with a learned per-item bias, at the small tier's sizes whatever
            # the world's size: chosen on validation splits (bench/study_validation.py) of the
            # 400- and the 1,600-user synthetic worlds.
            _serencdr(small_sizes=True, unrated_negatives=1.0, item_bias=True),
            True,
            True,
            "SerenCDR, catalogue negatives and an item bias",
        ),
        ScorerSpec(
            "serencdr_no_align",
            _serencdr(use_alignment=False),
            True,
            True,
            "SerenCDR, no alignment",
        ),
        ScorerSpec(
            "serendiff",
            _lazy("models.serendiff", "SerenDiffScorer", "SerenDiffConfig"),
            True,
            description="SerenDiff (conditional diffusion)",
        ),
        # The paper's ablation of the user representation (portrait vs embedding vs sequence).
        ScorerSpec(
            "serendiff_embedding",
            _lazy("models.serendiff", "SerenDiffScorer", "SerenDiffConfig", user_repr="embedding"),
            True,
            description="SerenDiff conditioned on a user embedding",
        ),
        ScorerSpec(
            "serendiff_sequence",
            _lazy("models.serendiff", "SerenDiffScorer", "SerenDiffConfig", user_repr="sequence"),
            True,
            description="SerenDiff conditioned on the history sequence",
        ),
        ScorerSpec(
            "purs",
            _lazy("models.purs", "PURSScorer", "PURSConfig"),
            description="PURS (unexpected CTR)",
        ),
    )
}

LAZY_MODULES = {
    "serendiff": "models.serendiff",
    "serendiff_embedding": "models.serendiff",
    "serendiff_sequence": "models.serendiff",
    "purs": "models.purs",
}


def unavailable_reason(name: str) -> str | None:
    """Why the scorer ``name`` cannot be built in this checkout (None when it can)."""
    if name not in SPECS:
        return f"unknown scorer {name!r} (known: {', '.join(SPECS)})"
    module = LAZY_MODULES.get(name)
    if module is None:
        return None
    try:
        mod = importlib.import_module(module)
    except ImportError as err:
        return f"{name}: {module} cannot be imported ({err})"
    cls = "PURSScorer" if name == "purs" else "SerenDiffScorer"
    if not hasattr(mod, cls):
        return f"{name}: {module} has no {cls}"
    return None


def build_scorer(name: str, scale: ScaleDefaults, epochs: int | None = None) -> Scorer:
    """A fresh, unfitted scorer ``name`` sized by ``scale``; ``epochs`` overrides the epochs."""
    if name not in SPECS:
        raise ValueError(f"unknown scorer {name!r} (known: {', '.join(SPECS)})")
    return SPECS[name].build(scale, epochs)
