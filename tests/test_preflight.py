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


LINODE = EXAMPLE.replace('name = "itframe"\n', 'name = "itframe"\ninterfaces = "linode"\n', 1)


def test_linode_interfaces_need_vpcs_and_linode_interfaces_in_every_region():
    cloud = CatalogueOnly(
        eu=_region("eu-central", capabilities={*WITH_GROUPS, "VPCs"}),
        gb=_region("gb-lon", capabilities={*WITH_GROUPS, "VPCs", "Linode Interfaces"}),
    )
    with pytest.raises(SpecError) as info:
        check_catalogue(parse_spec(LINODE), PATH, cloud, "linode")
    assert info.value.problems == (
        "s.toml: regions.eu-central: Linode offers no Linode Interfaces in eu-central, which "
        'cluster.interfaces = "linode" needs there; set cluster.interfaces = "legacy", or '
        "choose another region",
    )
    # Legacy-config Linodes need neither.
    facts = check_catalogue(parse_spec(LINODE), PATH, cloud, "legacy_config")
    assert facts.placement_unsupported == frozenset()


class AccountOnly:
    """A cloud that answers only `account_interfaces`: the setting, or an error."""

    def __init__(self, setting=None, error=None) -> None:
        self.setting, self.error, self.asked = setting, error, 0

    def account_interfaces(self):
        self.asked += 1
        if self.error is not None:
            raise self.error
        return self.setting


def test_the_accounts_setting_is_read_only_where_the_spec_needs_it():
    from swarmboot.preflight import account_interfaces

    legacy = AccountOnly("linode_only")
    assert account_interfaces(parse_spec(EXAMPLE), PATH, legacy) is None
    assert legacy.asked == 0  # "legacy": a token without access to the settings works
    auto = parse_spec(LINODE.replace('"linode"', '"auto"'))
    for setting in ("linode_only", "legacy_config_default_but_linode_allowed"):
        assert account_interfaces(auto, PATH, AccountOnly(setting)) == setting
    # No such setting: the account offers no Linode interfaces.
    assert account_interfaces(auto, PATH, AccountOnly(None)) == "legacy_config_only"


def test_a_spec_the_accounts_setting_forbids_is_refused_before_anything_is_made():
    from swarmboot.preflight import account_interfaces

    with pytest.raises(SpecError) as info:
        account_interfaces(parse_spec(LINODE), PATH, AccountOnly("legacy_config_only"))
    assert info.value.problems == (
        's.toml: cluster.interfaces: "linode", but the account makes legacy-config Linodes '
        "only (interfaces_for_new_linodes = legacy_config_only); set cluster.interfaces = "
        '"legacy" or "auto", or change the account\'s setting',
    )


def test_a_token_that_may_not_read_the_settings_stops_auto_but_not_linode():
    from swarmboot.cloud import CloudError
    from swarmboot.credentials import NoTokenError
    from swarmboot.preflight import account_interfaces

    scoped = CloudError(
        "x", status=401, reason="Your OAuth token is not authorized to use this endpoint."
    )
    assert account_interfaces(parse_spec(LINODE), PATH, AccountOnly(error=scoped)) is None
    auto = parse_spec(LINODE.replace('"linode"', '"auto"'))
    with pytest.raises(NoTokenError) as info:
        account_interfaces(auto, PATH, AccountOnly(error=scoped))
    assert info.value.exit_code == 5
    assert str(info.value).startswith(
        "the Linode API would not show the account's settings (GET /account/settings: 401 "
        "Your OAuth token is not authorized to use this endpoint.), which cluster.interfaces "
        '= "auto" follows'
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
