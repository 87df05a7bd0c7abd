"""mnlib: the small PyTorch library behind the course "From MNIST to MobileNetV4"."""

from mnlib.config import budget, budget_name, environment_report, get_device, seed_everything
from mnlib.source import show_source

__version__ = "0.1.0"

__all__ = [
    "budget",
    "budget_name",
    "environment_report",
    "get_device",
    "seed_everything",
    "show_source",
]
