from __future__ import annotations

from pathlib import Path

import pytest

from swarmboot.errors import UdfError
from swarmboot.udf import (
    MAX_DATA_CHARS,
    Udf,
    check_data,
    parse_udfs,
    read_script,
    validate_data,
)

HEADER = """#!/bin/bash
# <UDF name="hostname" label="Hostname" example="node-1" />
# <UDF name="role" Label="Role" oneOf="manager,worker,lb" default="worker" />
#<UDF name="features" label="Features" manyof="a,b,c" default="a,c"/>
# <UDF name="db_password" label="Database password" />
echo "<UDF> in a string is not a tag" # not on a comment line? it is code
"""


def test_parses_fields_in_order_with_linodes_attribute_spelling():
    udfs = parse_udfs(HEADER.rsplit("echo", 1)[0])
    assert [u.name for u in udfs] == ["hostname", "role", "features", "db_password"]
    hostname, role, features, password = udfs
    assert hostname == Udf(name="hostname", label="Hostname", example="node-1", line=2)
    assert hostname.required and not hostname.masked
    assert role.oneof == ("manager", "worker", "lb") and role.default == "worker"
    assert not role.required
    assert features.manyof == ("a", "b", "c") and features.default == "a,c"
    assert password.masked and password.required
    # The API lists oneof/manyof in lowercase, as the real API returns them.
    assert role.to_api() == {
        "name": "role",
        "label": "Role",
        "example": "",
        "default": "worker",
        "oneof": "manager,worker,lb",
    }


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('echo <UDF name="x" label="X" />', "UDF tag outside a comment line"),
        ('# <UDF name="x" label="X"', "not closed with '/>'"),
        ('# <UDF label="X" />', "UDF tag has no name"),
        ('# <UDF name="1x" label="X" />', "is not a valid variable name"),
        ('# <UDF name="PATH" label="X" />', "would overwrite the script's environment"),
        ('# <UDF name="x" />', "UDF 'x' has no label"),
        ('# <UDF name="x" label="X" defualt="1" />', "unknown UDF attribute 'defualt'"),
        ('# <UDF name="x" label="X" label="Y" />', "attribute 'label' given twice"),
        ("# <UDF name='x' label='X' />", "cannot read UDF attribute"),
        ('# <UDF name="x" label="X" oneof="a,b" manyof="a" />', "has both oneof and manyof"),
        ('# <UDF name="x" label="X" oneof="a,,b" />', "empty choice"),
        ('# <UDF name="x" label="X" oneof="a,a" />', "repeats a choice"),
        ('# <UDF name="x" label="X" oneof="a,b" default="c" />', "'c' is not one of a, b"),
        ('# <UDF name="x" label="X" manyof="a,b" default="a,z" />', "z not among a, b"),
    ],
)
def test_a_broken_header_names_its_line(line, message):
    script = f'#!/bin/bash\n# <UDF name="ok" label="Fine" />\n{line}\n'
    with pytest.raises(UdfError) as info:
        parse_udfs(script, source="x.sh")
    assert info.value.line == 3
    assert str(info.value).startswith("x.sh:3: ")
    assert message in str(info.value)


def test_a_field_declared_twice_is_refused():
    script = '# <UDF name="a" label="A" />\n# <UDF name="a" label="A again" />\n'
    with pytest.raises(UdfError, match=r"declared twice \(first on line 1\)"):
        parse_udfs(script)


def test_a_script_without_fields_has_none():
    assert parse_udfs("#!/bin/bash\necho hello\n") == ()


def test_check_data_gathers_every_problem():
    udfs = parse_udfs(HEADER.rsplit("echo", 1)[0])
    problems = check_data(
        udfs, {"role": "boss", "features": "a,z", "colour": "blue", "db_password": 5}
    )
    assert problems == (
        "stackscript_data.role: 'boss' is not one of manager, worker, lb",
        "stackscript_data.features: z not among a, b, c",
        "stackscript_data.colour: the StackScript declares no such field",
        "stackscript_data.db_password: must be a string, got int",
        "stackscript_data.hostname: required (Hostname)",
    )


def test_check_data_enforces_linodes_size_limit():
    udfs = parse_udfs('# <UDF name="blob" label="Blob" />\n')
    assert check_data(udfs, {"blob": "x" * 100}) == ()
    (problem,) = check_data(udfs, {"blob": "x" * MAX_DATA_CHARS})
    assert problem.startswith("stackscript_data: 65546 characters, Linode takes at most 65535")


def test_validate_data_returns_strings_or_raises_with_all_problems():
    udfs = parse_udfs(HEADER.rsplit("echo", 1)[0])
    good = {"hostname": "n1", "db_password": "s3cret", "role": "lb"}
    assert validate_data(udfs, good) == good
    with pytest.raises(UdfError) as info:
        validate_data(udfs, {"role": "lb"})
    assert "stackscript_data.hostname: required" in str(info.value)
    assert "stackscript_data.db_password: required" in str(info.value)


def test_rendered_scripts_declare_the_node_fields(rendered):
    for script in rendered.values():
        by_name = {u.name: u for u in script.udfs}
        assert set(by_name) >= {
            "hostname",
            "swarm_role",
            "zone",
            "admin_ssh_keys",
            "docker_source",
            "ssh_host_key",
            "swarm_members",
        }
        assert by_name["swarm_role"].oneof == ("manager", "worker", "lb")
        assert by_name["docker_source"].oneof == ("docker", "debian")
        assert [u.name for u in script.udfs if u.required] == ["hostname", "zone"]


def test_a_script_file_that_is_not_utf8_is_named(tmp_path):
    script = tmp_path / "binary.sh"
    script.write_bytes(b'\xff\xfe#!/bin/bash\n# <UDF name="x" label="x" />\n')
    with pytest.raises(UdfError) as info:
        read_script(script)
    assert str(info.value) == (
        f"{script}: not UTF-8 text (byte 0); Linode takes a StackScript as UTF-8 text"
    )


def test_a_script_file_is_read_capped():
    with pytest.raises(UdfError, match="larger than 1 MiB, which no StackScript is"):
        read_script(Path("/dev/zero"))
