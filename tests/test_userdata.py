"""A node's cloud-init user data: the committed cloud-config with the node's own part added."""

from __future__ import annotations

import base64
import subprocess

import yaml

from swarmboot import facts
from swarmboot.keys import new_host_key
from swarmboot.userdata import encode, node_user_data

# Values a StackScript field can hold that shell quoting must carry exactly.
FIELDS = {
    "hostname": "itframe-eu-central-worker-1",
    "swarm_role": "worker",
    "admin_ssh_keys": 'ssh-ed25519 AAAA one@x\nssh-rsa BBBB o\'brien "$HOME" `id` ; rm -rf /',
    "admin_user": "",
}


def test_the_node_part_is_appended_and_reads_back_as_cloud_init_reads_it(cloud_configs):
    config = cloud_configs["debian12-swarm-node.sh"]
    key = new_host_key()
    text = node_user_data(config.text, FIELDS, key)
    assert text.startswith(config.text)  # what was committed, then the node's part
    data = yaml.safe_load(text)
    script, env = data["write_files"]
    assert script == yaml.safe_load(config.text)["write_files"][0]
    assert (env["path"], env["permissions"], env["encoding"]) == (
        facts.NODE_ENV_FILE,
        "0600",
        "b64",
    )
    assert data["ssh_keys"] == {
        "ed25519_private": key.private_openssh.decode(),
        "ed25519_public": key.public_line,
    }
    # The fields come back exactly as the script's environment, through bash's own reading.
    shell = base64.b64decode(env["content"]).decode()
    names = " ".join(FIELDS)
    printed = subprocess.run(
        [
            "bash",
            "-c",
            f'set -a; . /dev/stdin; set +a; for n in {names}; do printf "%s\\0" "${{!n}}"; done',
        ],
        input=shell,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert printed.split("\0")[:-1] == list(FIELDS.values())
    assert base64.b64decode(encode(text)).decode() == text
