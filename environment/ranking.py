"""The "ranking" protocol of ``main.py evaluate``: deep scorers and baselines on fixed lists.

MODELS.md section 5 on a world's initial history (``environment/interactions.py``): per seed
and per setting, a leave-one-out split and candidate lists (the held-out positive and
``evaluation.negatives`` unrated target items) fixed once and shared by every scorer of
``evaluation.scorers``; each scorer trains on the split's training data and is ranked by
HR@k, NDCG@k and MRR (``models/evaluation.py``). Settings:

* relevance: one liked target item held out per user;
* serendipity: one ground-truth serendipitous target item held out (HR_seren, NDCG_seren);
  its negatives leave out the unrated items the ground truth would call serendipitous too
  (``evaluation.serendipity_negatives``), so a list is one serendipitous item among
  non-serendipitous ones (MODELS.md 1.8);
* cold_start: all target ratings hidden for a share of the users, a liked one the positive.

Checkpoints of the trained scorers go to ``out_dir/checkpoints/<setting>-<scorer>.pt``
(``-seed<N>`` appended when several seeds run) and the tidy table to ``out_dir/ranking.csv``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from environment.interactions import unrated_serendipitous, world_interactions
from environment.ranking_scorers import (
    SPECS,
    ScaleDefaults,
    build_scorer,
    scale_defaults,
    unavailable_reason,
)
from environment.scenario import EvaluationConfig, Scenario
from environment.world_data import WorldData
from models.evaluation import (
    CandidateLists,
    LeaveOneOutSplit,
    evaluate_scorers,
    split_cold_start,
    split_relevance,
    split_serendipity,
)
from models.scoring import InteractionData

log = logging.getLogger(__name__)

METRICS = ("HR@1", "HR@5", "HR@10", "NDCG@5", "NDCG@10", "MRR")
COLUMNS = ("seed", "setting", "scorer", "n_users", *METRICS, "fit_s", "score_s")


@dataclass(frozen=True)
class FitTask:
    """One (seed, setting, scorer) training job; ``index`` counts from 1 to ``total``."""

    index: int
    total: int
    seed: int
    setting: str
    scorer: str

    @property
    def label(self) -> str:
        """The progress stage: ``ranking 3/24: relevance · vae (seed 0)``."""
        return (
            f"ranking {self.index}/{self.total}: {self.setting} · {self.scorer} (seed {self.seed})"
        )


# (stage, done, total): a stage per FitTask (its label) counting epochs, the same callback
# shape as the accuracy protocol's; a skipped task reports once as "<label> (skipped)", 1, 1.
RankingProgressFn = Callable[[str, int, int], None]


@dataclass
class RankingResult:
    """The tidy table (one row per seed, setting and scorer) and what the run noticed."""

    table: pd.DataFrame
    scale: ScaleDefaults
    negatives: int = 99
    notes: list[str] = field(default_factory=list)
    checkpoints: list[Path] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> pd.DataFrame:
        """Mean (and sample sd, ``<metric>_sd``) over seeds per setting and scorer, in the
        order the scorers ran."""
        if self.table.empty:
            return self.table.copy()
        keys = ["setting", "scorer"]
        values = [*METRICS, "fit_s"]
        grouped = self.table.groupby(keys, sort=False)
        mean = grouped[["n_users", *values]].mean()
        sd = grouped[values].std(ddof=1).add_suffix("_sd")
        out = mean.join(sd).reset_index()
        out.insert(2, "seeds", grouped.size().to_numpy())
        return out


def _has_target_labels(data: InteractionData) -> bool:
    if data.serendipitous is None or data.serendipitous.nnz == 0:
        return False
    cols = sp.csr_matrix(data.serendipitous).indices
    return bool(np.any(data.item_domain[cols] == data.target_domain))


def _make_split(
    setting: str, data: InteractionData, seed: int, cfg: EvaluationConfig
) -> LeaveOneOutSplit:
    if setting == "relevance":
        return split_relevance(data, seed, max_users=cfg.max_users)
    if setting == "serendipity":
        return split_serendipity(data, seed, max_users=cfg.max_users)
    return split_cold_start(data, seed, fraction=cfg.cold_start_share, max_users=cfg.max_users)


def _feasible_users(
    data: InteractionData,
    split: LeaveOneOutSplit,
    negatives: int,
    exclude: sp.csr_matrix | None = None,
) -> np.ndarray:
    """Test users with at least ``negatives`` target items to draw (the rest cannot be ranked):
    unrated, and not in ``exclude``."""
    n_target = len(data.domain_items(data.target_domain))
    in_target = (data.item_domain == data.target_domain).astype(np.float64)
    taken = sp.csr_matrix(data.ratings)[split.users].astype(bool)
    if exclude is not None:
        taken = taken + sp.csr_matrix(exclude)[split.users].astype(bool)
    used = np.asarray(taken.astype(np.float64) @ in_target)
    return (n_target - used.ravel()) >= negatives


def _restrict(split: LeaveOneOutSplit, keep: np.ndarray) -> LeaveOneOutSplit:
    users, held = split.users[keep], split.held_out[keep]
    if split.setting == "cold_start":
        # Users left out of the test keep their target ratings.
        rows = sp.diags(np.isin(np.arange(split.hidden.shape[0]), users).astype(np.float64))
        hidden = sp.csr_matrix(rows @ split.hidden.astype(np.float64)).astype(bool)
        return LeaveOneOutSplit(split.setting, users, held, hidden)
    pattern = sp.csr_matrix((np.ones(len(users), dtype=bool), (users, held)), split.hidden.shape)
    return LeaveOneOutSplit(split.setting, users, held, pattern)


def _skip_reason(
    name: str, data: InteractionData, train: InteractionData, setting: str
) -> str | None:
    spec = SPECS[name]
    if spec.cross_domain and len(np.unique(data.item_domain)) < 2:
        return f"{name} skipped: the world has no source domain"
    if spec.uses_labels and not _has_target_labels(train):
        return f"{name} skipped in {setting}: no serendipity label left in the training data"
    return None


def _checkpoint_path(out_dir: Path, setting: str, scorer: str, seed: int, many: bool) -> Path:
    suffix = f"-seed{seed}" if many else ""
    return out_dir / "checkpoints" / f"{setting}-{scorer}{suffix}.pt"


@dataclass
class _Run:
    """What one evaluation shares across its settings: config, data, sizes, output."""

    cfg: EvaluationConfig
    data: InteractionData
    scale: ScaleDefaults
    names: list[str]
    n_seeds: int
    out_dir: Path | None
    progress: RankingProgressFn | None
    # (users) -> (U, I) unrated items the ground truth calls serendipitous (never negatives of
    # the serendipity setting); None keeps every unrated item a possible negative.
    serendipitous_unrated: Callable[[np.ndarray], sp.csr_matrix] | None = None
    notes: list[str] = field(default_factory=list)
    saved: list[Path] = field(default_factory=list)

    def note(self, line: str) -> None:
        if line not in self.notes:
            self.notes.append(line)

    def hook(self, task: FitTask) -> Callable[[str, int, int], None] | None:
        """The per-scorer progress callback of ``evaluate_scorers``, bound to ``task``."""
        report = self.progress
        if report is None:
            return None
        return lambda _name, done, total: report(task.label, done, total)

    def skip(self, task: FitTask, reason: str) -> None:
        self.note(reason)
        if self.progress is not None:
            self.progress(f"{task.label} (skipped)", 1, 1)  # a finished bar, not a stuck one

    def setting(self, seed: int, setting: str, first_index: int, total: int) -> list[pd.DataFrame]:
        """Split, candidate lists, then every scorer on them; one row each."""
        cfg, data = self.cfg, self.data
        tasks = [
            FitTask(first_index + k, total, seed, setting, name)
            for k, name in enumerate(self.names)
        ]
        split = _make_split(setting, data, seed, cfg)
        exclude = None
        if setting == "serendipity" and self.serendipitous_unrated is not None:
            exclude = self.serendipitous_unrated(split.users)
            self.note(
                f"serendipity (seed {seed}): {exclude.nnz / max(len(split.users), 1):.1f} "
                "unrated serendipitous target items per test user kept out of the negatives"
            )
        ok = _feasible_users(data, split, cfg.negatives, exclude)
        if not ok.all():
            self.note(
                f"{setting} (seed {seed}): {int((~ok).sum())} test users with fewer than "
                f"{cfg.negatives} possible negatives left out"
            )
            split = _restrict(split, ok)
        if len(split.users) == 0:
            for task in tasks:
                self.skip(task, f"{setting} (seed {seed}): no test user, setting skipped")
            return []
        cands = CandidateLists.sample(data, split, cfg.negatives, seed, exclude=exclude)
        train = split.train_data(data)
        rows = []
        for task in tasks:
            reason = _skip_reason(task.scorer, data, train, setting)
            if reason is not None:
                self.skip(task, reason)
                continue
            scorer = build_scorer(task.scorer, self.scale, cfg.epochs)
            df = evaluate_scorers(
                {task.scorer: scorer},
                data,
                split,
                cands,
                seed=seed,
                device=cfg.device,
                progress=self.hook(task),
            )
            df.insert(0, "seed", seed)
            rows.append(df)
            if self.out_dir is not None and cfg.checkpoints:
                path = _checkpoint_path(self.out_dir, setting, task.scorer, seed, self.n_seeds > 1)
                scorer.save(path)
                self.saved.append(path)
        return rows


def evaluate_ranking(
    scenario: Scenario,
    world: WorldData,
    out_dir: Path | None = None,
    progress: RankingProgressFn | None = None,
) -> RankingResult:
    """Run the ranking protocol of ``scenario.evaluation`` on ``world`` (module docstring).

    Args:
        scenario: the validated scenario (its ``evaluation`` block and ``run.seed``).
        world: the scenario's world (``environment.runner.build_world``).
        out_dir: where checkpoints and ``ranking.csv`` go; nothing is written when None.
        progress: called as ``progress(stage, done, total)``: a stage per (seed, setting,
            scorer) counting its training epochs, ``"<stage> (skipped)", 1, 1`` for a skipped
            one (see ``FitTask.label``).

    Returns:
        The tidy table (columns ``COLUMNS``), the model sizes used, and notes on anything
        skipped.

    Raises:
        ValueError: ``evaluation.scorers`` names an unknown scorer.
    """
    t_start = time.perf_counter()
    cfg = scenario.evaluation
    unknown = [n for n in cfg.scorers if n not in SPECS]
    if unknown:
        raise ValueError(
            f"evaluation.scorers: unknown scorer(s) {', '.join(map(repr, unknown))} "
            f"(known: {', '.join(SPECS)})"
        )
    notes: list[str] = []
    names: list[str] = []
    for name in dict.fromkeys(cfg.scorers):
        reason = unavailable_reason(name)
        if reason is None:
            names.append(name)
        else:
            notes.append(f"{reason}: skipped")
    data = world_interactions(world, cfg.serendipity_labels)
    tier = None if cfg.model_size == "auto" else cfg.model_size
    scale = scale_defaults(data.n_users, data.n_items, tier)
    notes.append(
        f"{data.n_users} users, {data.n_items} items, {data.ratings.nnz} ratings, "
        f"{0 if data.serendipitous is None else data.serendipitous.nnz} serendipity labels "
        f"({cfg.serendipity_labels}); model sizes: {scale.tier} tier"
    )
    settings = list(dict.fromkeys(cfg.settings))
    if "serendipity" in settings and not _has_target_labels(data):
        settings.remove("serendipity")
        notes.append("serendipity setting skipped: no target rating is serendipitous")
    seeds = [scenario.run.seed + k for k in range(cfg.seeds)]
    out = None if out_dir is None else Path(out_dir)
    mark = None
    if cfg.serendipity_negatives == "non_serendipitous":
        mark = partial(unrated_serendipitous, world)
    run = _Run(cfg, data, scale, names, len(seeds), out, progress, mark, notes)
    total = len(seeds) * len(settings) * len(names)
    rows: list[pd.DataFrame] = []
    for k, (seed, setting) in enumerate((s, t) for s in seeds for t in settings):
        rows.extend(run.setting(seed, setting, 1 + k * len(names), total))
    table = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=list(COLUMNS))
    table = table[list(COLUMNS)]
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        table.to_csv(out / "ranking.csv", index=False)
    for line in run.notes:
        log.info(line)
    return RankingResult(
        table, scale, cfg.negatives, run.notes, run.saved, time.perf_counter() - t_start
    )
