"""Hyper-parameters of the ranking protocol's scorers chosen on a validation split, not on test.

For each seed of the scenario (``run.seed``, ``+1``, ``+2`` by default) the serendipity setting
of ``environment/ranking.py`` is rebuilt: the test split (one held-out serendipitous target
item per user), and inside its TRAINING data a second split of the same kind, the validation
split, with its own candidate lists (99 non-serendipitous negatives, MODELS.md 1.8). Every
variant of a scorer family trains on the validation split's training data and is ranked on the
validation lists; the variant with the best mean validation HR@10 over the seeds is the
family's choice. Only then does each family's default and its choice train on the test split's
training data and get ranked on the test lists. Every family gets the same treatment, so the
baselines are tuned as much as the serendipity models.

The protocol's scorers use the choices this study made on the synthetic world
(``environment/ranking_scorers.py``): user_cf cosine with k = 100, serencdr_unrated with
every negative drawn from the catalogue, serencdr_bias the same with an item bias at the small
sizes ("default" below marks them).

Families and variants:

* user_cf: Pearson or cosine similarity, k = 30, 100 or 300 neighbours (neighbour vote);
* serencdr: share of BPR negatives drawn at random from the catalogue, 0 (the paper's
  consumed negatives only) to 1, and the share 1 with a learned per-item bias, at the world's
  tier sizes and at the small tier's (one variant when the world is small);
* vae (cross-domain): the small tier sizes (64/16, 100 epochs) or the medium ones
  (256/64, 50 epochs).

A standalone script: it prints its tables (the one exception to "only main.py prints").
Run from the repository root (about 90 s on 2 CPU cores; the 1,600-user world of
``scenarios/synthetic_serendipity_large.yaml`` takes about 10 minutes)::

    python -m bench.study_validation [--scenario scenarios/synthetic_serendipity.yaml]
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from environment.interactions import unrated_serendipitous, world_interactions
from environment.ranking_scorers import scale_defaults
from environment.runner import build_world
from environment.scenario import Scenario, load_scenario
from environment.world_data import WorldData
from models.baselines import UserCFConfig, UserCFScorer
from models.evaluation import (
    CandidateLists,
    LeaveOneOutSplit,
    rank_metrics,
    score_candidates,
    split_serendipity,
)
from models.scoring import InteractionData, Scorer
from models.serencdr import SerenCDRConfig, SerenCDRScorer
from models.vae import CrossDomainVAEConfig, CrossDomainVAEScorer

VALIDATION_OFFSET = 1000  # validation splits and lists use seed + this
NEGATIVES = 99


@dataclass(frozen=True)
class Variant:
    family: str
    label: str
    build: Callable[[], Scorer]
    default: bool = False


def variants(n_users: int, n_items: int) -> list[Variant]:
    """Every variant of every family; ``default`` marks what the protocol uses today."""
    s = scale_defaults(n_users, n_items)
    out: list[Variant] = []
    for sim in ("pearson", "cosine"):
        for k in (30, 100, 300):
            cfg = UserCFConfig(similarity=sim, k=k)
            out.append(
                Variant(
                    "user_cf",
                    f"{sim}, k={k}",
                    lambda c=cfg: UserCFScorer(c),
                    default=(sim, k) == ("cosine", 100),
                )
            )
    small = scale_defaults(n_users, n_items, "small")
    cdr_variants = [(share, False, s) for share in (0.0, 0.25, 0.5, 0.75, 1.0)]
    cdr_variants += [(1.0, True, t) for t in dict.fromkeys((s, small))]  # small once if auto
    for share, bias, sizes in cdr_variants:
        cdr = SerenCDRConfig(
            input_dim=sizes.cdr_input,
            latent_dim=sizes.cdr_latent,
            epochs=sizes.cdr_epochs,
            unrated_negatives=share,
            item_bias=bias,
        )
        label = f"unrated share {share:g}" + (
            f" + item bias, {sizes.tier} sizes {sizes.cdr_input}/{sizes.cdr_latent}" if bias else ""
        )
        out.append(
            Variant(
                "serencdr",
                label,
                lambda c=cdr: SerenCDRScorer(c),
                # serencdr, serencdr_unrated and serencdr_bias (the small sizes at any scale)
                default=share in (0.0, 1.0) and (not bias or sizes.tier == "small"),
            )
        )
    for tier in ("small", "medium"):
        t = scale_defaults(n_users, n_items, tier)
        vae = CrossDomainVAEConfig(
            mode="cross",
            hidden_dim=t.vae_hidden,
            latent_dim=t.vae_latent,
            batch_size=t.vae_batch,
            epochs=t.vae_epochs,
        )
        out.append(
            Variant(
                "vae",
                f"{tier}: {t.vae_hidden}/{t.vae_latent}, {t.vae_epochs} ep",
                lambda c=vae: CrossDomainVAEScorer(c),
                default=tier == s.tier,
            )
        )
    return out


def lists(
    world: WorldData, data: InteractionData, split: LeaveOneOutSplit, seed: int
) -> CandidateLists:
    """The protocol's lists: ``data`` (the full data) decides what counts as rated."""
    exclude = unrated_serendipitous(world, split.users)
    return CandidateLists.sample(data, split, NEGATIVES, seed, exclude=exclude)


def load_world(path: str) -> tuple[Scenario, WorldData, InteractionData]:
    """The scenario, its world and the data the protocol's scorers learn from."""
    scenario = load_scenario(path)
    world = build_world(scenario)
    return scenario, world, world_interactions(world, scenario.evaluation.serendipity_labels)


def hr10(
    v: Variant, train: InteractionData, cands: CandidateLists, seed: int
) -> tuple[float, float]:
    scorer = v.build()
    scorer.fit(train, seed=seed, device="cpu")
    m = rank_metrics(score_candidates(scorer, cands), seed=seed)
    return m["HR@10"], m["NDCG@10"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="scenarios/synthetic_serendipity.yaml")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.disable(logging.WARNING)
    console = Console(width=120)
    t0 = time.perf_counter()
    scenario, world, data = load_world(args.scenario)
    all_variants = variants(data.n_users, data.n_items)
    seeds = [scenario.run.seed + k for k in range(args.seeds)]
    val: list[list[tuple[float, float]]] = [[] for _ in all_variants]  # per variant, per seed
    test_sets = []
    for seed in seeds:
        split = split_serendipity(data, seed)
        train = split.train_data(data)
        test_sets.append((train, lists(world, data, split, seed), seed))
        v_seed = seed + VALIDATION_OFFSET
        v_split = split_serendipity(train, v_seed)
        # Lists drawn against the FULL data: the test positive is never a validation negative.
        v_cands = lists(world, data, v_split, v_seed)
        v_train = v_split.train_data(train)
        for k, v in enumerate(all_variants):
            val[k].append(hr10(v, v_train, v_cands, seed))
    table = Table(title=f"validation (serendipity setting, {len(seeds)} seeds): HR@10")
    for col in ("family", "variant", "val HR@10", "val NDCG@10", "test HR@10", "test NDCG@10"):
        table.add_column(col, justify="left" if col in ("family", "variant") else "right")
    for family in dict.fromkeys(v.family for v in all_variants):
        members = [k for k, v in enumerate(all_variants) if v.family == family]
        means = [np.mean([h for h, _ in val[k]]) for k in members]
        best = members[int(np.argmax(means))]
        for k, mean in zip(members, means, strict=True):
            v = all_variants[k]
            n_val = np.mean([n for _, n in val[k]])
            test = ("", "")
            if k == best or v.default:
                res = np.array([hr10(v, tr, c, s) for tr, c, s in test_sets])
                test = (
                    f"{res[:, 0].mean():.3f} ± {res[:, 0].std(ddof=1):.3f}",
                    f"{res[:, 1].mean():.3f}",
                )
            mark = (" (chosen)" if k == best else "") + (" (default)" if v.default else "")
            table.add_row(family, v.label + mark, f"{mean:.3f}", f"{n_val:.3f}", *test)
    console.print(table)
    console.print(f"{data.n_users} users, {data.n_items} items; {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
