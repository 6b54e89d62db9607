"""Is a weights folder's ONNX graph older than the checkpoint it was exported from?

`facetrack export` records in each graph the sha256 of the checkpoint file it exported
(`facetrack.checkpoint_sha256`, `ModelMeta.extra[SOURCE_KEY]`). When the folder's checkpoint of that model
has another digest now (a model retrained and shipped, not exported again), the graph is out of date.
Graphs exported before that record are judged by modification time instead: out of date when the
checkpoint was written more than MTIME_MARGIN_S after the graph (a checkout or an install writes both
within seconds of each other). No torch: the checkpoint is hashed as bytes, never loaded.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from core.manifest import EXPORT_FLAGS
from core.meta import ModelMeta
from core.progress import duration

SOURCE_KEY = "checkpoint_sha256"  # the ModelMeta.extra entry export writes: the exported checkpoint's sha256
MTIME_MARGIN_S = 60.0
_CHUNK = 1 << 20


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file's bytes, 64 hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def graph_out_of_date(graph: str | Path, meta: ModelMeta, checkpoint: str | Path) -> str | None:
    """Why the ONNX graph `graph` (metadata `meta`) is older than `checkpoint`, the checkpoint its weights
    folder lists for the same model, or None when it is not (or `checkpoint` does not exist)."""
    graph, checkpoint = Path(graph), Path(checkpoint)
    if not checkpoint.is_file():
        return None
    flags = EXPORT_FLAGS.get(str(meta.extra.get("precision")), "")
    advice = f"run facetrack export --weights {graph.parent}{flags} to export it again"
    recorded = meta.extra.get(SOURCE_KEY)
    if recorded:
        if recorded == file_sha256(checkpoint):
            return None
        return f"{graph.name} was exported from another version of {checkpoint.name} (the checkpoint changed " \
               f"after the export); {advice}"
    ahead_s = checkpoint.stat().st_mtime - graph.stat().st_mtime
    if ahead_s <= MTIME_MARGIN_S:
        return None
    return f"{graph.name} is older than {checkpoint.name} (written {duration(ahead_s)} later; the graph " \
           f"records no checkpoint digest); {advice}"
