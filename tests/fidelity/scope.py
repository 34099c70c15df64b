"""Which of the suites' tests the simulator answers for, and why the others are not.

A file is in scope when what it tests is an API the simulator serves (docs/simulator.md,
"Scope"); a test inside such a file is out when it needs a product the simulator refuses
on purpose. Each entry says why. Paths are relative to the suite's root.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Suite:
    name: str  # as printed
    folder: str  # under .cache/fidelity/
    root: str  # the integration tests' folder under it
    in_scope: tuple[str, ...]  # files run
    out_files: dict[str, str]  # file -> why not run (every other file of the suite too)
    out_tests: dict[str, str]  # node id -> why deselected (in an in-scope file)


API4 = Suite(
    name="linode_api4",
    folder="linode_api4",
    root="test/integration",
    in_scope=(
        "test/integration/filters/model_filters_test.py",
        "test/integration/linode_client/test_errors.py",
        "test/integration/linode_client/test_linode_client.py",
        "test/integration/models/account/test_account.py",
        "test/integration/models/firewall/test_firewall.py",
        "test/integration/models/firewall/test_firewall_templates.py",
        "test/integration/models/image/test_image.py",
        "test/integration/models/linode/interfaces/test_interfaces.py",
        "test/integration/models/linode/test_linode.py",
        "test/integration/models/networking/test_networking.py",
        "test/integration/models/placement/test_placement.py",
        "test/integration/models/profile/test_profile.py",
        "test/integration/models/region/test_region.py",
        "test/integration/models/tag/test_tag.py",
        "test/integration/models/vpc/test_vpc.py",
    ),
    out_files={
        "test/integration/linode_client/test_retry.py": "the client's retries, against "
        "answers httpretty makes up: no API is asked",
        "test/integration/login_client/test_login_client.py": "OAuth at login.linode.com",
        "test/integration/models/database/test_database.py": "Managed Databases",
        "test/integration/models/database/test_database_engine_config.py": "Managed Databases",
        "test/integration/models/domain/test_domain.py": "DNS Manager (domains)",
        "test/integration/models/lke/test_lke.py": "LKE",
        "test/integration/models/lock/test_lock.py": "resource locks",
        "test/integration/models/longview/test_longview.py": "Longview",
        "test/integration/models/maintenance/test_maintenance.py": "maintenance policies",
        "test/integration/models/monitor/test_monitor.py": "Akamai Cloud Pulse (monitor)",
        "test/integration/models/monitor/test_monitor_logs.py": "Akamai Cloud Pulse (monitor)",
        "test/integration/models/monitor_api/test_monitor_api.py": "Akamai Cloud Pulse",
        "test/integration/models/nodebalancer/test_nodebalancer.py": "NodeBalancers",
        "test/integration/models/object_storage/test_obj.py": "Object Storage",
        "test/integration/models/object_storage/test_obj_quotas.py": "Object Storage",
        "test/integration/models/sharegroups/test_sharegroups.py": "image share groups",
        "test/integration/models/volume/test_blockstorage.py": "Block Storage (volumes)",
        "test/integration/models/volume/test_volume.py": "Block Storage (volumes)",
    },
    out_tests={},
)

CLI = Suite(
    name="linode-cli",
    folder="linode-cli",
    root="tests/integration",
    in_scope=(
        "tests/integration/account/test_account.py",
        "tests/integration/cli/test_args.py",
        "tests/integration/cli/test_help.py",
        "tests/integration/cli/test_host_overrides.py",
        "tests/integration/events/test_events.py",
        "tests/integration/firewalls/test_firewall_settings.py",
        "tests/integration/firewalls/test_firewalls.py",
        "tests/integration/firewalls/test_firewalls_rules.py",
        "tests/integration/kernels/test_kernels.py",
        "tests/integration/linodes/test_configs.py",
        "tests/integration/linodes/test_disk.py",
        "tests/integration/linodes/test_interfaces.py",
        "tests/integration/linodes/test_linode_interfaces.py",
        "tests/integration/linodes/test_linodes.py",
        "tests/integration/linodes/test_power_status.py",
        "tests/integration/linodes/test_rebuild.py",
        "tests/integration/linodes/test_types.py",
        "tests/integration/networking/test_networking.py",
        "tests/integration/placements/test_placements.py",
        "tests/integration/regions/test_plugin_region_table.py",
        "tests/integration/stackscripts/test_stackscripts.py",
        "tests/integration/tags/test_tags.py",
        "tests/integration/users/test_profile.py",
        "tests/integration/vlans/test_vlans.py",
        "tests/integration/vpc/test_vpc.py",
    ),
    out_files={
        "tests/integration/beta/test_beta_program.py": "beta programs",
        "tests/integration/database/test_database.py": "Managed Databases",
        "tests/integration/database/test_database_engine_config.py": "Managed Databases",
        "tests/integration/domains/test_domain_master.py": "DNS Manager (domains)",
        "tests/integration/domains/test_domain_records.py": "DNS Manager (domains)",
        "tests/integration/domains/test_domain_slave.py": "DNS Manager (domains)",
        "tests/integration/domains/test_domain_tags.py": "DNS Manager (domains)",
        "tests/integration/image/test_plugin_image_upload.py": "image upload (Object "
        "Storage behind it)",
        "tests/integration/linodes/test_backups.py": "the Backup service",
        "tests/integration/linodes/test_resize.py": "resize and migrations (not served)",
        "tests/integration/lke/test_clusters.py": "LKE",
        "tests/integration/lke/test_lke_acl.py": "LKE",
        "tests/integration/lke/test_lke_enterprise.py": "LKE",
        "tests/integration/longview/test_longview.py": "Longview",
        "tests/integration/maintenance/test_maintenance_policies.py": "maintenance policies",
        "tests/integration/managed/test_managed.py": "Linode Managed",
        "tests/integration/monitor/test_alerts.py": "Akamai Cloud Pulse (monitor)",
        "tests/integration/monitor/test_metrics.py": "Akamai Cloud Pulse (monitor)",
        "tests/integration/monitor/test_plugin_get_metrics.py": "Akamai Cloud Pulse",
        "tests/integration/nodebalancers/test_node_balancers.py": "NodeBalancers",
        "tests/integration/obj/test_obj_plugin.py": "Object Storage",
        "tests/integration/obj/test_obj_quota.py": "Object Storage",
        "tests/integration/obj/test_object_storage.py": "Object Storage",
        "tests/integration/sharegroups/test_images_sharegroups.py": "image share groups",
        "tests/integration/ssh/test_plugin_ssh.py": "SSH into a real Linode",
        "tests/integration/ssh/test_ssh.py": "SSH into a real Linode",
        "tests/integration/support/test_support.py": "support tickets",
        "tests/integration/users/test_users.py": "account users",
        "tests/integration/volumes/test_volumes.py": "Block Storage (volumes)",
        "tests/integration/volumes/test_volumes_resize.py": "Block Storage (volumes)",
    },
    out_tests={},
)

SUITES = (API4, CLI)
