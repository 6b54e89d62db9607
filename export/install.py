"""Installing an export: staged files moved into the output folder, then the new graphs listed in its
manifest (through `core.manifest.update_manifest`, the one manifest writer)."""

from __future__ import annotations

from pathlib import Path

from core.manifest import INT8_CHECKS, update_manifest


def move_staged(staging: Path, out_dir: Path) -> list[Path]:
    """Move every file of the staging folder into `out_dir` (replacing older ones); the installed paths."""
    files = []
    for staged in sorted(staging.iterdir()):
        staged.replace(out_dir / staged.name)
        files.append(out_dir / staged.name)
    return files


def list_graphs(weights_dir: Path, out_dir: Path, source: dict, tables: dict[str, dict[str, str]],
                exported: list[str], int8_checks: dict[str, dict] | None = None) -> tuple[Path, list[str]]:
    """List the new graphs in OUT's manifest; (manifest path, files unlisted).

    tables: manifest table ('onnx', 'onnx_fp16', ...) -> {model: file} written by this export, one
    entry per table of the format, empty ones included; exported: the models this export covered.
    Entries of exported models that this export did not renew (an fp16 graph of an older checkpoint,
    say) are unlisted and returned; tables left empty are dropped. int8_checks: what was measured of each
    int8 graph written ({model: {...}}, `core.manifest.INT8_CHECKS`); the exported models' older records
    go. An --out folder other than the weights folder gets the source's default landmark model and detector
    and no checkpoints listing.
    """
    same = out_dir.resolve() == weights_dir.resolve()
    unlisted: list[str] = []

    def change(target: dict) -> None:
        if not same:
            for default in ("default_landmarks", "default_detector"):  # --out runs as the source does
                if source.get(default):
                    target[default] = source[default]
            if not target.get("checkpoints"):
                target.pop("checkpoints", None)  # copy nothing but the graphs' listing
        for key, table in tables.items():
            old = target.get(key) or {}
            unlisted.extend(old[k] for k in exported if k in old and k not in table and old[k] not in table.values())
            current = {k: v for k, v in old.items() if k not in exported}
            current.update(table)
            if current:
                target[key] = current
            else:
                target.pop(key, None)
        checks = {k: v for k, v in (target.get(INT8_CHECKS) or {}).items() if k not in exported}
        checks.update(int8_checks or {})
        if checks:
            target[INT8_CHECKS] = checks
        else:
            target.pop(INT8_CHECKS, None)

    return update_manifest(out_dir, change), unlisted
