"""Reading the project's own JSON files (weights manifest, bench reports) with one clear error."""

from __future__ import annotations

import json
from pathlib import Path

from core.errors import InputError


def read_json_object(path: Path, unreadable: str, not_object: str) -> dict:
    """The JSON object in `path`; InputError `{path}: {unreadable} (why)` when it does not parse and
    `{path}: {not_object}` when it holds something other than an object."""
    try:
        data = json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: {unreadable} ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: {not_object}")
    return data
