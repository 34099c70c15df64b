"""What a spec must agree with before any command acts on it: a StackScript of this
project for its image, and region, type and image names the API's catalogue has."""

from __future__ import annotations

from pathlib import Path

from swarmboot.cloud import CloudApi
from swarmboot.plan import LocalScript
from swarmboot.publish import local_scripts
from swarmboot.spec import Spec, SpecError, check_against_catalog

__all__ = ["check_catalogue", "stackscript_for"]


def stackscript_for(spec: Spec, spec_path: Path) -> LocalScript:
    """The rendered StackScript the spec names, made for its image."""
    scripts = local_scripts()
    script = scripts.get(spec.cluster.stackscript)
    if script is None:
        raise SpecError(
            [
                f"{spec_path}: cluster.stackscript: no StackScript "
                f"{spec.cluster.stackscript!r}; choose one of "
                f"{', '.join(sorted(scripts))}"
            ]
        )
    if spec.cluster.image not in script.images:
        raise SpecError(
            [
                f"{spec_path}: cluster.image: {spec.cluster.stackscript} is for "
                f"{', '.join(script.images)}, not {spec.cluster.image}"
            ]
        )
    return script


def check_catalogue(spec: Spec, spec_path: Path, cloud: CloudApi) -> None:
    """Region, type and image names as the API knows them (not a list in the code)."""
    regions, types, images = cloud.catalogue()
    check_against_catalog(spec, str(spec_path), regions, types, images)
