"""Where a sweep's runs execute: one after another, a local process pool, or Ray tasks.

Each task is one (grid point, seed) scenario run (``environment.sweep.execute_task``); a failed
task comes back as a failed ``TaskResult`` and the others go on. Ray is imported only when
asked for (the optional ``ray`` extra).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from environment.sweep import (
    Callback,
    SweepError,
    SweepTask,
    TaskResult,
    _failed,
    execute_task,
    one_line,
)

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("agents", "environment", "models", "storage")

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _init_worker(threads: int) -> None:
    # Workers share the cores: W processes of one BLAS/torch thread per core each would
    # oversubscribe them. The variables act on libraries loaded after this (the simulation is
    # imported in the task); a variable the user set wins.
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, str(threads))
    # A failed run is reported by the sweep on one line; the runner's own traceback log
    # would only repeat it, interleaved from several processes.
    logging.disable(logging.CRITICAL)


def run_local(
    tasks: Sequence[SweepTask], workers: int, on_done: Callback | None = None
) -> list[TaskResult]:
    """Run the tasks one after another in this process (``workers <= 1``) or in a pool.

    Returns:
        The results in task order; ``on_done`` sees each as it finishes.
    """
    results: dict[int, TaskResult] = {}
    if workers <= 1 or len(tasks) <= 1:
        for i, task in enumerate(tasks):
            results[i] = execute_task(task)
            if on_done:
                on_done(results[i])
        return [results[i] for i in range(len(tasks))]
    n = min(workers, len(tasks))
    threads = max(1, (os.cpu_count() or 1) // n)
    with ProcessPoolExecutor(
        max_workers=n,
        mp_context=get_context("spawn"),
        initializer=_init_worker,
        initargs=(threads,),
    ) as pool:
        futures = {pool.submit(execute_task, task): i for i, task in enumerate(tasks)}
        for future in as_completed(futures):
            i = futures[future]
            try:
                results[i] = future.result()
            except Exception as err:  # a worker that died (BrokenProcessPool) takes its run
                results[i] = _failed(tasks[i], one_line(err))
            if on_done:
                on_done(results[i])
    return [results[i] for i in range(len(tasks))]


def ray_runtime_env() -> dict[str, Any]:
    """The Ray job's runtime environment: this project's packages, uploaded to the workers.

    A remote cluster needs SerenSim's dependencies installed but not SerenSim itself.
    """
    return {"py_modules": [str(PROJECT_ROOT / p) for p in PACKAGES]}


def run_ray(
    tasks: Sequence[SweepTask], address: str, workers: int, on_done: Callback | None = None
) -> list[TaskResult]:
    """Run the tasks as Ray tasks, one CPU each; the databases are written by the workers.

    Args:
        tasks: The runs.
        address: ``local`` (start a Ray instance here with ``workers`` CPUs), ``auto`` (the
            cluster this machine belongs to) or ``ray://host:port``. Ignored when this process
            is already connected to Ray (``ray.init`` called before).
        workers: CPUs of a local instance.
        on_done: Sees each result as it finishes.

    Returns:
        The results in task order.

    Raises:
        SweepError: Ray is not installed or the cluster cannot be reached.
    """
    try:
        import ray
    except ImportError:
        raise SweepError("Ray is not installed: pip install 'serensim[ray]'") from None
    started = False
    if not ray.is_initialized():
        options: dict[str, Any] = {"runtime_env": ray_runtime_env(), "log_to_driver": False}
        try:
            if address == "local":
                ray.init(num_cpus=max(workers, 1), include_dashboard=False, **options)
            else:
                ray.init(address=address, **options)
        except Exception as err:  # Ray raises ConnectionError, ValueError, RuntimeError...
            raise SweepError(f"cannot start or reach Ray at {address!r}: {one_line(err)}") from None
        started = True
    try:
        remote = ray.remote(num_cpus=1, max_retries=0)(execute_task)
        refs = {remote.remote(task): i for i, task in enumerate(tasks)}
        results: dict[int, TaskResult] = {}
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                i = refs[ref]
                try:
                    results[i] = ray.get(ref)
                except Exception as err:  # a worker that died or a lost node
                    results[i] = _failed(tasks[i], one_line(err))
                if on_done:
                    on_done(results[i])
    finally:
        if started:
            ray.shutdown()
    return [results[i] for i in range(len(tasks))]
