"""What the spec must agree with in the API's catalogue before anything is done: here, what
its regions offer the managers' placement groups."""

from __future__ import annotations

from pathlib import Path

import pytest

from swarmboot.cloud import CatalogueRegion
from swarmboot.preflight import check_catalogue, placement_warning
from swarmboot.spec import SpecError, parse_spec

from .conftest import REPO

EXAMPLE = (REPO / "examples" / "itframe.toml").read_text()
PATH = Path("s.toml")
WITH_GROUPS = frozenset({"Linodes", "Placement Group"})


class CatalogueOnly:
    """A cloud that answers only `catalogue`, with the regions given."""

    def __init__(self, **regions: CatalogueRegion) -> None:
        self.regions = {r.id: r for r in regions.values()}
        self.images = {"linode/debian12": frozenset({"cloud-init"})}

    def catalogue(self):
        return self.regions, {"g6-standard-1", "g6-standard-2"}, self.images


def _region(rid: str, capabilities=WITH_GROUPS, size: int | None = 5) -> CatalogueRegion:
    return CatalogueRegion(rid, frozenset(capabilities), size)


def test_a_region_without_placement_groups_is_named_and_nothing_else_is_refused():
    cloud = CatalogueOnly(
        eu=_region("eu-central", capabilities={"Linodes"}, size=None), gb=_region("gb-lon")
    )
    lacking = check_catalogue(parse_spec(EXAMPLE), PATH, cloud).placement_unsupported
    assert lacking == {"eu-central"}  # gb-lon has one manager: no group wanted there anyway
    assert placement_warning(lacking) == (
        "no placement group for the managers in eu-central: Linode offers none there, so two "
        "of them may share a host"
    )
    assert placement_warning(frozenset()) is None
    everywhere = CatalogueOnly(eu=_region("eu-central"), gb=_region("gb-lon"))
    assert check_catalogue(parse_spec(EXAMPLE), PATH, everywhere).placement_unsupported == set()


def test_more_managers_than_a_group_holds_are_refused_unless_they_need_no_group():
    seven = (
        '[cluster]\nname = "big"\n{extra}[regions.eu-central]\n'
        'pools = [{{ role = "manager", count = 7 }}]\n'
    )
    cloud = CatalogueOnly(eu=_region("eu-central", size=5))
    with pytest.raises(SpecError) as info:
        check_catalogue(parse_spec(seven.format(extra="")), PATH, cloud)
    assert info.value.problems == (
        "s.toml: regions.eu-central: 7 managers, but a placement group in eu-central holds at "
        "most 5 Linodes; spread the managers over more regions, or set cluster.manager_placement "
        '= "none"',
    )
    none = parse_spec(seven.format(extra='manager_placement = "none"\n'))
    assert check_catalogue(none, PATH, cloud).placement_unsupported == set()
    unlimited = CatalogueOnly(eu=_region("eu-central", size=None))
    facts = check_catalogue(parse_spec(seven.format(extra="")), PATH, unlimited)
    assert facts.placement_unsupported == set()


@pytest.mark.parametrize("value", ['"loose"', "true", '"Strict"'])
def test_manager_placement_takes_only_its_three_words(value):
    text = EXAMPLE.replace(
        'name = "itframe"\n', f'name = "itframe"\nmanager_placement = {value}\n', 1
    )
    with pytest.raises(SpecError) as info:
        parse_spec(text, source="s.toml")
    assert info.value.problems == (
        "s.toml: cluster.manager_placement: must be 'strict', 'flexible' or 'none'",
    )


def test_what_cloud_init_needs_is_read_from_the_catalogue_for_the_plan_to_judge():
    cloud = CatalogueOnly(
        eu=_region("eu-central", capabilities={"Linodes", "Placement Group", "Metadata"}),
        gb=_region("gb-lon"),
    )
    facts = check_catalogue(parse_spec(EXAMPLE), PATH, cloud)
    assert facts.metadata_unsupported == {"gb-lon"}
    assert facts.cloud_init_unsupported == set()  # linode/debian12 runs cloud-init
    cloud.images = {"linode/debian12": frozenset()}
    assert check_catalogue(parse_spec(EXAMPLE), PATH, cloud).cloud_init_unsupported == {
        "linode/debian12"
    }
