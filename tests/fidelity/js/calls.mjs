// Linode's own JavaScript client (@linode/api-v4, the one Cloud Manager is built on) against
// the simulator, through its exported functions, unchanged: the project's calls, since the
// package ships no suite of its own. Each check prints one JSON line,
// {"name", "ok", "error"}; run by tests/fidelity/run.py with SIM_URL (…/v4),
// LINODE_TOKEN and API_V4 (the package's folder, as npm installed it) in the environment.
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const api = await import(pathToFileURL(join(process.env.API_V4, "lib", "index.js")).href);

const sim = process.env.SIM_URL.replace(/\/v4$/, "");
api.setToken(process.env.LINODE_TOKEN);
api.baseRequest.interceptors.request.use((config) => ({
  ...config,
  baseURL: undefined,
  url: config.url.replace("https://api.linode.com", sim),
}));

const REGION = "eu-central";
const suffix = Date.now().toString(36);

function check(condition, what) {
  if (!condition) throw new Error(what);
}

function reason(error) {
  if (Array.isArray(error)) return error.map((e) => `${e.field ?? ""} ${e.reason}`).join("; ");
  if (error?.response) {
    const { method, url } = error.config ?? {};
    const where = `${(method ?? "").toUpperCase()} ${(url ?? "").replace(sim, "")}`;
    return `${where}: ${error.response.status} ${JSON.stringify(error.response.data)}`;
  }
  return String(error?.message ?? error);
}

async function until(probe, seconds) {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const got = await probe();
    if (got) return got;
    if (Date.now() > deadline) throw new Error(`not within ${seconds} s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const checks = {
  async catalogue() {
    const regions = await api.getRegions();
    const region = regions.data.find((r) => r.id === REGION);
    check(region && region.capabilities.includes("Cloud Firewall"), "eu-central with firewalls");
    const types = await api.getLinodeTypes();
    check(types.data.some((t) => t.id === "g6-nanode-1"), "g6-nanode-1 listed");
    const images = await api.getImages({}, { is_public: true });
    check(images.data.some((i) => i.id === "linode/debian12"), "linode/debian12 listed");
  },

  async stackscripts() {
    const made = await api.createStackScript({
      label: `js-${suffix}`,
      images: ["linode/debian12"],
      script: '#!/bin/bash\n# <UDF name="role" label="Role" oneof="manager,worker" />\necho ok\n',
    });
    check(made.user_defined_fields[0].name === "role", "UDF parsed");
    const changed = await api.updateStackScript(made.id, { description: "from js" });
    check(changed.description === "from js", "description updated");
    check((await api.getStackScript(made.id)).id === made.id, "read back");
    await api.deleteStackScript(made.id);
  },

  async linodes() {
    const made = await api.createLinode({
      label: `js-${suffix}`,
      region: REGION,
      type: "g6-nanode-1",
      image: "linode/debian12",
      root_pass: "correct-Horse-battery-42",
      booted: false,
      tags: ["js-client"],
    });
    await until(async () => (await api.getLinode(made.id)).status === "offline", 30);
    const renamed = await api.updateLinode(made.id, { label: `js-${suffix}-b` });
    check(renamed.label === `js-${suffix}-b`, "label updated");
    const configs = await api.getLinodeConfigs(made.id);
    check(configs.data[0].kernel === "linode/grub2", "config profile on linode/grub2");
    const disks = await api.getLinodeDisks(made.id);
    check(disks.data.length === 2, "root and swap disks");
    const ips = await api.getLinodeIPs(made.id);
    check(ips.ipv4.public.length === 1, "one public IPv4");
    await api.linodeBoot(made.id);
    await until(async () => (await api.getLinode(made.id)).status === "running", 30);
    const tagged = await api.getLinodes({}, { tags: "js-client" });
    check(tagged.data.some((l) => l.id === made.id), "listed by tag");
    await api.deleteLinode(made.id);
  },

  async firewalls() {
    const made = await api.createFirewall({
      label: `js-fw-${suffix}`,
      rules: {
        inbound_policy: "DROP",
        outbound_policy: "ACCEPT",
        inbound: [
          {
            action: "ACCEPT",
            protocol: "TCP",
            ports: "2377",
            addresses: { ipv4: ["198.51.100.10/32"] },
            label: "swarm-manager",
          },
        ],
      },
    });
    const found = await api.getFirewalls({}, { label: made.label });
    check(found.data.length === 1 && found.data[0].id === made.id, "found by label");
    await api.updateFirewallRules(made.id, {
      inbound_policy: "DROP",
      outbound_policy: "ACCEPT",
      inbound: [
        { action: "ACCEPT", protocol: "50", addresses: { ipv4: ["198.51.100.10/32"] } },
      ],
      outbound: [],
    });
    const rules = await api.getFirewallRules(made.id);
    check(rules.inbound[0].protocol === "50", "ESP rule kept");
    await api.deleteFirewall(made.id);
  },

  async tags() {
    const label = `js-tag-${suffix}`;
    await api.createTag({ label });
    const found = await api.getTags({}, { label });
    check(found.data.length === 1 && found.data[0].label === label, "tag filtered by label");
    await api.deleteTag(label);
    check((await api.getTags({}, { label })).data.length === 0, "tag deleted");
  },

  async events() {
    await api.createTag({ label: `js-ev-${suffix}` }); // something to have happened
    const linode = await api.createLinode({
      label: `js-ev-${suffix}`,
      region: REGION,
      type: "g6-nanode-1",
      booted: false,
    });
    const events = await until(async () => {
      const page = await api.getEvents({}, { "entity.id": linode.id, "entity.type": "linode" });
      return page.data.length ? page : null;
    }, 30);
    const event = events.data[0];
    await api.markEventSeen(event.id);
    const after = await api.getEvents({}, { id: event.id });
    check(after.data[0].seen === true, "event marked seen");
    await api.deleteLinode(linode.id);
  },

  async vpcs() {
    const vpc = await api.createVPC({
      label: `js-vpc-${suffix}`,
      region: REGION,
      subnets: [{ label: "nodes", ipv4: "10.0.0.0/24" }],
    });
    check(vpc.subnets[0].ipv4 === "10.0.0.0/24", "subnet made with the VPC");
    const more = await api.createSubnet(vpc.id, { label: "more", ipv4: "10.0.1.0/24" });
    const subnets = await api.getSubnets(vpc.id);
    check(subnets.data.length === 2, "two subnets");
    await api.deleteSubnet(vpc.id, more.id);
    check((await api.getVPCs({}, { label: vpc.label })).data.length === 1, "found by label");
    await api.deleteVPC(vpc.id);
  },

  async placementGroups() {
    const group = await api.createPlacementGroup({
      label: `js-pg-${suffix}`,
      region: REGION,
      placement_group_type: "anti_affinity:local",
      placement_group_policy: "strict",
    });
    const linode = await api.createLinode({
      label: `js-pg-${suffix}`,
      region: REGION,
      type: "g6-nanode-1",
      booted: false,
    });
    await api.assignLinodesToPlacementGroup(group.id, { linodes: [linode.id] });
    const read = await api.getPlacementGroup(group.id);
    check(read.members.length === 1 && read.is_compliant, "one compliant member");
    await api.unassignLinodesFromPlacementGroup(group.id, { linodes: [linode.id] });
    await api.deletePlacementGroup(group.id);
    await api.deleteLinode(linode.id);
  },

  async accountAndProfile() {
    const settings = await api.getAccountSettings();
    check(typeof settings.interfaces_for_new_linodes === "string", "interface setting shown");
    const key = await api.createSSHKey({
      label: `js-${suffix}`,
      ssh_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAlh6vJ9kqfKPz3UYJc3Pj3vTkCrHEfLNYbeZeTK0Z0x js",
    });
    check((await api.getSSHKeys()).data.some((k) => k.id === key.id), "key listed");
    await api.deleteSSHKey(key.id);
  },
};

for (const [name, run] of Object.entries(checks)) {
  try {
    await run();
    console.log(JSON.stringify({ name, ok: true }));
  } catch (error) {
    console.log(JSON.stringify({ name, ok: false, error: reason(error).slice(0, 300) }));
  }
}
