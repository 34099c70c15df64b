from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from swarmboot import facts, render
from swarmboot.errors import StaleError, TemplateError

from .conftest import STACKSCRIPTS, TEMPLATES

SCRIPTS = ("debian12-swarm-node.sh", "debian13-swarm-node.sh")


def test_renders_one_script_per_release(rendered):
    assert set(rendered) >= set(SCRIPTS)
    assert rendered["debian12-swarm-node.sh"].entry.distro.codename == "bookworm"
    assert rendered["debian13-swarm-node.sh"].entry.distro.codename == "trixie"
    assert rendered["debian12-swarm-node.sh"].entry.images == ("linode/debian12",)


def test_committed_stackscripts_and_cloud_configs_are_fresh(rendered, cloud_configs):
    outputs = (*rendered.values(), *cloud_configs.values())
    assert {o.name for o in outputs} == {
        *SCRIPTS,
        "debian12-swarm-node.cloud-config.yaml",
        "debian13-swarm-node.cloud-config.yaml",
    }
    assert render.check(outputs, STACKSCRIPTS) == ()


@pytest.mark.parametrize("name", SCRIPTS)
def test_a_cloud_config_writes_its_script_byte_for_byte_and_runs_it_once(
    rendered, cloud_configs, name
):
    config = cloud_configs[name]
    assert config.text.startswith("#cloud-config\n")
    data = yaml.safe_load(config.text)
    script_path = f"{facts.CLOUD_INIT_SCRIPT_DIR}/{name}"
    assert data["write_files"] == [
        {
            "path": script_path,
            "owner": "root:root",
            "permissions": "0700",
            "content": rendered[name].text,
        }
    ]
    assert list(data)[-1] == "write_files"  # the node's own entries are appended to it
    (command,) = data["runcmd"]
    assert command[:2] == ["/bin/bash", "-c"]
    assert command[2].endswith(f"exec /bin/bash {script_path}")
    assert f". {facts.NODE_ENV_FILE} " in command[2]
    # root keeps its keys; no default user; the one pinned host key
    assert (data["users"], data["disable_root"], data["ssh_deletekeys"]) == ([], False, True)
    # Nothing secret: no field value, no key.
    assert "PRIVATE KEY" not in config.text and "ssh_keys" not in data


def test_a_cloud_config_that_would_change_the_script_is_refused(templates):
    template = templates / "cloud-config.yaml.j2"
    template.write_text(template.read_text().replace("indent(6, first=True)", "indent(6)"))
    scripts = render.render_all(templates)
    broken = re.escape("debian12-swarm-node.cloud-config.yaml: not YAML")
    with pytest.raises(TemplateError, match=broken):
        render.render_cloud_configs(templates, scripts)


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_opens_with_shebang_then_the_udf_header(rendered, name):
    lines = rendered[name].text.splitlines()
    assert lines[0] == "#!/bin/bash"
    udf_lines = [i for i, line in enumerate(lines) if "<UDF " in line]
    assert udf_lines == list(range(1, 1 + len(rendered[name].udfs)))


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_is_strict_logs_and_reports(rendered, name):
    text = rendered[name].text
    assert "\nset -Eeuo pipefail\n" in text
    assert f"readonly LOG_FILE={facts.LOG_PATH}" in text
    assert f"readonly STATUS_FILE={facts.STATUS_PATH}" in text
    assert 'tee -a "$LOG_FILE" /dev/ttyS0' in text
    assert '\nmain "$@"\n' in text


def test_scripts_differ_only_where_their_releases_do(rendered):
    a = rendered["debian12-swarm-node.sh"].text.splitlines()
    b = rendered["debian13-swarm-node.sh"].text.splitlines()
    assert len(a) == len(b)
    differing = [(x, y) for x, y in zip(a, b, strict=True) if x != y]
    assert all(
        re.search(r"[Dd]ebian ?1[23]|bookworm|trixie|docker-cli", x + y) for x, y in differing
    ), differing


def test_firewall_opens_every_swarm_port_to_members_only(rendered):
    text = rendered["debian12-swarm-node.sh"].text
    conf = text.split("<<'NFT'\n", 1)[1].split("\nNFT\n", 1)[0]
    assert "flush ruleset" not in conf.replace('no "flush ruleset"', "")
    assert "policy drop;" in conf
    for port in facts.SWARM_PORTS:
        assert (
            f"ip saddr @{facts.NFT_MEMBERS_SET} {port.protocol} dport {port.number} accept"
        ) in conf
    assert f"ip saddr @{facts.NFT_MEMBERS_SET} meta l4proto esp accept" in conf
    assert "tcp dport 22 accept" in conf
    assert f'include "{facts.MEMBERS_FILE}"' in conf


def test_containers_do_not_reach_the_metadata_service(rendered):
    text = rendered["debian12-swarm-node.sh"].text
    conf = text.split("<<'NFT'\n", 1)[1].split("\nNFT\n", 1)[0]
    forward = conf.split("chain forward {", 1)[1].split("}\n", 1)[0]
    assert "hook forward priority filter; policy accept;" in forward
    assert f"ip daddr {facts.METADATA_IPV4} drop" in forward
    assert f"ip6 daddr {{ {', '.join(facts.METADATA_IPV6)} }} drop" in forward


def test_daemon_json_suits_swarm_mode(rendered):
    text = rendered["debian12-swarm-node.sh"].text
    daemon = json.loads(text.split("<<'JSON'\n", 1)[1].split("\nJSON\n", 1)[0])
    assert daemon["live-restore"] is False
    assert daemon["log-opts"]["max-size"] and daemon["log-opts"]["max-file"]


def test_grub_settings_boot_the_debian_kernel_on_the_serial_console(rendered):
    text = rendered["debian12-swarm-node.sh"].text
    grub = text.split("<<'GRUB'\n", 1)[1].split("\nGRUB\n", 1)[0]
    assert f'GRUB_CMDLINE_LINUX="console={facts.SERIAL_CONSOLE} net.ifnames=0"' in grub
    assert "GRUB_TERMINAL=serial" in grub
    assert "GRUB_TIMEOUT=5" in grub


# --- check and write --------------------------------------------------------------------------


@pytest.fixture
def out_dir(tmp_path, rendered) -> Path:
    render.write(tuple(rendered.values()), tmp_path)
    return tmp_path


def test_write_writes_only_what_differs(rendered, out_dir):
    scripts = tuple(rendered.values())
    assert all(not written for _, written in render.write(scripts, out_dir))
    (out_dir / SCRIPTS[0]).write_text("#!/bin/bash\necho edited by hand\n")
    results = dict(render.write(scripts, out_dir))
    assert results[SCRIPTS[0]] is True and results[SCRIPTS[1]] is False
    assert (out_dir / SCRIPTS[0]).read_text() == rendered[SCRIPTS[0]].text


def test_check_names_stale_missing_and_orphaned_files(rendered, cloud_configs, out_dir):
    configs = tuple(cloud_configs.values())
    render.write(configs, out_dir)
    scripts = (*rendered.values(), *configs)
    (out_dir / SCRIPTS[0]).write_text("#!/bin/bash\necho edited by hand\n")
    (out_dir / SCRIPTS[1]).unlink()
    (out_dir / "old-node.sh").write_text("#!/bin/bash\n")
    edited = out_dir / configs[0].name
    edited.write_text(edited.read_text().replace("disable_root: false", "disable_root: true"))
    (out_dir / "old-node.cloud-config.yaml").write_text("#cloud-config\n")
    drift = render.check(scripts, out_dir)
    assert [(d.name, d.kind) for d in drift] == [
        (SCRIPTS[0], "stale"),
        (SCRIPTS[1], "missing"),
        (configs[0].name, "stale"),
        ("old-node.cloud-config.yaml", "orphan"),
        ("old-node.sh", "orphan"),
    ]
    with pytest.raises(StaleError) as info:
        render.require_fresh(scripts, out_dir)
    assert f"{out_dir / SCRIPTS[0]} differs from what its template renders" in str(info.value)
    assert info.value.exit_code == 3


# --- broken templates -------------------------------------------------------------------------


@pytest.fixture
def templates(tmp_path) -> Path:
    copy = tmp_path / "templates"
    shutil.copytree(TEMPLATES, copy)
    return copy


def test_an_undefined_variable_is_an_error(templates):
    partial = templates / "partials" / "probes.sh.j2"
    partial.write_text(partial.read_text() + "\n# {{ no_such_value }}\n")
    with pytest.raises(TemplateError, match="'no_such_value' is undefined"):
        render.render_all(templates)


def test_a_template_syntax_error_names_file_and_line(templates):
    (templates / "partials" / "ssh.sh.j2").write_text("line one\n{% if %}\n")
    with pytest.raises(TemplateError, match=r"partials/ssh.sh.j2:2: "):
        render.render_all(templates)


def test_a_header_that_drifts_from_the_catalogue_is_refused(templates):
    header = templates / "partials" / "header.sh.j2"
    header.write_text(header.read_text().replace('label="{{ f.label }}"', 'label="x"'))
    with pytest.raises(TemplateError, match="does not match field set 'swarm-node'"):
        render.render_all(templates)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda s: s.replace('fields = "swarm-node"', 'fields = "nope"', 1),
            "scripts.debian12-swarm-node.sh.fields: no field set 'nope'",
        ),
        (
            lambda s: s.replace('images = ["linode/debian12"]', "images = []"),
            "scripts.debian12-swarm-node.sh.images",
        ),
        (
            lambda s: s.replace('template = "swarm-node.sh.j2"', 'template = "gone.j2"', 1),
            "template 'gone.j2' not found",
        ),
        (lambda s: s + "\n[surprise]\n", "surprise: Extra inputs are not permitted"),
        (lambda s: s + "\n[[[\n", "catalog.toml: "),
    ],
)
def test_catalogue_errors_name_the_key(templates, edit, message):
    catalog = templates / "catalog.toml"
    catalog.write_text(edit(catalog.read_text()))
    with pytest.raises(TemplateError, match=re.escape(message)):
        render.render_all(templates)


def test_a_missing_catalogue_says_where_it_looked(tmp_path):
    with pytest.raises(TemplateError, match=r"catalog\.toml not found"):
        render.render_all(tmp_path)
