"""Training: :func:`fit` a classifier, :func:`evaluate` it, :func:`predict` its logits.

:func:`fit` returns a :class:`History` of per-epoch metrics and can checkpoint every epoch so
that a run interrupted on Colab resumes exactly where it stopped (``checkpoint=``, ``resume=``).
"""

from mnlib.train.history import History
from mnlib.train.loop import evaluate, fit, predict

__all__ = ["History", "evaluate", "fit", "predict"]
