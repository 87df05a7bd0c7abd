"""Write a file that other code produces (an exporter, a quantizer) without leaving half of it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mnlib.files import remove_stale_temporaries


@contextmanager
def written_atomically(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder; on success it replaces ``path`` in one step.

    For writers that take a file name rather than an open file (``torch.onnx.export``,
    ``onnxruntime.quantization.quantize_static``). The temporary is named like
    :func:`mnlib.files.save_atomic`'s (``.<name>.pid<PID>.<random>.tmp``), so a crash leaves
    either the old file or the complete new one, and the next write removes the leftover.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent)
    handle, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.pid{os.getpid()}.", suffix=".tmp"
    )
    os.close(handle)
    try:
        yield Path(temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
