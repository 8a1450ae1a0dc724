"""Change-detection finetuning (``sdrl finetune``): config, module, loss, run."""

from sdrl.tasks.change.config import FinetuneConfig
from sdrl.tasks.registry import TaskSpec

TASK = TaskSpec(
    command="finetune",
    kind="change",
    config=FinetuneConfig,
    run="sdrl.tasks.change.run:finetune",
    help="finetune a change-detection model (siamese or early-fusion U-Net)",
    description=(
        "Train a change model on a change dataset folder (A/ B/ label/). RUN receives "
        "config.yaml (the resolved settings, a valid --config), last.ckpt, best.ckpt (best "
        "val F1; train loss without validation), metrics.csv, train_subset.json (the "
        "training tiles of --label-fraction) and, with --logger wandb, wandb/. --resume "
        "continues exactly. The checkpoints feed sdrl evaluate and sdrl predict."
    ),
    done="finetuned",
)
