"""The demo's answer to "does sdrl pretraining help?", computed from the test scores only.

A difference between two initialisations counts when, seed by seed, the models differ the
same way by more than :data:`TIE` F1, and the mean difference exceeds the larger standard
deviation over seeds of the two. With one seed no difference counts (the spread between seeds
is unknown). Whatever the scores say is what the sentences say.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sdrl.demo.results import mean_std

__all__ = ["TIE", "compare", "verdict"]

TIE = 0.01
"""Differences of F1 up to this size are ties."""

NAMES = {"random": "random initialisation", "detcon": "DetCon pretraining"}


def compare(ours: Sequence[float], theirs: Sequence[float]) -> int:
    """+1 when ``ours`` is clearly higher, -1 clearly lower, 0 otherwise (module doc).

    Args:
        ours: Scores, one per seed.
        theirs: The other initialisation's scores for the same seeds.
    """
    diffs = [a - b for a, b in zip(ours, theirs, strict=True)]
    if len(diffs) < 2:
        return 0
    mean = sum(diffs) / len(diffs)
    spread = max(mean_std(list(ours))[1], mean_std(list(theirs))[1])
    if all(d > TIE for d in diffs) and mean > spread:
        return 1
    if all(d < -TIE for d in diffs) and -mean > spread:
        return -1
    return 0


def _scores(values: Sequence[float]) -> str:
    mean, std = mean_std(list(values))
    return f"{mean:.3f} ± {std:.3f}" if len(values) > 1 else f"{mean:.3f}"


def _against(other: str, ours: Sequence[float], theirs: Sequence[float]) -> str:
    """What follows "sdrl initialisation was" when set against ``other``."""
    name = NAMES.get(other, other)
    diff = mean_std(list(ours))[0] - mean_std(list(theirs))[0]
    numbers = f"F1 {_scores(ours)} against {_scores(theirs)}, a difference of {diff:+.3f}"
    if len(ours) < 2:
        relation = "higher than" if diff > TIE else "lower than" if diff < -TIE else "level with"
        return f"{relation} {name} in a single run ({numbers})"
    outcome = compare(ours, theirs)
    if outcome > 0:
        return (
            f"better than {name} in every seed, by more than the spread between seeds ({numbers})"
        )
    if outcome < 0:
        return f"worse than {name} in every seed, by more than the spread between seeds ({numbers})"
    return f"not clearly different from {name} ({numbers}, within the variation between seeds)"


def verdict(f1: Mapping[str, Sequence[float]], baseline: str = "detcon") -> str:
    """The report's answer in a few sentences.

    Args:
        f1: Initialisation (``random``, ``baseline``, ``sdrl``) → test F1 per seed, in the
            same seed order for every initialisation.
        baseline: The pretraining baseline's key.

    Returns:
        Markdown text: the answer, sdrl against random and the baseline, the ranking.
    """
    ours = f1["sdrl"]
    versus_random = compare(ours, f1["random"])
    if versus_random > 0:
        head = "**Yes, on this data and at this budget**: sdrl pretraining helped."
    elif versus_random < 0:
        head = "**No, not at this budget**: sdrl pretraining did worse than random weights."
    else:
        head = (
            "**Not shown at this budget**: these runs cannot tell whether sdrl pretraining helps."
        )
    means = sorted(f1, key=lambda k: -mean_std(list(f1[k]))[0])
    ranking = ", ".join(f"{k} {mean_std(list(f1[k]))[0]:.3f}" for k in means)
    seeds = len(ours)
    if seeds < 2:
        rule = (
            "With one finetuning seed the spread between seeds is unknown, so no difference "
            "counts: it may be noise."
        )
    else:
        rule = (
            f"A difference counts here when every seed's models differ the same way by more "
            f"than {TIE} F1 and the mean difference exceeds the standard deviation over seeds; "
            f"with {seeds} seeds this is a weak test."
        )
    return (
        f"{head} On the test split, sdrl initialisation was "
        f"{_against('random', ours, f1['random'])}, and {_against(baseline, ours, f1[baseline])}. "
        f"Mean F1 from best to worst: {ranking}. {rule}"
    )
