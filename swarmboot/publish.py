"""Publishing the rendered StackScripts to the account, by label, only when they changed."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from swarmboot import paths
from swarmboot.cloud import CloudApi
from swarmboot.errors import SwarmbootError
from swarmboot.plan import LocalScript, script_label
from swarmboot.state import PublishedScript

__all__ = ["PublishResult", "local_scripts", "publish"]


def local_scripts(directory: Path | None = None) -> dict[str, LocalScript]:
    """The rendered StackScripts with what publishing them needs (from the catalogue)."""
    from swarmboot.render import load_catalog

    directory = directory or paths.stackscripts_dir()
    catalog = load_catalog(paths.templates_dir())
    found = {}
    for name, entry in catalog.scripts.items():
        path = directory / name
        if not path.is_file():
            raise SwarmbootError(f"{path} is missing", hint="run `swarmboot render`")
        found[name] = LocalScript(
            name, path.read_text(encoding="utf-8"), entry.images, entry.description
        )
    return found


@dataclass(frozen=True)
class PublishResult:
    label: str
    action: str  # "created", "updated", "unchanged"
    script_id: int | None
    diff: str = ""


def _diff(old: str, new: str, label: str) -> str:
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=f"{label} (published)",
            tofile=f"{label} (stackscripts/)",
        )
    )


def publish(
    cloud: CloudApi,
    scripts: dict[str, LocalScript],
    *,
    dry_run: bool = False,
    published: list[PublishedScript] | None = None,
) -> list[PublishResult]:
    mine = {s.label: s for s in (published if published is not None else cloud.stackscripts())}
    results = []
    for script in scripts.values():
        label = script_label(script.file)
        current = mine.get(label)
        if current is None:
            created = (
                None
                if dry_run
                else cloud.create_stackscript(
                    label, script.text, script.images, script.description, script.rev
                )
            )
            results.append(
                PublishResult(
                    label,
                    "created",
                    created.id if created else None,
                    _diff("", script.text, label) if dry_run else "",
                )
            )
        elif current.rev_note != script.rev or set(current.images) != set(script.images):
            diff = ""
            if dry_run:
                old = cloud.stackscript_detail(current.id).get("script", "")
                diff = _diff(old, script.text, label)
            else:
                cloud.update_stackscript(
                    current.id, script.text, script.images, script.description, script.rev
                )
            results.append(PublishResult(label, "updated", current.id, diff))
        else:
            results.append(PublishResult(label, "unchanged", current.id))
    return results
