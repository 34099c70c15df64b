"""Render the StackScript templates, and check that the committed scripts are fresh.

`templates/catalog.toml` names each StackScript, the template it is rendered from and the
distribution it is for; the templates share their bash through `templates/partials/`.
Rendering is pure (text in, text out); writing and checking compare whole files.
"""

from __future__ import annotations

import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import jinja2
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from swarmboot import facts
from swarmboot.errors import StaleError, TemplateError, UdfError
from swarmboot.udf import Udf, parse_udfs

__all__ = [
    "CATALOG_FILE",
    "Catalog",
    "Drift",
    "RenderedScript",
    "check",
    "environment",
    "load_catalog",
    "render_all",
    "require_fresh",
    "write",
]

CATALOG_FILE = "catalog.toml"


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
    scripts: dict[str, ScriptEntry] = Field(min_length=1)
    fields: dict[str, tuple[UdfField, ...]] = {}


@dataclass(frozen=True)
class RenderedScript:
    name: str  # file name under stackscripts/
    entry: ScriptEntry
    text: str
    udfs: tuple[Udf, ...]


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
    }


def render_all(templates: Path) -> tuple[RenderedScript, ...]:
    """Render every StackScript of the catalogue in `templates`."""
    catalog = load_catalog(templates)
    env = environment(templates)
    common = _common_context()
    out: list[RenderedScript] = []
    for name, entry in sorted(catalog.scripts.items()):
        fields = catalog.fields[entry.fields]
        try:
            text = env.get_template(entry.template).render(
                script_name=name,
                template=entry.template,
                distro=entry.distro,
                description=entry.description,
                fields=fields,
                **common,
            )
        except jinja2.TemplateNotFound as exc:
            raise TemplateError(
                f"{templates / CATALOG_FILE}: scripts.{name}: template "
                f"{exc.name!r} not found in {templates}"
            ) from exc
        except jinja2.TemplateError as exc:
            where = f"{getattr(exc, 'filename', None) or entry.template}"
            lineno = getattr(exc, "lineno", None)
            raise TemplateError(f"{where}{f':{lineno}' if lineno else ''}: {exc}") from exc
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


def check(scripts: tuple[RenderedScript, ...], out_dir: Path) -> tuple[Drift, ...]:
    """What in `out_dir` differs from `scripts`: stale, missing or orphaned files."""
    drift: list[Drift] = []
    names = {s.name for s in scripts}
    for script in scripts:
        path = out_dir / script.name
        if not path.is_file():
            drift.append(Drift(script.name, "missing"))
        elif path.read_text(encoding="utf-8") != script.text:
            drift.append(Drift(script.name, "stale"))
    if out_dir.is_dir():
        drift.extend(
            Drift(p.name, "orphan") for p in sorted(out_dir.glob("*.sh")) if p.name not in names
        )
    return tuple(drift)


def write(scripts: tuple[RenderedScript, ...], out_dir: Path) -> tuple[tuple[str, bool], ...]:
    """Write each script whose file differs; return (name, written) pairs."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for script in scripts:
        path = out_dir / script.name
        fresh = path.is_file() and path.read_text(encoding="utf-8") == script.text
        if not fresh:
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(script.text, encoding="utf-8")
            tmp.chmod(0o755)
            tmp.replace(path)
        results.append((script.name, not fresh))
    return tuple(results)


def require_fresh(scripts: tuple[RenderedScript, ...], out_dir: Path) -> None:
    drift = check(scripts, out_dir)
    if drift:
        raise StaleError(
            "; ".join(d.describe(out_dir) for d in drift),
            hint="run 'swarmboot render' (or 'make stackscripts') and commit",
        )
