"""facetrack's other top-level packages have generic names: say when another project's package takes one.

The distribution installs `core`, `tracker`, `training` and `export` beside `facetrack` (the repository's
layout). Another installed project may use one of these names too: its package then comes first on the
path (shadows ours), or one install overwrote the other's files in site-packages (pip does not warn).
`problems` finds both without importing any of them: a package that does not import from beside
`facetrack` is shadowed; in a wheel install, a file of ours that no longer has the digest facetrack's
RECORD gives was replaced, and a .py file that RECORD does not list belongs to another project.
The command line checks this before it imports anything else (`facetrack.cli`). Imports nothing of the
project's own.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import importlib.util
from dataclasses import dataclass
from pathlib import Path

PARTS = ("core", "tracker", "training", "export")  # facetrack's top-level packages besides `facetrack`
DISTRIBUTION = "facetrack"
ADVICE = "install facetrack in a virtual environment of its own"


@dataclass(frozen=True)
class Problem:
    """One clash: `fatal` when facetrack itself cannot be trusted to run (its package is not its own)."""

    text: str
    fatal: bool


def _root() -> Path:
    """The folder that holds the `facetrack` package and its siblings (site-packages, or the repository)."""
    return Path(__file__).resolve().parent.parent


def shadowed(root: Path, parts: tuple[str, ...] = PARTS) -> list[Problem]:
    """Packages of `parts` that do not import from `root/<name>/__init__.py` (found, not imported)."""
    found = []
    for name in parts:
        spec = importlib.util.find_spec(name)
        origin = Path(spec.origin).resolve() if spec is not None and spec.origin else None
        if origin != root / name / "__init__.py":
            where = origin.parent if origin is not None else "nowhere"
            found.append(Problem(f"the top-level package {name!r} imports from {where}, not from facetrack's "
                                 f"{root / name}: another installed project has a package of that name; {ADVICE}",
                                 fatal=True))
    return found


def _record_digest(path: Path) -> str:
    """A file's digest as a wheel's RECORD writes it: sha256=urlsafe base64 without padding."""
    raw = hashlib.sha256(path.read_bytes()).digest()
    return "sha256=" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def overwritten(root: Path, record: dict[str, str], parts: tuple[str, ...] = PARTS) -> list[Problem]:
    """Clashes inside the package folders of a wheel install. record: {path relative to `root` ('tracker/
    api.py'): 'sha256=...'} as facetrack's RECORD lists them; a folder RECORD lists nothing of (an editable
    install or a source checkout, where the repository's folders are the packages) is not checked."""
    found = []
    for name in parts:
        ours = {path: digest for path, digest in record.items() if path.split("/", 1)[0] == name}
        if not ours:
            continue
        changed = [p for p, digest in sorted(ours.items())
                   if p.endswith(".py") and digest and (not (root / p).is_file() or _record_digest(root / p) != digest)]
        if changed:
            found.append(Problem(f"{root / changed[0]} is not the file facetrack installed ({len(changed)} changed "
                                 f"or missing in {root / name}): another project's package {name!r} overwrote it, "
                                 f"or it was edited; reinstall facetrack: {ADVICE}", fatal=True))
        foreign = sorted(p.relative_to(root).as_posix() for p in (root / name).rglob("*.py")
                         if p.relative_to(root).as_posix() not in ours)
        if foreign:
            found.append(Problem(f"{root / foreign[0]} ({len(foreign)} file(s) in {root / name}) is not facetrack's: "
                                 f"another installed project shares the top-level package {name!r}, and one of the "
                                 f"two installs overwrote the other's files; {ADVICE}", fatal=False))
    return found


def _own_record(root: Path) -> dict[str, str]:
    """facetrack's RECORD entries {relative path: digest} when the installed distribution is the one at
    `root`; {} otherwise (none installed, another copy's metadata found first, or a source checkout's
    egg-info, which has no RECORD)."""
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return {}
    if dist.read_text("RECORD") is None or Path(str(dist.locate_file(""))).resolve() != root:
        return {}
    return {str(f): (f"{f.hash.mode}={f.hash.value}" if f.hash else "") for f in dist.files or ()}


def problems() -> list[Problem]:
    """Every clash of facetrack's top-level packages with another project's, fatal ones first."""
    root = _root()
    found = shadowed(root) + overwritten(root, _own_record(root))
    return sorted(found, key=lambda p: not p.fatal)


def check_or_exit() -> None:
    """The command line's check, before it imports the other packages: a fatal clash prints
    `facetrack: error: ...` on stderr and exits 2; another one prints `facetrack: warning: ...`."""
    import sys

    found = problems()
    for problem in found:
        if not problem.fatal:
            print(f"facetrack: warning: {problem.text}", file=sys.stderr)
    fatal = [p for p in found if p.fatal]
    if fatal:
        print(f"facetrack: error: {fatal[0].text}", file=sys.stderr)
        raise SystemExit(2)
