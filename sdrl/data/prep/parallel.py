"""Running one job per scene: in worker processes, with progress, errors naming the scene.

:meth:`Workers.run` calls a module-level function once per scene, in worker processes
(``spawn``ed, so nothing of the parent's threads or open files is inherited; started once and
shared by the stages of a run) or in this process for one worker or one scene, and returns
the results in scene order. Every job runs
with one BLAS/OpenMP thread (:func:`threadpoolctl.threadpool_limits`): parallelism comes from
the processes, and a job's numbers (k-means centres, the reductions of its statistics) do not
depend on how many threads or processes there are, so the output is the same for any
``workers``.

Progress is a bar over scenes (tqdm, on stderr) when stderr is a terminal, else one log line
per finished scene. Worker processes are started with ``spawn``: a script that calls sdrl
with ``workers > 1`` needs the usual ``if __name__ == "__main__":`` guard (the ``sdrl``
command has it). A scene that fails stops the run: the jobs not started are cancelled,
those running are waited for (so nothing writes into a folder being removed), and the error
is re-raised as :class:`SceneError`, one line naming the scene (where it was listed, its
files) and the cause.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from threadpoolctl import threadpool_limits

from sdrl.errors import ConfigError, SdrlError, describe_os_error, one_line

__all__ = ["SceneError", "Workers", "naming", "resolve_workers"]

log = logging.getLogger(__name__)

R = TypeVar("R")


class SceneError(SdrlError):
    """One scene of a collection failed; the message names the scene and the cause.

    Attributes:
        scene: The scene's description (name, where it was listed, its files).
        reason: The cause, one line.
    """

    def __init__(self, scene: str, reason: str) -> None:
        self.scene = scene
        self.reason = reason
        super().__init__(f"{scene}: {reason}")

    def __reduce__(self) -> tuple[Any, ...]:
        return SceneError, (self.scene, self.reason)


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError) and not isinstance(error, SdrlError):
        return describe_os_error(error)
    return one_line(error)


@contextmanager
def naming(description: str | None) -> Iterator[None]:
    """Re-raise sdrl's and the system's errors as :class:`SceneError` naming a scene.

    Args:
        description: The scene's description; ``None`` lets errors through unchanged.
    """
    try:
        yield
    except SceneError:
        raise
    except (SdrlError, OSError) as error:
        if description is None:
            raise
        raise SceneError(description, _reason(error)) from error


def resolve_workers(workers: int) -> int:
    """``workers``, or one per CPU core this process may use for 0.

    Raises:
        ConfigError: A negative count.
    """
    if workers < 0:
        raise ConfigError(f"--workers: expected 0 (one per core) or more, found {workers}")
    if workers == 0:
        if hasattr(os, "sched_getaffinity"):
            return len(os.sched_getaffinity(0))
        return os.cpu_count() or 1
    return workers


@dataclass(frozen=True)
class _Outcome(Generic[R]):
    result: R | None = None
    error: SceneError | None = None


def _call(fn: Callable[..., R], args: tuple[Any, ...], description: str | None) -> _Outcome[R]:
    """Run one job with one thread; an sdrl or system error becomes a message."""
    with threadpool_limits(limits=1):
        try:
            with naming(description):
                return _Outcome(result=fn(*args))
        except SceneError as error:
            return _Outcome(error=error)  # sent back whole: no traceback objects to pickle


class _Progress:
    """A bar over scenes on a terminal, else a log line per scene."""

    def __init__(self, total: int, stage: str) -> None:
        self.total, self.stage, self.done = total, stage, 0
        self.bar = None
        if sys.stderr.isatty() and log.isEnabledFor(logging.INFO):
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=stage, unit="scene", file=sys.stderr)

    def update(self, name: str, summary: str) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.set_postfix_str(name, refresh=False)
            self.bar.update()
        else:
            log.info("%s %d/%d %s: %s", self.stage, self.done, self.total, name, summary)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class Workers:
    """Worker processes shared by the stages of one run, started when first needed.

    A context manager; with ``n == 1`` (or a stage of one job) jobs run in this process.

    Args:
        n: Processes; 0 for one per core.
    """

    def __init__(self, n: int = 1) -> None:
        self.n = resolve_workers(n)
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the processes (waiting for running jobs)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def run(
        self,
        fn: Callable[..., R],
        jobs: Sequence[tuple[Any, ...]],
        names: Sequence[str],
        descriptions: Sequence[str | None],
        stage: str = "scene",
        summary: Callable[[R], str] = lambda _: "done",
    ) -> list[R]:
        """Call ``fn(*job)`` for every job and return the results in job order.

        Args:
            fn: A module-level function (sent to the worker processes by name).
            jobs: Its arguments, one tuple per scene (picklable).
            names: Each scene's name, for the progress.
            descriptions: Each scene's description for errors (``None``: errors pass
                unchanged, e.g. for a pair given on its own).
            stage: What the jobs do, for the progress (``scene``, ``stack``...).
            summary: One line about a result, for the log.

        Returns:
            ``fn``'s results, in the order of ``jobs``.

        Raises:
            SceneError: A job failed with an sdrl or system error (the first to finish);
                jobs not started are cancelled and running ones waited for.
        """
        progress = _Progress(len(jobs), stage)
        results: list[R | None] = [None] * len(jobs)
        try:
            if self.n <= 1 or len(jobs) <= 1:
                for i, job in enumerate(jobs):
                    results[i] = _finish(_call(fn, job, descriptions[i]))
                    progress.update(names[i], summary(results[i]))  # type: ignore[arg-type]
            else:
                self._run_pool(fn, jobs, names, descriptions, results, progress, summary)
        finally:
            progress.close()
        return results  # type: ignore[return-value]

    def _run_pool(
        self,
        fn: Callable[..., R],
        jobs: Sequence[tuple[Any, ...]],
        names: Sequence[str],
        descriptions: Sequence[str | None],
        results: list[R | None],
        progress: _Progress,
        summary: Callable[[R], str],
    ) -> None:
        if self._pool is None:
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(max_workers=self.n, mp_context=context)
        pending: dict[Future[_Outcome[R]], int] = {
            self._pool.submit(_call, fn, job, descriptions[i]): i for i, job in enumerate(jobs)
        }
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=lambda f: pending[f]):
                    i = pending.pop(future)
                    results[i] = _finish(_outcome(future, descriptions[i] or names[i]))
                    progress.update(names[i], summary(results[i]))  # type: ignore[arg-type]
        finally:  # on failure: nothing may still write into a folder about to be removed
            for future in pending:
                future.cancel()
            wait(pending)


def _outcome(future: Future[_Outcome[R]], scene: str) -> _Outcome[R]:
    try:
        return future.result()
    except BrokenProcessPool as error:
        raise SdrlError(
            f"{scene}: a worker process stopped abruptly (out of memory, killed, or a script "
            "calling sdrl with workers > 1 without `if __name__ == '__main__':`); retry with "
            "--workers 1 to see the cause"
        ) from error


def _finish(outcome: _Outcome[R]) -> R:
    if outcome.error is not None:
        raise outcome.error
    return outcome.result  # type: ignore[return-value]
