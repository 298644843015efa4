"""Shared fixtures: a tiny scenario that runs in about a second."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from environment.scenario import Scenario, parse_scenario

REPO = Path(__file__).resolve().parents[1]


def tiny_scenario_data(**run: Any) -> dict[str, Any]:
    return {
        "name": "tiny",
        "world": {
            "kind": "synthetic",
            "domains": ["books", "movies"],
            "target": "movies",
            "users": 60,
            "items_per_domain": 40,
            "history_per_domain": 10,
            "cold_start": {"share": 0.25, "target_ratings": [0, 2], "arrival_steps": [1, 2]},
        },
        "recommenders": [
            {"name": "tfcdsrs", "kind": "tfcdsrs", "neighbours": 10},
            {"name": "cf", "kind": "cf", "neighbours": 10},
        ],
        "run": {"steps": 4, "seed": 3, "active_share": 0.5, "list_length": 5, **run},
        "output": {"db": "runs/tiny.db", "trace": "quiet"},
    }


@pytest.fixture
def tiny_data() -> dict[str, Any]:
    return tiny_scenario_data()


@pytest.fixture
def tiny(tiny_data: dict[str, Any]) -> Scenario:
    return parse_scenario(tiny_data)


@pytest.fixture
def tiny_file(tmp_path: Path, tiny_data: dict[str, Any]) -> Path:
    p = tmp_path / "tiny.yaml"
    tiny_data["output"]["db"] = str(tmp_path / "tiny.db")
    p.write_text(yaml.safe_dump(tiny_data))
    return p
