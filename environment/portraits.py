"""The user-portrait picture: what SerenDiff saw and what it generated, for a reader who has not
read the paper.

For each user, one PNG of the 10 x 10 portrait grid (MODELS.md 2.2): the x axis is how
*expected* an item is given the user's history (co-occurrence expectedness, in deciles), the y
axis how *relevant* it is (its closest cosine to the history, in deciles). The user's history
items are the dots in their cells; the shading is the zone SerenDiff generated (the strength of
each cell of the denoised grid x0, averaged over its reverse chains); the stars are the items
of the user's last list, numbered by rank, with the one finally recommended first.

The model is the serendipity agent's own SerenDiff, read back from the run's snapshot.
"""

from __future__ import annotations

import io
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sqlmodel import select

from storage.repository import Repository
from storage.tables import RecommendationRecord

GRID = 10


class PortraitError(Exception):
    """No portrait can be drawn (no SerenDiff run, unknown user); one readable line."""


@dataclass
class Portrait:
    user: int
    history_cells: np.ndarray  # (H,) cell index of each history item
    zone: np.ndarray  # (GRID, GRID) generated strength, [bin_exp, bin_rel]
    listed: list[int]  # items of the user's last list, by rank
    listed_cells: np.ndarray  # (len(listed),)
    step: int


def serendiff_run(repo: Repository, run_id: int | None) -> tuple[int, str]:
    """The run whose serendipity agent used SerenDiff (as its scorer or in a blend)."""
    for run in repo.runs():
        if run_id is not None and run.id != run_id:
            continue
        scenario = json.loads(run.scenario_yaml)
        rec = next(r for r in scenario["recommenders"] if r["name"] == run.variant)
        if rec.get("scorer") == "serendiff" or (
            rec.get("scorer") == "blend" and rec.get("model") == "serendiff"
        ):
            return run.id, run.variant
    which = f"run {run_id} did not" if run_id is not None else "no run of this database did"
    raise PortraitError(
        f"{which} use SerenDiff (recommender scorer: serendiff); no portrait to draw"
    )


def load_model(repo: Repository, run_id: int):
    """The serendipity agent's trained SerenDiff from the run's latest snapshot."""
    from models.serendiff import SerenDiffScorer

    states = repo.load_agent_states(run_id)
    if "serendipity" not in states:
        raise PortraitError(f"run {run_id} has no serendipity agent snapshot")
    with np.load(io.BytesIO(states["serendipity"][1]), allow_pickle=False) as npz:
        if "model_blob" not in npz.files:
            raise PortraitError(
                f"run {run_id}: SerenDiff was never trained (too few serendipity labels)"
            )
        blob = npz["model_blob"].tobytes()
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "model.pt"
        p.write_bytes(blob)
        return SerenDiffScorer.load(p, device="cpu")


def portrait(model, repo: Repository, run_id: int, user: int) -> Portrait:
    """Everything the picture shows for one user (reads SerenDiff's fitted state)."""
    hist_all = model._hist  # (U, H) item ids, -1 padded: the histories SerenDiff was fitted on
    if not 0 <= user < hist_all.shape[0]:
        raise PortraitError(f"user {user} is not in run {run_id} (users 0-{hist_all.shape[0] - 1})")
    hist = hist_all[user : user + 1]
    cells = model._history_cells(hist)[0]
    history_cells = cells[hist[0] >= 0]
    x0 = model.generate(np.array([user])).numpy()[0]  # (S, C, G, G)
    if model.config.occupancy_channel:
        zone = x0[:, -1].mean(axis=0)
    else:
        zone = np.linalg.norm(x0, axis=1).mean(axis=0)
    with repo.session() as s:
        rows = s.exec(
            select(RecommendationRecord.step, RecommendationRecord.item_id)
            .where(RecommendationRecord.run_id == run_id, RecommendationRecord.user_id == user)
            .order_by(RecommendationRecord.step.desc(), RecommendationRecord.rank)
        ).all()
    if not rows:
        raise PortraitError(f"user {user} received no list in run {run_id}")
    last = rows[0][0]
    listed = [i for st, i in rows if st == last]
    listed_cells = model.candidate_cells(np.array([user]), np.array([listed]))[0]
    return Portrait(user, history_cells, zone, listed, listed_cells, last)


def draw(p: Portrait, variant: str, path: Path, zone_cells: int = 3) -> Path:
    """The portrait PNG (see the module docstring); ``zone_cells`` strongest cells are outlined,
    as the cells SerenDiff's matching starts from (MODELS.md 2.8)."""
    fig, ax = plt.subplots(figsize=(7.6, 7.4))
    span = float(p.zone.max() - p.zone.min())
    rel_zone = (p.zone - p.zone.min()) / span if span > 0 else np.zeros_like(p.zone)
    img = ax.imshow(
        rel_zone.T,
        origin="lower",
        cmap="Oranges",
        vmin=0,
        vmax=1,
        extent=(-0.5, GRID - 0.5, -0.5, GRID - 0.5),
    )
    fig.colorbar(
        img, ax=ax, shrink=0.8, label="generated zone: relative strength (1 = strongest cell)"
    )
    for k, cell in enumerate(np.argsort(-p.zone, axis=None)[:zone_cells]):
        e, r = divmod(int(cell), GRID)
        ax.add_patch(
            plt.Rectangle(
                (e - 0.5, r - 0.5),
                1,
                1,
                fill=False,
                lw=2.2,
                ec="darkred",
                label="strongest generated cells" if k == 0 else None,
            )
        )
    rng = np.random.default_rng(p.user)  # jitter only, fixed per user
    he, hr = np.divmod(p.history_cells, GRID)
    ax.scatter(
        he + rng.uniform(-0.3, 0.3, he.size),
        hr + rng.uniform(-0.3, 0.3, hr.size),
        s=24,
        c="tab:blue",
        edgecolors="white",
        linewidths=0.5,
        label=f"history items ({he.size})",
    )
    le, lr = np.divmod(p.listed_cells, GRID)
    ax.scatter(
        le[1:],
        lr[1:],
        marker="*",
        s=170,
        c="tab:green",
        edgecolors="black",
        label="the rest of the list",
    )
    ax.scatter(
        le[:1],
        lr[:1],
        marker="*",
        s=430,
        c="gold",
        edgecolors="black",
        label=f"recommended first: item {p.listed[0]}",
    )
    ranks: dict[tuple[int, int], list[str]] = {}
    for rank, (x, y) in enumerate(zip(le.tolist(), lr.tolist(), strict=True), start=1):
        ranks.setdefault((x, y), []).append(str(rank))
    for (x, y), labels in ranks.items():
        ax.annotate(
            "#" + ",".join(labels), (x, y), xytext=(6, 6), textcoords="offset points", fontsize=8
        )
    ax.set_xticks(range(GRID))
    ax.set_yticks(range(GRID))
    ax.set_xlim(-0.5, GRID - 0.5)
    ax.set_ylim(-0.5, GRID - 0.5)
    ax.set_xlabel("expectedness decile (0 = least expected given the history, 9 = most)")
    ax.set_ylabel("relevance decile (0 = least like the history, 9 = most)")
    ax.set_title(
        f"User {p.user}: history portrait and the zone SerenDiff generated\n"
        f"({variant}, list of step {p.step}, ranks marked #)"
    )
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, fontsize=8, frameon=False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def draw_portraits(
    database: str, users: list[int], out: Path, run_id: int | None = None
) -> list[Path]:
    """One PNG per user under ``out``; raises PortraitError with one readable line."""
    try:
        repo = Repository(database, create=False)
    except (FileNotFoundError, ValueError) as err:
        raise PortraitError(str(err)) from None
    try:
        rid, variant = serendiff_run(repo, run_id)
        model = load_model(repo, rid)
        return [
            draw(portrait(model, repo, rid, u), variant, out / f"portrait_user{u}_run{rid}.png")
            for u in users
        ]
    finally:
        repo.close()
