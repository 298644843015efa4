"""SerenSim's command line: a thin shell over environment/ and storage/ (the only printer)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="SerenSim: simulate TFCDSRS, a trust- and fuzzy-inference-based cross-domain serendipitous recommender.",
)
console = Console()
err_console = Console(stderr=True)

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


def _fail(message: str, code: int = EXIT_FAILED) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _scenario_or_exit(path: Path) -> Any:
    from environment.datasets.common import DataError
    from environment.scenario import ScenarioError, load_scenario

    try:
        return load_scenario(path)
    except ScenarioError as err:
        for line in err.problems:
            err_console.print(
                f"{err.source}: {line}", highlight=False, soft_wrap=True, markup=False
            )
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except DataError as err:
        raise _fail(str(err), EXIT_BAD_INPUT) from None


def _overrides_or_exit(sc: Any, overrides: dict[str, Any]) -> Any:
    """Apply command-line overrides by validating the scenario again; bad values exit 2."""
    from environment.scenario import ScenarioError, with_overrides

    if not overrides:
        return sc
    try:
        return with_overrides(sc, overrides, source="command line")
    except ScenarioError as err:
        for line in err.problems:
            err_console.print(f"{err.source}: {line}", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT) from None


@app.command()
def validate(scenario: Annotated[Path, typer.Argument(help="scenario YAML file")]) -> None:
    """Check a scenario file; print every problem as `path.to.field: message`."""
    sc = _scenario_or_exit(scenario)
    console.print(
        f"[green]ok[/] {scenario}: scenario '{sc.name}' with {len(sc.recommenders)} recommender(s), "
        f"{sc.run.steps} steps, seed {sc.run.seed}"
    )


class LiveView:
    """The run's live view: progress, the latest messages between agents, a metrics panel."""

    def __init__(self, steps_total: int, trace: str) -> None:
        self.trace = trace
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        )
        self.live: Live | None = None
        self.tasks: dict[str, Any] = {}
        self.steps_total = steps_total
        self.renderables: list[Any] = [self.progress]

    def __enter__(self) -> LiveView:
        if self.trace != "quiet":
            self.live = Live(
                Group(*self.renderables), console=console, refresh_per_second=8, transient=False
            )
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)

    def world_ready(self, data: Any) -> None:
        for note in data.notes:
            console.print(f"[dim]{note}[/]", highlight=False)

    def variant_started(self, name: str, run_id: int, first_step: int, steps: int) -> None:
        self.tasks[name] = self.progress.add_task(
            f"{name} (run {run_id})", total=steps, completed=first_step
        )

    def step_done(self, name: str, world: Any, step: Any, seconds: float) -> None:
        from environment.inspect import recent_messages
        from environment.views import messages_table, metrics_panel

        self.progress.update(self.tasks[name], advance=1)
        if self.live is None:
            return
        limit = 40 if self.trace == "debug" else 8
        lines = recent_messages(world.repo, world.run_id, step.step, limit)
        title = f"latest messages between agents ({name}, step {step.step}, {seconds:.2f}s)"
        self.live.update(
            Group(
                self.progress,
                messages_table(lines, title),
                metrics_panel(name, step.step, step.metrics, step.requests),
            )
        )
        if self.trace == "debug":
            self.live.console.print(messages_table(lines, f"step {step.step} messages ({name})"))

    def variant_done(self, result: Any) -> None:
        return None


@app.command()
def run(
    scenario: Annotated[Path, typer.Argument(help="scenario YAML file")],
    seed: Annotated[int | None, typer.Option(help="override run.seed")] = None,
    steps: Annotated[int | None, typer.Option(help="override run.steps")] = None,
    db: Annotated[
        str | None, typer.Option(help="database path or SQLAlchemy URL (overrides output.db)")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="no live view, only the summary")] = False,
    trace: Annotated[str | None, typer.Option(help="trace level: quiet, info or debug")] = None,
    overwrite: Annotated[bool, typer.Option(help="replace an existing database")] = False,
    resume: Annotated[
        bool, typer.Option(help="continue the unfinished runs of an existing database")
    ] = False,
) -> None:
    """Run a scenario: every recommender variant on the same world, then a summary table."""
    from environment.datasets.common import DataError
    from environment.runner import RunError, run_scenario
    from environment.views import summary_table

    sc = _scenario_or_exit(scenario)
    overrides: dict[str, Any] = {}
    if seed is not None:
        overrides["run.seed"] = seed
    if steps is not None:
        overrides["run.steps"] = steps
    if trace is not None:
        overrides["output.trace"] = trace
    if quiet:
        overrides["output.trace"] = "quiet"
    sc = _overrides_or_exit(sc, overrides)
    logging.basicConfig(level=logging.WARNING if sc.output.trace != "debug" else logging.INFO)
    view = LiveView(sc.run.steps, sc.output.trace)
    try:
        with view:
            result = run_scenario(sc, db=db, overwrite=overwrite, resume=resume, observer=view)
    except (RunError, DataError) as err:
        raise _fail(str(err)) from None
    console.print(summary_table(result.variants))
    console.print(f"database: {result.db}", highlight=False)


@app.command("trace")
def trace_cmd(
    database: Annotated[str, typer.Argument(help="the run's database (path or URL)")],
    user: Annotated[int, typer.Option(help="user id")],
    step: Annotated[int | None, typer.Option(help="step (default: the user's last list)")] = None,
    run_id: Annotated[
        int | None, typer.Option("--run", help="run id (default: the first run)")
    ] = None,
    variant: Annotated[str | None, typer.Option(help="pick the run by recommender name")] = None,
) -> None:
    """Replay the chain of messages behind a user's list: neighbours, trust, components, rules."""
    from environment.inspect import TraceError, pick_run, trace_user
    from environment.views import trace_view
    from storage.repository import Repository

    try:
        repo = Repository(database, create=False)
    except FileNotFoundError as err:
        raise _fail(str(err)) from None
    try:
        tr = trace_user(repo, pick_run(repo, run_id, variant), user, step)
    except TraceError as err:
        raise _fail(f"{database}: {err}") from None
    finally:
        repo.close()
    console.print(trace_view(tr))


@app.command()
def report(
    database: Annotated[str, typer.Argument(help="the run database (path or URL)")],
    out: Annotated[
        Path | None,
        typer.Option(help="folder for the PNG plots (default: <database>_report beside it)"),
    ] = None,
    steps: Annotated[
        str | None,
        typer.Option(help="steps of the trust-network snapshots, e.g. 0,10 (default: first,last)"),
    ] = None,
    portraits: Annotated[
        str | None,
        typer.Option(
            help="user ids, e.g. 3,17: draw each user's SerenDiff portrait (runs with scorer serendiff)"
        ),
    ] = None,
) -> None:
    """Tables and PNG plots of a run database: metrics per step, trust and reputation by user
    type, the cold-start curve, the accuracy-serendipity trade-off, trust-network snapshots,
    and (--portraits) users' history portraits with the zone SerenDiff generated."""
    from environment.portraits import PortraitError, draw_portraits
    from environment.report import ReportError, build_report, default_report_folder, parse_steps

    try:
        snapshot_steps = parse_steps(steps) if steps is not None else None
    except ValueError as err:
        raise _fail(str(err), EXIT_BAD_INPUT) from None
    try:
        portrait_users = [int(u) for u in portraits.split(",") if u.strip()] if portraits else []
    except ValueError:
        raise _fail(
            f"--portraits {portraits!r}: expected user ids like 3,17", EXIT_BAD_INPUT
        ) from None
    folder = out or default_report_folder(database)
    try:
        rep = build_report(database, folder, snapshot_steps=snapshot_steps)
        if portrait_users:
            rep.files.extend(draw_portraits(database, portrait_users, folder))
    except (ReportError, PortraitError) as err:
        raise _fail(str(err)) from None
    for table in rep.tables:
        console.print(table)
    for note in rep.notes:
        console.print(f"note: {note}", style="yellow", markup=False)
    console.print("[bold]files written:[/]")
    for path in rep.files:
        console.print(f"  {path}", markup=False, highlight=False, soft_wrap=True)


def _groups_or_exit(text: str) -> list[str]:
    from environment.compare import parse_groups

    try:
        return parse_groups(text)
    except ValueError as err:
        raise _fail(str(err), EXIT_BAD_INPUT) from None


@app.command()
def sweep(
    scenario: Annotated[Path, typer.Argument(help="scenario YAML file")],
    seeds: Annotated[
        int, typer.Option(min=1, help="number of seeds: run.seed, run.seed + 1, ...")
    ] = 3,
    grid: Annotated[
        list[str] | None,
        typer.Option(
            help="dotted.path=v1,v2 (YAML values), e.g. recommenders.0.neighbours=10,30; repeat for more keys"
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="parallel processes (1: one after another here); with --ray local, its CPUs",
        ),
    ] = 1,
    out: Annotated[
        Path | None, typer.Option(help="output folder (default: runs/sweep-<scenario name>)")
    ] = None,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            help="run the runs as Ray tasks: local (start one here), auto, or ray://host:port; with a remote cluster --out must be a path every node shares",
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="replace databases of an earlier sweep")] = False,
    groups: Annotated[
        str, typer.Option(help="user groups in the table: all,cold,warm,adversarial")
    ] = "all",
) -> None:
    """Run a scenario over seeds and a grid of overrides; one database per run, summary.csv,
    and mean ± 95% CI per variant with paired tests between variants."""
    from rich.markup import escape

    from environment.compare import point_tables
    from environment.sweep import (
        SweepError,
        grid_points,
        parse_grid,
        run_sweep,
        seeds_of,
    )

    sc = _scenario_or_exit(scenario)
    shown_groups = _groups_or_exit(groups)
    try:
        parsed = parse_grid(grid or [])
    except SweepError as err:
        raise _fail(str(err), EXIT_BAD_INPUT) from None
    folder = out or Path("runs") / f"sweep-{sc.name}"
    seed_list = seeds_of(sc, seeds)
    total = seeds * len(grid_points(parsed))
    logging.basicConfig(level=logging.WARNING)
    # A failed run is reported on one line below; the runner's traceback would repeat it.
    logging.getLogger("environment.runner").setLevel(logging.CRITICAL)
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )

    def done(run: Any) -> None:
        progress.advance(task)
        if run.status != "completed":
            progress.console.print(
                f"[red]failed[/] {escape(run.point)} seed {run.seed}: {escape(run.error or '')}",
                highlight=False,
                soft_wrap=True,
            )

    where = f"Ray ({ray})" if ray else f"{workers} worker(s)"
    with progress:
        task = progress.add_task(f"sweep {sc.name} on {where}", total=total)
        try:
            result = run_sweep(
                sc,
                grid=parsed,
                seeds=seed_list,
                out=folder,
                workers=workers,
                ray_address=ray,
                overwrite=overwrite,
                on_done=done,
            )
        except SweepError as err:
            raise _fail(str(err)) from None
    for table in point_tables(result.frame, groups=shown_groups):
        console.print(table)
    console.print(f"summary: {result.summary_csv}\nruns: {result.runs_csv}", markup=False)
    if result.failed:
        raise _fail(
            f"{len(result.failed)} of {len(result.results)} run(s) failed (see {result.runs_csv})"
        )


@app.command()
def compare(
    databases: Annotated[list[str], typer.Argument(help="run databases (one per seed)")],
    groups: Annotated[
        str, typer.Option(help="user groups in the table: all,cold,warm,adversarial")
    ] = "all",
) -> None:
    """Mean ± 95% CI of every variant across the databases, with paired tests between variants."""
    from environment.compare import CompareError, comparison_table, read_databases

    shown_groups = _groups_or_exit(groups)
    try:
        frame, notes = read_databases(databases)
    except CompareError as err:
        raise _fail(str(err)) from None
    for note in notes:
        console.print(f"note: {note}", style="yellow", markup=False)
    if frame.empty:
        raise _fail("no completed runs with whole-run metrics in these databases")
    seeds = ", ".join(str(s) for s in sorted(frame["seed"].unique()))
    title = f"{len(databases)} database(s), seeds {seeds}"
    console.print(comparison_table(frame, title=title, groups=shown_groups))


@app.command()
def evaluate(
    scenario: Annotated[Path, typer.Argument(help="scenario YAML file (its evaluation block)")],
    protocol: Annotated[
        list[str] | None,
        typer.Option(
            help="accuracy (TFCDSRS vs CF, FORMULAS 11) and/or ranking (deep scorers, MODELS 5)"
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="folder for the tables and checkpoints")] = None,
    seed: Annotated[int | None, typer.Option(help="override run.seed")] = None,
    epochs: Annotated[int | None, typer.Option(help="override every deep scorer's epochs")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda")] = None,
) -> None:
    """Offline evaluation on held-out data: the TFCDSRS paper's comparison and the deep scorers."""
    from environment.datasets.common import DataError
    from environment.offline_data import EvaluationError
    from environment.runner import build_world

    sc = _scenario_or_exit(scenario)
    overrides: dict[str, Any] = {}
    if seed is not None:
        overrides["run.seed"] = seed
    if epochs is not None:
        overrides["evaluation.epochs"] = epochs
    if device is not None:
        overrides["evaluation.device"] = device
    if protocol:
        overrides["evaluation.protocols"] = protocol
    sc = _overrides_or_exit(sc, overrides)
    folder = out or Path("runs") / f"{sc.name}-evaluate"
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    tasks: dict[str, Any] = {}

    def report(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = progress.add_task(stage, total=max(total, 1))
        progress.update(tasks[stage], completed=done, total=max(total, 1))

    try:
        with progress:
            world = build_world(sc)
            for note in world.notes:
                console.print(f"[dim]{note}[/]", highlight=False)
            for name in sc.evaluation.protocols:
                _run_protocol(name, sc, world, folder, report)
    except (DataError, EvaluationError, ValueError) as err:
        raise _fail(str(err)) from None
    console.print(f"tables written to {folder}/", highlight=False)


def _run_protocol(name: str, sc: Any, world: Any, folder: Path, report: Any) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if name == "accuracy":
        from environment.offline import evaluate_accuracy
        from environment.views_eval import accuracy_tables

        acc = evaluate_accuracy(sc, world, report)
        acc.frame.to_csv(folder / "accuracy.csv", index=False)
        for table in accuracy_tables(acc):
            console.print(table)
        for note in acc.notes:
            console.print(f"[dim]{note}[/]", highlight=False)
    else:
        from environment.ranking import evaluate_ranking
        from environment.views_ranking import ranking_tables

        rank = evaluate_ranking(sc, world, folder, report)
        for table in ranking_tables(rank):
            console.print(table)
        for note in rank.notes:
            console.print(f"[dim]{note}[/]", highlight=False)


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
