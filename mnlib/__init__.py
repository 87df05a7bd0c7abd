"""mnlib: the small PyTorch library behind the course "From MNIST to MobileNetV4".

``import mnlib`` is enough in a notebook: the submodules ``mnlib.data``, ``mnlib.models``,
``mnlib.train``, ``mnlib.plot``, ``mnlib.profile``, ``mnlib.compare`` and ``mnlib.exercises`` are
imported with it.
"""

from mnlib import compare, data, exercises, models, plot, profile, train
from mnlib.config import budget, budget_name, environment_report, get_device, seed_everything
from mnlib.show import show_source

__version__ = "0.1.0"

__all__ = [
    "budget",
    "budget_name",
    "compare",
    "data",
    "environment_report",
    "exercises",
    "get_device",
    "models",
    "plot",
    "profile",
    "seed_everything",
    "show_source",
    "train",
]
