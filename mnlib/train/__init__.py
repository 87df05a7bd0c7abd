"""Training: :func:`train_one_epoch` is the loop, :func:`fit` runs it with everything a long run
needs, :func:`evaluate` measures a model, :func:`predict` collects its logits.

:func:`fit` returns a :class:`History` of per-epoch metrics and can checkpoint every epoch so
that a run interrupted on Colab resumes exactly where it stopped (``checkpoint=``, ``resume=``).
Runs of a few dozen steps need :func:`recompute_batchnorm_statistics` (``fit(...,
precise_bn=True)``) before their BatchNorm statistics can be trusted in evaluation mode.
The chapters' training settings are in :mod:`mnlib.train.recipes`. Under ``torchrun`` the same
calls train data-parallel (:mod:`mnlib.train.distributed`, demo: :mod:`mnlib.train.ddp_demo`).
"""

from mnlib.train import distributed
from mnlib.train.batchnorm import recompute_batchnorm_statistics
from mnlib.train.history import History
from mnlib.train.loop import EpochStats, evaluate, fit, predict, train_one_epoch

__all__ = [
    "EpochStats",
    "distributed",
    "History",
    "evaluate",
    "fit",
    "predict",
    "recompute_batchnorm_statistics",
    "train_one_epoch",
]
