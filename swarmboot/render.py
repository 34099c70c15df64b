"""Render the StackScript templates, and check that the committed scripts are fresh.

`templates/catalog.toml` names each StackScript, the template it is rendered from and the
distribution it is for; the templates share their bash through `templates/partials/`. Each
StackScript is also rendered as a cloud-config (`<name>.cloud-config.yaml`, from the
catalogue's `cloud_config` template) that carries the same script as cloud-init user data.
Rendering is pure (text in, text out); writing and checking compare whole files.
"""

from __future__ import annotations

import shlex
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import jinja2
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from swarmboot import facts
from swarmboot.errors import StaleError, TemplateError, UdfError
from swarmboot.udf import Udf, parse_udfs

__all__ = [
    "CATALOG_FILE",
    "CLOUD_CONFIG_SUFFIX",
    "Catalog",
    "Drift",
    "RenderedCloudConfig",
    "RenderedScript",
    "check",
    "cloud_config_name",
    "environment",
    "load_catalog",
    "render_all",
    "render_cloud_configs",
    "require_fresh",
    "write",
]

CATALOG_FILE = "catalog.toml"
# What a StackScript's cloud-config is named after: debian12-swarm-node.sh ->
# debian12-swarm-node.cloud-config.yaml, beside it.
CLOUD_CONFIG_SUFFIX = ".cloud-config.yaml"


def cloud_config_name(script: str) -> str:
    """The file name of the cloud-config rendered from a StackScript's file name."""
    return script.removesuffix(".sh") + CLOUD_CONFIG_SUFFIX


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Distro(_Strict):
    id: Literal["debian"]
    version: str = Field(pattern=r"^\d+$")
    codename: str = Field(pattern=r"^[a-z]+$")
    name: str
    docker_packages: tuple[str, ...] = Field(min_length=1)


class UdfField(_Strict):
    """One user-defined field, as the catalogue declares it."""

    name: str = Field(pattern=r"^[a-z_][a-z0-9_]*$")
    label: str = Field(min_length=1, pattern=r'^[^"<>]*$')
    default: str | None = Field(default=None, pattern=r'^[^"<>]*$')
    example: str | None = Field(default=None, pattern=r'^[^"<>]*$')
    oneof: tuple[str, ...] = ()
    manyof: tuple[str, ...] = ()

    def as_udf(self) -> Udf:
        return Udf(
            name=self.name,
            label=self.label,
            default=self.default,
            example=self.example,
            oneof=self.oneof,
            manyof=self.manyof,
        )


class ScriptEntry(_Strict):
    template: str
    fields: str
    description: str
    images: tuple[str, ...] = Field(min_length=1)
    distro: Distro


class Catalog(_Strict):
    # The template that renders each StackScript as a cloud-config.
    cloud_config: str
    scripts: dict[str, ScriptEntry] = Field(min_length=1)
    fields: dict[str, tuple[UdfField, ...]] = {}


@dataclass(frozen=True)
class RenderedScript:
    name: str  # file name under stackscripts/
    entry: ScriptEntry
    text: str
    udfs: tuple[Udf, ...]


@dataclass(frozen=True)
class RenderedCloudConfig:
    name: str  # file name under stackscripts/: <script>.cloud-config.yaml
    script: str  # the StackScript it carries
    text: str


class Rendered(Protocol):
    """A file `swarmboot render` writes: a StackScript or a cloud-config."""

    @property
    def name(self) -> str: ...

    @property
    def text(self) -> str: ...


@dataclass(frozen=True)
class Drift:
    name: str
    kind: Literal["stale", "missing", "orphan"]

    def describe(self, out_dir: Path) -> str:
        path = out_dir / self.name
        return {
            "stale": f"{path} differs from what its template renders",
            "missing": f"{path} is missing",
            "orphan": f"{path} is not produced by any template in {CATALOG_FILE}",
        }[self.kind]


def load_catalog(templates: Path) -> Catalog:
    path = templates / CATALOG_FILE
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise TemplateError(
            f"{path} not found", hint="point --templates at a folder with a catalog.toml"
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise TemplateError(f"{path}: {exc}") from exc
    try:
        catalog = Catalog.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise TemplateError(f"{path}: {where}: {first['msg']}") from exc
    for name, entry in catalog.scripts.items():
        if "/" in name or not name.endswith(".sh"):
            raise TemplateError(
                f"{path}: scripts.{name}: the name must be a file name ending in .sh"
            )
        if entry.fields not in catalog.fields:
            raise TemplateError(
                f"{path}: scripts.{name}.fields: no field set {entry.fields!r}",
                hint="declare it as [[fields.<name>]]",
            )
    return catalog


def environment(templates: Path) -> jinja2.Environment:
    """The Jinja environment of swarmboot's templates: strict, shell-friendly comments."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        # bash's ${#array[@]} would open a Jinja comment; template comments are {## … ##}.
        comment_start_string="{##",
        comment_end_string="##}",
    )
    env.filters["shquote"] = shlex.quote
    return env


def _common_context() -> dict[str, object]:
    return {
        "swarm_ports": facts.SWARM_PORTS,
        "esp_protocol": facts.ESP_PROTOCOL,
        "serial_console": facts.SERIAL_CONSOLE,
        "grub_kernel": facts.GRUB_KERNEL,
        "docker_key_fingerprint": facts.DOCKER_APT_KEY_FINGERPRINT,
        "status_path": facts.STATUS_PATH,
        "log_path": facts.LOG_PATH,
        "nft_table": facts.NFT_TABLE,
        "nft_members_set": facts.NFT_MEMBERS_SET,
        "members_file": facts.MEMBERS_FILE,
        "metadata_ipv4": facts.METADATA_IPV4,
        "metadata_ipv6": facts.METADATA_IPV6,
    }


def _render(
    env: jinja2.Environment, templates: Path, name: str, template: str, /, **context: object
) -> str:
    try:
        return env.get_template(template).render(**context)
    except jinja2.TemplateNotFound as exc:
        raise TemplateError(
            f"{templates / CATALOG_FILE}: scripts.{name}: template "
            f"{exc.name!r} not found in {templates}"
        ) from exc
    except jinja2.TemplateError as exc:
        where = f"{getattr(exc, 'filename', None) or template}"
        lineno = getattr(exc, "lineno", None)
        raise TemplateError(f"{where}{f':{lineno}' if lineno else ''}: {exc}") from exc


def render_all(templates: Path) -> tuple[RenderedScript, ...]:
    """Render every StackScript of the catalogue in `templates`."""
    catalog = load_catalog(templates)
    env = environment(templates)
    common = _common_context()
    out: list[RenderedScript] = []
    for name, entry in sorted(catalog.scripts.items()):
        fields = catalog.fields[entry.fields]
        text = _render(
            env,
            templates,
            name,
            entry.template,
            script_name=name,
            template=entry.template,
            distro=entry.distro,
            description=entry.description,
            fields=fields,
            **common,
        )
        if not text.startswith("#!/bin/bash\n"):
            raise TemplateError(f"{entry.template}: a StackScript must start with #!/bin/bash")
        try:
            udfs = parse_udfs(text, source=name)
        except UdfError as exc:
            raise TemplateError(f"rendering {name}: {exc}") from exc
        declared = tuple(f.as_udf() for f in fields)
        if tuple(u.to_api() for u in udfs) != tuple(u.to_api() for u in declared):
            raise TemplateError(
                f"rendering {name}: the UDF header does not match field set "
                f"{entry.fields!r} in {CATALOG_FILE}"
            )
        out.append(RenderedScript(name=name, entry=entry, text=text, udfs=udfs))
    return tuple(out)


def render_cloud_configs(
    templates: Path, scripts: tuple[RenderedScript, ...]
) -> tuple[RenderedCloudConfig, ...]:
    """Each StackScript as a cloud-config that writes it and runs it once (cloud-init's
    write_files and runcmd). The script must come out of the YAML byte for byte, and the
    file must end in write_files, where the node's own entries are appended."""
    catalog = load_catalog(templates)
    env = environment(templates)
    out: list[RenderedCloudConfig] = []
    for script in scripts:
        name = cloud_config_name(script.name)
        script_path = f"{facts.CLOUD_INIT_SCRIPT_DIR}/{script.name}"
        text = _render(
            env,
            templates,
            script.name,
            catalog.cloud_config,
            name=name,
            template=catalog.cloud_config,
            script_template=script.entry.template,
            script_name=script.name,
            description=script.entry.description,
            distro=script.entry.distro,
            script=script.text.removesuffix("\n"),
            script_path=script_path,
            node_env_file=facts.NODE_ENV_FILE,
        )
        try:
            data = yaml.load(text, Loader=yaml.CSafeLoader)
        except yaml.YAMLError as exc:
            raise TemplateError(f"rendering {name}: not YAML: {exc}") from exc
        if not text.startswith("#cloud-config\n") or not isinstance(data, dict):
            raise TemplateError(
                f"{catalog.cloud_config}: a cloud-config must open with #cloud-config"
            )
        files = data.get("write_files")
        if list(data)[-1] != "write_files" or not files or files[-1].get("path") != script_path:
            raise TemplateError(
                f"rendering {name}: write_files, ending with {script_path}, must come last"
            )
        if files[-1].get("content") != script.text:
            raise TemplateError(
                f"rendering {name}: the script does not come out of the YAML as "
                f"{script.name} is (check its indentation)"
            )
        out.append(RenderedCloudConfig(name=name, script=script.name, text=text))
    return tuple(out)


def check(outputs: Sequence[Rendered], out_dir: Path) -> tuple[Drift, ...]:
    """What in `out_dir` differs from `outputs`: stale, missing or orphaned files."""
    drift: list[Drift] = []
    names = {o.name for o in outputs}
    for output in outputs:
        path = out_dir / output.name
        if not path.is_file():
            drift.append(Drift(output.name, "missing"))
        elif path.read_text(encoding="utf-8") != output.text:
            drift.append(Drift(output.name, "stale"))
    if out_dir.is_dir():
        found = sorted({*out_dir.glob("*.sh"), *out_dir.glob(f"*{CLOUD_CONFIG_SUFFIX}")})
        drift.extend(Drift(p.name, "orphan") for p in found if p.name not in names)
    return tuple(drift)


def write(outputs: Sequence[Rendered], out_dir: Path) -> tuple[tuple[str, bool], ...]:
    """Write each file whose content differs; return (name, written) pairs."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for output in outputs:
        path = out_dir / output.name
        fresh = path.is_file() and path.read_text(encoding="utf-8") == output.text
        if not fresh:
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(output.text, encoding="utf-8")
            tmp.chmod(0o755 if output.name.endswith(".sh") else 0o644)
            tmp.replace(path)
        results.append((output.name, not fresh))
    return tuple(results)


def require_fresh(outputs: Sequence[Rendered], out_dir: Path) -> None:
    drift = check(outputs, out_dir)
    if drift:
        raise StaleError(
            "; ".join(d.describe(out_dir) for d in drift),
            hint="run 'swarmboot render' (or 'make stackscripts') and commit",
        )
