"""Which of the suites' tests the simulator answers for, and why the others are not.

A file is in scope when what it tests is an API the simulator serves (docs/simulator.md,
"Scope"); a test inside such a file is out when it needs a product the simulator refuses
on purpose. Each entry says why. Paths are relative to the suite's root.
"""

from __future__ import annotations

from dataclasses import dataclass

# Why a test in an in-scope file is not run: the product it needs is refused on purpose.
DOMAINS = "needs DNS Manager (domains)"
VOLUMES = "needs Block Storage (volumes)"
NODEBALANCERS = "needs NodeBalancers"
LKE = "needs LKE"
DATABASES = "needs Managed Databases"
OBJECT_STORAGE = "needs Object Storage"
LONGVIEW = "needs Longview"
BACKUPS = "needs the Backup service"
RESIZE = "resize and migrations are not served (a Linode keeps its plan and host)"
MAINTENANCE = "needs maintenance policies (/maintenance/policies)"
RESERVED_IPS = "needs reserved IPv4 addresses (/networking/reserved/ips)"
IMAGES = "image management (capture, upload, delete) is not served: images are read-only"
NAT_PUBLIC_IPV4 = (
    "upgrading, the real API puts the Linode's only IPv4 address on the VPC interface that "
    "maps it 1:1 and none on the public interface (linodego's recorded answers); the "
    "simulator's upgrade-interfaces puts every public address on the public interface"
)
VPU = "needs accelerated devices (VPU plans and /regions/availability)"
BILLING = "billing (invoices, payments, transfer, prices)"
USERS = "account users, logins, OAuth clients, child accounts, service transfers"
AUTH = "profile authentication (tokens, apps, devices, logins, security questions)"
AVAILABILITY = "plan availability per region and account (/account/availability)"
CLI_ONLY = "talks to api.linode.com itself (it overrides the host under test)"


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
        "test/integration/models/image/test_image.py": "image upload (Object Storage behind "
        "it): images are read-only here",
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
    out_tests={
        f"test/integration/{k}": v
        for k, v in {
            "filters/model_filters_test.py::test_database_type_model_filter": DATABASES,
            "filters/model_filters_test.py::test_database_engine_model_filter": DATABASES,
            "filters/model_filters_test.py::test_domain_model_filter": DOMAINS,
            "filters/model_filters_test.py::test_lke_cluster_model_filter": LKE,
            "linode_client/test_linode_client.py::test_fails_to_create_domain_without_soa_email": (
                DOMAINS
            ),
            "linode_client/test_linode_client.py::test_get_domains": DOMAINS,
            "linode_client/test_linode_client.py::test_image_create": IMAGES,
            "linode_client/test_linode_client.py::test_fails_to_create_image_with_non_existing_"
            "disk_id": IMAGES,
            "linode_client/test_linode_client.py::test_fails_to_delete_predefined_images": IMAGES,
            "linode_client/test_linode_client.py::test_get_volume": VOLUMES,
            "linode_client/test_linode_client.py::test_create_tag_with_id": f"{DOMAINS}, "
            "NodeBalancers and volumes to tag",
            "linode_client/test_linode_client.py::test_create_tag_with_entities": f"{DOMAINS}, "
            "NodeBalancers and volumes to tag",
            "linode_client/test_linode_client.py::test_get_longview_clients": LONGVIEW,
            "linode_client/test_linode_client.py::test_client_create_with_label": LONGVIEW,
            "linode_client/test_linode_client.py::test_kube_version": LKE,
            "linode_client/test_linode_client.py::test_cluster_create_with_api_objects": LKE,
            "linode_client/test_linode_client.py::test_fails_to_create_cluster_with_invalid_"
            "version": LKE,
            "linode_client/test_linode_client.py::test_get_object_storage_clusters": OBJECT_STORAGE,
            "linode_client/test_linode_client.py::test_get_keys": OBJECT_STORAGE,
            "linode_client/test_linode_client.py::test_keys_create": OBJECT_STORAGE,
            "models/account/test_account.py::test_get_login": USERS,
            "models/account/test_account.py::test_update_maintenance_policy": MAINTENANCE,
            "models/account/test_account.py::test_get_user": USERS,
            "models/account/test_account.py::test_list_child_accounts": USERS,
            "models/account/test_account.py::test_get_invoice": BILLING,
            "models/account/test_account.py::test_get_payments": BILLING,
            "models/linode/interfaces/test_interfaces.py::test_linode_interfaces_with_reserved_"
            "ips[legacy_config]": RESERVED_IPS,
            "models/linode/interfaces/test_interfaces.py::test_linode_interfaces_with_reserved_"
            "ips[standard_interfaces]": RESERVED_IPS,
            "models/linode/test_linode.py::test_get_linode": VOLUMES + " (its fixture)",
            "models/linode/test_linode.py::test_linode_transfer": VOLUMES + " (its fixture)",
            "models/linode/test_linode.py::test_linode_firewalls": VOLUMES + " (its fixture)",
            "models/linode/test_linode.py::test_linode_apply_firewalls": VOLUMES + " (its fixture)",
            "models/linode/test_linode.py::test_linode_volumes": VOLUMES,
            "models/linode/test_linode.py::test_linode_upgrade_interfaces": NAT_PUBLIC_IPV4,
            "models/linode/test_linode.py::test_get_vpu": VPU,
            "models/linode/test_linode.py::TestNetworkInterface::test_create_vpu": VPU,
            "models/linode/test_linode.py::test_linode_available_backups": BACKUPS,
            "models/linode/test_linode.py::test_linode_resize": RESIZE,
            "models/linode/test_linode.py::test_linode_resize_with_class": RESIZE,
            "models/linode/test_linode.py::test_linode_resize_with_migration_type": RESIZE,
            "models/linode/test_linode.py::test_linode_initate_migration": RESIZE,
            "models/linode/test_linode.py::test_linode_with_block_storage_encryption": VOLUMES,
            "models/linode/test_linode.py::test_create_linode_with_maintenance_policy": MAINTENANCE,
            "models/linode/test_linode.py::test_update_linode_maintenance_policy": MAINTENANCE,
            "models/linode/test_linode.py::test_update_linode_with_reserved_ip_in_address": (
                RESERVED_IPS
            ),
            "models/networking/test_networking.py::test_network_transfer_prices": BILLING,
            **{
                f"models/networking/test_networking.py::{t}": RESERVED_IPS
                for t in (
                    "test_create_reserved_ip[region0-tags0-expected0]",
                    "test_create_reserved_ip[region1-None-expected1]",
                    "test_create_reserved_ip_wo_region_fail",
                    "test_update_reserved_ip_tags",
                    "test_create_reserved_ip_assigned",
                    "test_get_reserved_ip_types",
                    "test_create_reserved_ip_with_allocate_and_region",
                    "test_create_reserved_ip_with_allocate_and_linode",
                    "test_reserve_ephemeral_ip",
                    "test_convert_unassigned_reserved_ip_to_ephemeral",
                )
            },
            "models/placement/test_placement.py::test_pg_migration": RESIZE,
            "models/profile/test_profile.py::test_get_personal_access_token_objects": AUTH,
            "models/tag/test_tag.py::test_get_tag_with_reserved_ip": RESERVED_IPS,
        }.items()
    },
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
    out_tests={
        f"tests/integration/{k}": v
        for k, v in {
            "account/test_account.py::test_account_transfer": BILLING,
            "account/test_account.py::test_available_service": AVAILABILITY,
            "account/test_account.py::test_region_availability": AVAILABILITY,
            "account/test_account.py::test_account_invoice_list": BILLING,
            "account/test_account.py::test_account_invoice_view": BILLING,
            "account/test_account.py::test_account_invoice_items": BILLING,
            "account/test_account.py::test_account_logins_list": USERS,
            "account/test_account.py::test_account_login_view": USERS,
            "account/test_account.py::test_user_list": USERS,
            "account/test_account.py::test_user_view": USERS,
            "account/test_account.py::test_payment_method_list": BILLING,
            "account/test_account.py::test_payment_list": BILLING,
            "account/test_account.py::test_service_transfers": USERS,
            "account/test_account.py::test_maintenance_list": MAINTENANCE,
            "account/test_account.py::test_clients_list": USERS,
            "cli/test_help.py::test_debug_output_contains_request_url": CLI_ONLY,
            "events/test_events.py::test_create_domain_and_filter_domain_events": DOMAINS,
            "users/test_profile.py::test_profile_apps_list": AUTH,
            "users/test_profile.py::test_profile_devices_list": AUTH,
            "users/test_profile.py::test_profile_login_list": AUTH,
            "users/test_profile.py::test_profile_login_view": AUTH,
            "users/test_profile.py::test_security_questions_list": AUTH,
            "users/test_profile.py::test_profile_token_list": AUTH,
        }.items()
    },
)

SUITES = (API4, CLI)
