"""The record of a training run: one row of metrics per epoch."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from mnlib.train import distributed


@dataclass(repr=False)
class History:
    """Per-epoch metrics of :func:`mnlib.train.fit`: each attribute is a list, one entry per epoch.

    Losses are means over the epoch's images, accuracies are fractions in [0, 1], ``lr`` is the
    first parameter group's learning rate at the end of the epoch, ``images_per_second`` counts
    training images only. ``val_loss`` and ``val_accuracy`` hold ``None`` when there was no
    validation loader.

    >>> history.train_loss[-1], history.best("val_accuracy")["epoch"]
    """

    train_loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    val_loss: list[float | None] = field(default_factory=list)
    val_accuracy: list[float | None] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    images_per_second: list[float] = field(default_factory=list)

    def append(self, **row: float | None) -> None:
        """Add one epoch; ``row`` must name every metric exactly once."""
        names = {f.name for f in fields(self)}
        if set(row) != names:
            raise ValueError(
                f"an epoch needs exactly the metrics {sorted(names)}; got {sorted(row)}"
            )
        for name, value in row.items():
            getattr(self, name).append(value)

    def __len__(self) -> int:
        return len(self.train_loss)

    def to_rows(self) -> list[dict[str, float | int | None]]:
        """One dict per epoch, with its 1-based ``epoch`` number first."""
        columns = asdict(self)
        return [
            {"epoch": index + 1, **{name: values[index] for name, values in columns.items()}}
            for index in range(len(self))
        ]

    def best(self, metric: str = "val_accuracy", mode: str | None = None) -> dict:
        """The row of the best epoch for ``metric``.

        ``mode`` is ``"max"`` or ``"min"``; by default losses are minimised and everything else
        maximised. Epochs where the metric is ``None`` (no validation) or NaN are skipped.
        """
        if metric not in {f.name for f in fields(self)}:
            raise ValueError(f"unknown metric {metric!r}; choose one of {list(asdict(self))}")
        mode = mode or ("min" if "loss" in metric else "max")
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        rows = [
            row
            for row in self.to_rows()
            if row[metric] is not None and not math.isnan(row[metric])  # NaN compares False
        ]
        if not rows:
            raise ValueError(f"the history has no (non-NaN) values for {metric!r}")
        choose = min if mode == "min" else max
        return choose(rows, key=lambda row: row[metric])

    # --- saving -------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, list]:
        """The metrics as plain lists (JSON- and ``torch.load(weights_only=True)``-safe)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, list], source: str = "data") -> History:
        """Rebuild a History from :meth:`to_dict`'s output; ``source`` names it in errors."""
        names = {f.name for f in fields(cls)}
        if not isinstance(data, dict) or set(data) != names:
            got = sorted(data) if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"{source} is not a History: expected keys {sorted(names)}, got {got}")
        lengths = {len(values) for values in data.values()}
        if len(lengths) > 1:
            raise ValueError(f"{source} is not a History: its metric lists differ in length")
        return cls(**{name: list(values) for name, values in data.items()})

    def save(self, path: str | Path) -> None:
        """Write the history as JSON (under torchrun: rank 0 only; the others have the same)."""
        if not distributed.is_main_process():
            return
        Path(path).write_text(json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> History:
        """Read a history written by :meth:`save`."""
        try:
            data = json.loads(Path(path).read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON: {error}") from error
        return cls.from_dict(data, source=str(path))

    # --- display ------------------------------------------------------------------------------

    def __str__(self) -> str:
        if not len(self):
            return "History (no epochs yet)"
        header = (
            f"{'epoch':>5}  {'train loss':>10}  {'train acc':>9}  {'val loss':>8}  {'val acc':>7}"
            f"  {'lr':>8}  {'seconds':>7}  {'img/s':>7}"
        )
        lines = [header]
        for row in self.to_rows():
            lines.append(
                f"{row['epoch']:>5}  {row['train_loss']:>10.4f}"
                f"  {_percent(row['train_accuracy']):>9}  {_number(row['val_loss']):>8}"
                f"  {_percent(row['val_accuracy']):>7}"
                f"  {row['lr']:>8.2e}  {row['seconds']:>7.1f}  {row['images_per_second']:>7.0f}"
            )
        return "\n".join(lines)

    __repr__ = __str__


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
