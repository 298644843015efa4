"""The SerenDiff portrait picture: files written, with axes, title and legend a reader needs."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
from typer.testing import CliRunner

import environment.portraits as portraits
from environment.portraits import GRID, Portrait, PortraitError, draw, draw_portraits
from environment.runner import run_scenario
from environment.scenario import parse_scenario
from main import app
from tests.conftest import tiny_scenario_data


def test_draw_writes_a_labelled_picture(tmp_path: Path, monkeypatch) -> None:
    zone = np.zeros((GRID, GRID))
    zone[7, 2] = 3.0  # the generated zone: strongest at expectedness 7, relevance 2
    p = Portrait(
        user=4,
        history_cells=np.array([99, 55, 12]),
        zone=zone,
        listed=[31, 8],
        listed_cells=np.array([72, 73]),
        step=5,
    )
    captured = {}
    real_close = portraits.plt.close

    def keep(fig):
        captured["fig"] = fig
        real_close(fig)

    monkeypatch.setattr(portraits.plt, "close", keep)
    path = draw(p, "tfcdsrs-serendiff", tmp_path / "p.png")
    assert path.exists() and mpimg.imread(path).shape[0] > 300
    ax = captured["fig"].axes[0]
    assert "expectedness decile" in ax.get_xlabel() and "relevance decile" in ax.get_ylabel()
    assert "User 4" in ax.get_title() and "SerenDiff" in ax.get_title()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "history items (3)" in labels and "recommended first: item 31" in labels
    assert "strongest generated cells" in labels
    # the strongest cell is outlined at (7, 2)
    rects = [r for r in ax.patches if r.get_edgecolor()[0] > 0.4]
    assert any(r.get_xy() == (6.5, 1.5) for r in rects)


def test_no_serendiff_run_is_one_clear_error(tmp_path: Path, tiny) -> None:
    run_scenario(tiny, db=str(tmp_path / "r.db"))
    with pytest.raises(PortraitError, match="no run of this database did use SerenDiff"):
        draw_portraits(str(tmp_path / "r.db"), [1], tmp_path)


@pytest.mark.slow
def test_report_draws_portraits_of_a_serendiff_run(tmp_path: Path) -> None:
    d = tiny_scenario_data(steps=3)
    d["world"]["traits"] = {"serendipity_base": 1.0}  # labels come quickly
    d["recommenders"] = [
        {
            "name": "sd",
            "kind": "tfcdsrs",
            "neighbours": 10,
            "scorer": "serendiff",
            "retrain_every": 0,
            "model_epochs": 1,
            "device": "cpu",
        }
    ]
    db = tmp_path / "sd.db"
    run_scenario(parse_scenario(d), db=str(db))
    import sqlite3

    con = sqlite3.connect(db)
    user = con.execute("select user_id from recommendation where step = 2 limit 1").fetchone()[0]
    con.close()
    res = CliRunner().invoke(
        app, ["report", str(db), "--out", str(tmp_path / "rep"), "--portraits", str(user)]
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "rep" / f"portrait_user{user}_run1.png").exists()
    bad = CliRunner().invoke(app, ["report", str(db), "--portraits", "x"])
    assert bad.exit_code == 2 and "expected user ids" in bad.output
