"""Publishing the rendered StackScripts to the account, by label, only when they changed."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from swarmboot import paths
from swarmboot.cloud import CloudApi
from swarmboot.errors import SwarmbootError
from swarmboot.plan import LocalScript, PublishStackScript, publish_steps
from swarmboot.state import PublishedScript

__all__ = ["PublishResult", "local_scripts", "publish", "publish_one"]


def local_scripts(directory: Path | None = None) -> dict[str, LocalScript]:
    """The rendered StackScripts with what publishing them needs (from the catalogue), and
    each one's cloud-config."""
    from swarmboot.render import cloud_config_name, load_catalog

    directory = directory or paths.stackscripts_dir()
    catalog = load_catalog(paths.templates_dir())
    found = {}
    for name, entry in catalog.scripts.items():
        path, config = directory / name, directory / cloud_config_name(name)
        for each in (path, config):
            if not each.is_file():
                raise SwarmbootError(f"{each} is missing", hint="run `swarmboot render`")
        found[name] = LocalScript(
            name,
            path.read_text(encoding="utf-8"),
            entry.images,
            entry.description,
            config.read_text(encoding="utf-8"),
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


def publish_one(cloud: CloudApi, step: PublishStackScript, script: LocalScript) -> PublishedScript:
    """Carry out one publish step (`up`'s and `stackscript publish`'s); the script as the
    API answered. The rendered file must still be the one planned."""
    if script.rev != step.rev:
        raise SwarmbootError(
            f"stackscripts/{step.file} changed since it was planned",
            hint="run the command again: it plans from the file as it is now",
        )
    if step.script_id is None:
        return cloud.create_stackscript(
            step.label, script.text, script.images, script.description, script.rev
        )
    return cloud.update_stackscript(
        step.script_id, script.text, script.images, script.description, script.rev
    )


def publish(
    cloud: CloudApi,
    scripts: dict[str, LocalScript],
    *,
    dry_run: bool = False,
    published: list[PublishedScript] | None = None,
) -> list[PublishResult]:
    """Publish the scripts that changed (`publish_steps`); with `dry_run`, say what would be
    sent and the diff against what is published."""
    mine = list(published if published is not None else cloud.stackscripts())
    ids = {s.label: s.id for s in mine}
    steps = {s.file: s for s in publish_steps(scripts.values(), mine)}
    results = []
    for script in scripts.values():
        step = steps.get(script.file)
        if step is None:
            results.append(PublishResult(script.label, "unchanged", ids.get(script.label)))
            continue
        action = "created" if step.action == "create" else "updated"
        if dry_run:
            old = (
                ""
                if step.script_id is None
                else cloud.stackscript_detail(step.script_id).get("script", "")
            )
            diff = _diff(old, script.text, step.label)
            results.append(PublishResult(step.label, action, step.script_id, diff))
            continue
        results.append(PublishResult(step.label, action, publish_one(cloud, step, script).id))
    return results
