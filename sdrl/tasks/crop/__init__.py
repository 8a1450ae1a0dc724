"""The hierarchical crop classifier (``sdrl crop train|evaluate|predict``), after H2Crop.

Config, LightningModule, run, metrics, the one inference path and the outputs of evaluate and
predict; the data is :mod:`sdrl.data.crop`, the model :mod:`sdrl.models.crop`.
"""

from sdrl.tasks.crop.config import CropConfig
from sdrl.tasks.registry import TaskSpec

TASK = TaskSpec(
    command="crop train",
    kind="crop",
    config=CropConfig,
    run="sdrl.tasks.crop.run:train_crop",
    help="train the hierarchical dual-stream crop classifier (S2 time series + EnMAP)",
    description=(
        "Train the crop classifier on a crop folder in H2Crop's format (one HDF5 file per "
        "patch; sdrl synth --kind crop writes one): a video-Swin temporal stream on the "
        "Sentinel-2 months, an EnMAP stream, late fusion and one head per taxonomy level, each "
        "taking the previous level's logits. RUN receives config.yaml, last.ckpt, best.ckpt "
        "(best mean macro F1 over the levels on the val split), metrics.csv and, with --logger "
        "wandb, wandb/. The encoders start from sdrl exports with --temporal-init and "
        "--spectral-init."
    ),
    done="trained",
)
