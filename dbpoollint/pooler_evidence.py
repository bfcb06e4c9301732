"""What a URL really connects to, from the strongest evidence the project holds.

In order, the first that knows decides:

1. a docker-compose service the URL reaches (its service name as the host, or a loopback host
   and a port the service publishes), classified by its image through the pooler pack's
   `images` entries: `postgres:16` is direct, a PgBouncer image is a pooler whose pool mode
   comes from its environment (`POOL_MODE`, `PGBOUNCER_POOL_MODE`) or a mounted `pgbouncer.ini`;
2. a committed `pgbouncer.ini` whose `listen_port` is the URL's port;
3. the URL itself against the pooler pack: a host pattern (`-pooler.` Neon hosts,
   `*.pooler.supabase.com`) or a parameter (`pgbouncer=true`) is strong; a port alone
   (6432, 6543, 25061) is weak evidence, and the verdict says so.

So `localhost:6432` that compose publishes from `postgres:16` is plain PostgreSQL, whatever the
port suggests; the title of a verdict names the evidence, so a message can say why.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from dataclasses import dataclass
from pathlib import PurePath

from dbpoollint.compose import ComposeFile, ComposeService
from dbpoollint.packs import PackSet, Pooler
from dbpoollint.pgbouncer_ini import PgBouncerIni
from dbpoollint.urls import LOCAL_HOSTS, ParsedUrl, classify

DEFAULT_POSTGRES_PORT = 5432


@dataclass(frozen=True)
class Verdict:
    pooler: Pooler | None  # None: not a pooler as far as anything knows
    evidence: str  # "compose", "pgbouncer.ini", "url", "port", or "" when nothing matched


class PoolerEvidence:
    def __init__(
        self, packs: PackSet, compose: list[ComposeFile], inis: list[PgBouncerIni]
    ) -> None:
        self.packs = packs
        self.compose = compose
        self.inis = inis
        self.image_entries = [p for p in packs.poolers if p.images]

    def verdict(self, url: ParsedUrl, source_path: str | None = None) -> Verdict:
        from_url = classify(url, self.packs)
        weak = from_url is not None and not (from_url.hosts or from_url.params)
        if from_url is not None and not weak:
            return Verdict(from_url, "url")  # a known pooler host or parameter
        service = self._compose(url, source_path)
        if service is not None:
            return dataclasses.replace(service, pooler=_contrast(service.pooler, from_url))
        ini = self._ini(url)
        if ini is not None:
            return dataclasses.replace(ini, pooler=_contrast(ini.pooler, from_url))
        if from_url is not None:
            title = f"{from_url.title}; only the port says so"
            return Verdict(dataclasses.replace(from_url, title=title), "port")
        return Verdict(None, "")

    # --- compose --------------------------------------------------------------------------

    def _compose(self, url: ParsedUrl, source_path: str | None) -> Verdict | None:
        if url.host is None or url.scheme not in ("postgres", "postgresql"):
            return None
        port = url.port or DEFAULT_POSTGRES_PORT
        for compose in self.compose:
            if source_path is not None and not _applies(compose.path, source_path):
                continue
            for service in compose.services:
                container_port = _reached(service, url.host, port)
                if container_port is None:
                    continue
                verdict = self._service(compose, service, container_port)
                if verdict is not None:
                    return verdict
        return None

    def _service(
        self, compose: ComposeFile, service: ComposeService, container_port: int
    ) -> Verdict | None:
        image = (service.image or "").lower().split("@", 1)[0]
        if not image or "${" in image:
            return None
        for entry in self.image_entries:
            if not any(fnmatch.fnmatchcase(image, p) for p in entry.images):
                continue
            if entry.ports and container_port not in entry.ports:
                continue
            if entry.mode == "direct":
                return Verdict(None, "compose")
            file = PurePath(compose.path).name
            mode, prepared, told, remark = entry.mode, entry.prepared_statements, "", ""
            mounted = self._mounted_ini(compose, service)
            if mounted is not None:
                mode, prepared = mounted.pool_mode, mounted.prepared_statements
                told = f"`pool_mode = {mode}` in {mounted.where(mounted.pool_mode_line)}"
            else:
                for key in entry.mode_env:
                    found = service.env(key)
                    if found is not None and found.value and "${" not in found.value:
                        mode = found.value.strip().lower()
                        told = f"`{key}={found.value}` at {file}:{found.line}"
                from_env = _prepared_from_env(entry, service)
                from_tag = _prepared_from_tag(entry, image) if from_env is None else None
                if from_env is not None:
                    prepared = from_env
                elif from_tag is not None:
                    prepared, remark = from_tag
            parts = [f"compose service `{service.name}`", f"`{service.image}`"]
            parts.append(told or f"{file}:{service.image_line or service.line}")
            if remark:
                parts.append(remark)
            title = f"{entry.title} in {mode} mode ({', '.join(parts)})"
            pooler = dataclasses.replace(
                entry, title=title, mode=mode, prepared_statements=prepared
            )
            return Verdict(pooler, "compose")
        return None

    def _mounted_ini(self, compose: ComposeFile, service: ComposeService) -> PgBouncerIni | None:
        folder = PurePath(compose.path).parent
        for mount in service.mounts:
            source = PurePath(_normalise(str(folder / mount.source)))
            for ini in self.inis:
                path = PurePath(_normalise(ini.path))
                if path == source or path.parent == source:
                    return ini
        return None

    # --- pgbouncer.ini --------------------------------------------------------------------

    def _ini(self, url: ParsedUrl) -> Verdict | None:
        if url.port is None or url.scheme not in ("postgres", "postgresql"):
            return None
        base = next((p for p in self.packs.poolers if p.name == "pgbouncer-image"), None)
        for ini in self.inis:
            if ini.listen_port != url.port or base is None:
                continue
            where = ini.where(ini.pool_mode_line)
            title = f"PgBouncer in {ini.pool_mode} mode (`{where}`, `listen_port` {url.port})"
            if ini.max_prepared_statements is not None:
                title += f", `max_prepared_statements = {ini.max_prepared_statements}`"
            pooler = dataclasses.replace(
                base, title=title, mode=ini.pool_mode, prepared_statements=ini.prepared_statements
            )
            return Verdict(pooler, "pgbouncer.ini")
        return None


def _contrast(found: Pooler | None, from_port: Pooler | None) -> Pooler | None:
    """Say so when the project's files overrule what the port alone suggests."""
    if found is None or from_port is None:
        return found
    if found.name.split("-")[0] == from_port.name.split("-")[0]:
        return found  # the same pooler family: nothing to contrast
    return dataclasses.replace(found, title=f"{found.title}, not {from_port.title}")


def _prepared_from_env(entry: Pooler, service: ComposeService) -> str | None:
    for key in entry.prepared_statements_env:
        found = service.env(key)
        if found is not None and found.value and found.value.strip().isdigit():
            return "yes" if int(found.value) > 0 else "no"
    return None


_VERSION_TAG = re.compile(r":v?(\d+)\.(\d+)")


def _prepared_from_tag(entry: Pooler, image: str) -> tuple[str, str] | None:
    """A PgBouncer image tag names its version: `max_prepared_statements` does not exist before
    1.21 and defaults to 0 until 1.24, then to 200 (reference/pool-defaults.md, section 10)."""
    match = _VERSION_TAG.search(image)
    if entry.prepared_statements != "depends" or not entry.prepared_statements_env:
        return None
    if match is None:
        return None
    version = (int(match.group(1)), int(match.group(2)))
    shown = f"{version[0]}.{version[1]}"
    if version < (1, 21):
        return "no", f"PgBouncer {shown} has no `max_prepared_statements`"
    if version < (1, 24):
        return "no", f"PgBouncer {shown} defaults `max_prepared_statements` to 0"
    return "yes", f"PgBouncer {shown} defaults `max_prepared_statements` to 200"


def _reached(service: ComposeService, host: str, port: int) -> int | None:
    """The container port a URL's host:port reaches in this service, or None."""
    if host == service.name.lower():
        return port
    if host in LOCAL_HOSTS:
        for mapping in service.ports:
            if mapping.published == port:
                return mapping.target
    return None


def _applies(compose_path: str, source_path: str) -> bool:
    """A compose file speaks for the code in its folder and below (in a monorepo, another
    service's compose file says nothing about this one)."""
    folder = PurePath(compose_path).parent
    source = PurePath(source_path)
    return folder in source.parents or folder == source.parent or str(folder) in ("", ".")


def _normalise(path: str) -> str:
    parts: list[str] = []
    for part in PurePath(path).parts:
        if part == "..":
            if parts:
                parts.pop()
        elif part != ".":
            parts.append(part)
    return str(PurePath(*parts)) if parts else "."
