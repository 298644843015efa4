from __future__ import annotations

from pathlib import Path

import pytest

from environment.scenario import ScenarioError, load_scenario, parse_scenario, with_overrides
from tests.conftest import tiny_scenario_data


def problems(data: dict) -> list[str]:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data)
    return info.value.problems


def test_valid_scenario_round_trips(tiny) -> None:
    assert tiny.world.users == 60
    assert [r.name for r in tiny.recommenders] == ["tfcdsrs", "cf"]
    assert tiny.recommenders[1].scorer == "prediction"  # CF ranks by predicted rating
    assert tiny.db_target() == "runs/tiny.db"


def test_unknown_key_is_named_with_its_path() -> None:
    data = tiny_scenario_data()
    data["world"]["colour"] = "blue"
    data["run"]["speed"] = 2
    lines = problems(data)
    assert "world.colour: unknown key (not part of the scenario schema)" in lines
    assert "run.speed: unknown key (not part of the scenario schema)" in lines


def test_wrong_type_and_negative_count_each_get_a_line() -> None:
    data = tiny_scenario_data()
    data["world"]["users"] = -5
    data["run"]["steps"] = "many"
    data["recommenders"][0]["neighbours"] = 0
    lines = problems(data)
    assert any(
        line.startswith("world.users: ") and "greater than or equal to 2" in line for line in lines
    )
    assert any(line.startswith("run.steps: ") and "integer" in line for line in lines)
    assert any(line.startswith("recommenders.0.neighbours: ") for line in lines)
    assert len(lines) == 3


def test_cross_field_rules() -> None:
    data = tiny_scenario_data()
    data["world"]["target"] = "music"
    assert problems(data) == ["world: target 'music' is not one of the domains ['books', 'movies']"]
    data = tiny_scenario_data()
    data["recommenders"][1]["name"] = "tfcdsrs"
    assert "recommender names must be distinct" in problems(data)[0]


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario(tmp_path / "nope.yaml")
    assert info.value.problems == ["file not found"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nworld: [unclosed\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(bad)
    assert info.value.problems[0].startswith("line ")
    assert "invalid YAML" in info.value.problems[0]


def test_overrides_are_validated_again(tiny) -> None:
    sc = with_overrides(tiny, {"run.seed": 11, "recommenders.0.neighbours": 7})
    assert sc.run.seed == 11 and sc.recommenders[0].neighbours == 7
    with pytest.raises(ScenarioError) as info:
        with_overrides(tiny, {"run.steps": 0})
    assert info.value.problems[0].startswith("run.steps: ")
    with pytest.raises(ScenarioError):
        with_overrides(tiny, {"recommenders.9.neighbours": 3})


def test_digest_changes_with_content(tiny) -> None:
    assert tiny.digest() == parse_scenario(tiny_scenario_data()).digest()
    assert tiny.digest() != with_overrides(tiny, {"run.seed": 4}).digest()


def test_csv_world_survives_validation_again(tmp_path: Path) -> None:
    """Overrides re-validate a dumped scenario: default column names must not turn into
    'explicitly set' ones (a CSV without domain or timestamp columns stays valid and loads)."""
    from environment.datasets import load_dataset

    (tmp_path / "r.csv").write_text("user,item,rating\nu1,i1,4\nu1,i2,2\nu2,i1,5\nu2,i3,3\n")
    data = tiny_scenario_data()
    data["world"] = {"kind": "csv", "ratings": str(tmp_path / "r.csv"), "scale": [1, 5]}
    sc = with_overrides(parse_scenario(data), {"run.steps": 2, "output.trace": "quiet"})
    ds = load_dataset(sc.world)
    assert ds.single_domain and len(ds.ratings) == 4
