"""The whole story on built-in data: ``sdrl demo`` answers "does sdrl pretraining help?".

Data engine → dataset folders → augmentation previews → pretraining with sdrl and with the
DetCon baseline (same steps) → change-detection finetuning from random, DetCon and sdrl
weights on a small label fraction (same budget, one or more seeds) → evaluation on the test
split → the sdrl backbone exported → a change map → ``report.md`` with the table, the figures
and an answer computed from the scores.

Modules: :mod:`.settings` (options and budget), :mod:`.run` (the stages), :mod:`.previews`,
:mod:`.verdict` (the answer), :mod:`.report` (``report.md`` and its figures),
:mod:`.results` (what was produced).
"""

from sdrl.demo.results import DemoResult, FinetuneRun, PretrainRun
from sdrl.demo.run import OUTPUTS, run_demo
from sdrl.demo.settings import DemoSettings

__all__ = ["OUTPUTS", "DemoResult", "DemoSettings", "FinetuneRun", "PretrainRun", "run_demo"]
