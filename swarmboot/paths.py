"""Where swarmboot finds its templates and rendered StackScripts.

In a source checkout they are the top-level `templates/` and `stackscripts/` folders; an
installed wheel carries copies of both inside the package.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["source_root", "stackscripts_dir", "templates_dir"]

_PACKAGE = Path(__file__).resolve().parent


def source_root() -> Path | None:
    """The checkout this package runs from, or None for an installed wheel."""
    root = _PACKAGE.parent
    if (root / "pyproject.toml").is_file() and (root / "templates").is_dir():
        return root
    return None


def templates_dir() -> Path:
    root = source_root()
    return root / "templates" if root else _PACKAGE / "_data" / "templates"


def stackscripts_dir() -> Path:
    """The rendered StackScripts: the checkout's `stackscripts/`, or the wheel's copy."""
    root = source_root()
    return root / "stackscripts" if root else _PACKAGE / "_data" / "stackscripts"
