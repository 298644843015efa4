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
    from environment.scenario import ScenarioError, with_overrides
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
    try:
        sc = with_overrides(sc, overrides, source="command line") if overrides else sc
    except ScenarioError as err:
        for line in err.problems:
            err_console.print(f"{err.source}: {line}", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT) from None
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


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
