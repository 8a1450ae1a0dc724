"""Self-supervised pretraining: region pooling, the sdrl objective and its views.

Shape letters: ``B`` batch, ``C`` bands, ``H``/``W`` image rows/columns, ``D`` feature or
embedding dim, ``h``/``w`` feature rows/columns, ``K`` semantic classes (regions).
"""

from sdrl.ssl.background_swap import SwappedView, background_swap
from sdrl.ssl.pooling import PoolingRule, region_pool
from sdrl.ssl.sdrl_loss import AnchorRegions, LossForm, SDRLLoss

__all__ = [
    "AnchorRegions",
    "LossForm",
    "PoolingRule",
    "SDRLLoss",
    "SwappedView",
    "background_swap",
    "region_pool",
]
