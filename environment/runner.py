"""Running a scenario: build the world once, run every recommender variant on it.

Each variant is one ``run`` row of the database, so TFCDSRS and its baselines face the same
users, the same arrivals and the same active users per step. Steps commit one transaction
each; a crash marks the run failed and keeps every committed step; ``resume`` continues a
run from its last committed step.
"""

from __future__ import annotations

import logging
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from environment.metrics import run_metrics
from environment.scenario import RecommenderConfig, Scenario
from environment.synthetic import generate_world
from environment.traits import TraitsConfig
from environment.world import StepLog, World
from environment.world_data import USER_KINDS, WorldData
from storage.repository import Repository, database_url
from storage.tables import DomainRecord, ItemRecord, MetricRecord, RatingRecord, UserRecord

log = logging.getLogger(__name__)


class RunError(Exception):
    """A run that could not start or finish; the message is one readable line."""


class RunObserver(Protocol):
    def world_ready(self, data: WorldData) -> None: ...
    def variant_started(self, name: str, run_id: int, first_step: int, steps: int) -> None: ...
    def step_done(self, name: str, world: World, step: StepLog, seconds: float) -> None: ...
    def variant_done(self, result: VariantResult) -> None: ...


@dataclass
class VariantResult:
    name: str
    kind: str
    run_id: int
    status: str
    seconds: float
    metrics: dict[tuple[str, str], float | None] = field(default_factory=dict)


@dataclass
class RunResult:
    db: str
    world: WorldData
    variants: list[VariantResult]


def code_version() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
        rev = out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        rev = ""
    return f"serensim-0.1.0+{rev or 'unknown'}"


def build_world(scenario: Scenario) -> WorldData:
    """The world of a scenario, drawn from its seed (the same for every variant)."""
    seq = np.random.SeedSequence(scenario.run.seed)
    rng = np.random.default_rng(seq.spawn(1)[0])
    cfg = scenario.world
    if cfg.kind == "synthetic":
        return generate_world(cfg, rng, name=scenario.name)
    from environment.datasets import load_dataset  # real data: pandas I/O and an oracle fit
    from environment.realworld import build_real_world

    world = build_real_world(load_dataset(cfg), cfg, rng)
    world.name = scenario.name
    return world


def traits_of(scenario: Scenario) -> TraitsConfig:
    return scenario.world.traits


def _sqlite_file(url: str) -> Path | None:
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        return Path(url[len("sqlite:///") :])
    return None


def prepare_database(target: str, *, overwrite: bool, resume: bool) -> str:
    """Check the database target before anything is written; returns its URL."""
    url = database_url(target)
    path = _sqlite_file(url)
    if path is not None and path.exists():
        if not (overwrite or resume):
            raise RunError(
                f"{path}: database already exists (use --overwrite to replace it or --resume to continue it)"
            )
    elif resume and path is not None:
        raise RunError(f"{path}: nothing to resume, the database does not exist")
    return url


def _store_world(repo: Repository, session: Any, run_id: int, data: WorldData) -> None:
    counts = np.bincount(data.history.items, minlength=data.n_items)
    repo.insert_rows(
        session,
        DomainRecord,
        [
            {"run_id": run_id, "domain_id": d, "name": n, "is_target": d == data.target_domain}
            for d, n in enumerate(data.domain_names)
        ],
    )
    repo.insert_rows(
        session,
        ItemRecord,
        [
            {
                "run_id": run_id,
                "item_id": i,
                "domain_id": int(d),
                "label": data.item_labels[i],
                "popularity": int(c),
            }
            for i, (d, c) in enumerate(zip(data.item_domain.tolist(), counts.tolist(), strict=True))
        ],
    )
    repo.insert_rows(
        session,
        UserRecord,
        [
            {
                "run_id": run_id,
                "user_id": u,
                "kind": USER_KINDS[int(data.user_kind[u])],
                "cold_start": bool(data.cold_start[u]),
                "arrival_step": int(data.arrival_step[u]),
                "curiosity": float(data.curiosity[u]),
            }
            for u in range(data.n_users)
        ],
    )
    h = data.history
    avail = data.arrival_step[h.users]
    dom = data.item_domain[h.items]
    repo.insert_rows(
        session,
        RatingRecord,
        [
            {
                "run_id": run_id,
                "user_id": u,
                "item_id": i,
                "domain_id": d,
                "rating": r,
                "step": -1,
                "origin": "history",
                "available_step": a,
            }
            for u, i, d, r, a in zip(
                h.users.tolist(),
                h.items.tolist(),
                dom.tolist(),
                h.ratings.tolist(),
                avail.tolist(),
                strict=True,
            )
        ],
    )


def _find_resumable(repo: Repository, scenario: Scenario, variant: str) -> Any:
    for run in reversed(repo.runs()):
        if (
            run.scenario_hash == scenario.digest()
            and run.variant == variant
            and run.seed == scenario.run.seed
        ):
            return run
    return None


def run_variant(
    scenario: Scenario,
    data: WorldData,
    rec: RecommenderConfig,
    repo: Repository,
    *,
    resume: bool,
    observer: RunObserver | None,
) -> VariantResult:
    steps = scenario.run.steps
    previous = _find_resumable(repo, scenario, rec.name) if resume else None
    if previous is not None and previous.status == "completed":
        return VariantResult(
            rec.name, rec.kind, previous.id, "completed", 0.0, _final_metrics(repo, previous.id)
        )
    if previous is not None:
        run_id, first = previous.id, previous.last_step + 1
        with repo.transaction() as s:
            repo.truncate_after(s, run_id, previous.last_step)
            repo.set_run_status(s, run_id, "running", error=None)
    else:
        with repo.transaction() as s:
            run_id = repo.create_run(
                s,
                name=scenario.name,
                variant=rec.name,
                scenario_yaml=scenario.model_dump_json(indent=1),
                scenario_hash=scenario.digest(),
                seed=scenario.run.seed,
                code_version=code_version(),
                status="running",
                last_step=-1,
                n_steps=steps,
            )
            _store_world(repo, s, run_id, data)
        first = 0
    world = World(data, rec, scenario.run, traits_of(scenario), repo, run_id)
    if first > 0:
        world.restore(first - 1)
    if observer:
        observer.variant_started(rec.name, run_id, first, steps)
    t0 = time.perf_counter()
    try:
        for _ in range(first, steps):
            ts = time.perf_counter()
            world.step()
            if observer:
                observer.step_done(rec.name, world, world.step_log, time.perf_counter() - ts)
    except Exception as err:
        world.session = None
        message = f"{type(err).__name__}: {err}"
        with repo.transaction() as s:
            repo.set_run_status(s, run_id, "failed", error=message, finished=True)
        log.exception("run %s (%s) failed at step %d", run_id, rec.name, world.step_no)
        raise RunError(
            f"run {run_id} ({rec.name}) failed at step {world.step_no}: {message}"
        ) from err
    with repo.transaction() as s:
        repo.insert_rows(s, MetricRecord, run_metrics(repo, run_id, data, scenario.run.list_length))
        repo.set_run_status(s, run_id, "completed", last_step=steps - 1, finished=True)
    result = VariantResult(
        rec.name,
        rec.kind,
        run_id,
        "completed",
        time.perf_counter() - t0,
        _final_metrics(repo, run_id),
    )
    if observer:
        observer.variant_done(result)
    return result


def _final_metrics(repo: Repository, run_id: int) -> dict[tuple[str, str], float | None]:
    df = repo.metrics_frame(run_id)
    df = df[df["step"] == -1]
    return {(r.name, r.group): r.value for r in df.itertuples()}


def run_scenario(
    scenario: Scenario,
    *,
    db: str | None = None,
    overwrite: bool = False,
    resume: bool = False,
    observer: RunObserver | None = None,
) -> RunResult:
    url = prepare_database(db or scenario.db_target(), overwrite=overwrite, resume=resume)
    data = build_world(scenario)  # data errors surface before any file is written
    path = _sqlite_file(url)
    if overwrite and not resume and path is not None:
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    if observer:
        observer.world_ready(data)
    repo = Repository(url)
    try:
        results = [
            run_variant(scenario, data, rec, repo, resume=resume, observer=observer)
            for rec in scenario.recommenders
        ]
    finally:
        repo.close()
    return RunResult(db=url, world=data, variants=results)
