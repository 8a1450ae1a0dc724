"""Self-supervised pretraining (``sdrl pretrain``): config, module, data, views, probe, run."""

from sdrl.tasks.pretrain.config import PretrainConfig
from sdrl.tasks.registry import TaskSpec

TASK = TaskSpec(
    command="pretrain",
    kind="pretrain",
    config=PretrainConfig,
    run="sdrl.tasks.pretrain.run:pretrain",
    help="self-supervised pretraining (sdrl, SimCLR, MoCo, BYOL, DetCon)",
    description=(
        "Pretrain a backbone on a pretraining dataset folder. RUN receives config.yaml "
        "(the resolved settings, a valid --config), last.ckpt, best.ckpt (best val "
        "probe accuracy; val loss without a probe; train loss without validation), "
        "metrics.csv and, with --logger wandb, wandb/. --resume continues exactly. "
        "Multi-GPU / multi-node: the same command under torchrun or srun, with --devices "
        "and --num-nodes."
    ),
    done="pretrained",
)
