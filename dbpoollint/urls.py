"""Connection URLs: parse, classify against the pooler packs, and mask passwords.

Handles SQLAlchemy-style URLs (`postgresql+asyncpg://user:pass@host:6543/db?x=y`), plain libpq
URLs, libpq keyword DSNs (`host=h port=6432 dbname=d`) and templates with unknown parts
(`{...}` from f-strings, `${VAR}` from dotenv/compose files): an unknown host or port is never
guessed, so a URL whose deciding part is unknown matches no pooler.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

from dbpoollint.packs import PackSet, Pooler

# Parts we cannot know statically: f-string holes, `${VAR}`/`$VAR`, `%(name)s`, `<placeholder>`.
_UNKNOWN = re.compile(r"\{[^{}]*\}|\$\{[^}]*\}|\$[A-Za-z_]\w*|%\([^)]*\)s|<[^<>]*>")
_URL_IN_TEXT = re.compile(r"(?P<url>\b[a-z][a-z0-9+.-]*://[^\s'\"`]+)", re.IGNORECASE)
# SQLAlchemy's own URL pattern: a user name without `:` or `/`, then a password up to the `@`.
# Not `host:5432/db?x=a@b`: a port and a path are no password.
_USERINFO_WITH_SLASH = re.compile(r"(?P<userinfo>[^:/@?\s]*:(?!\d+[/?])[^@\s]*[/#?][^@\s]*)@")
_KEYWORD_DSN = re.compile(r"(?:^|\s)(?P<key>\w+)\s*=\s*(?P<value>'[^']*'|\S+)")


@dataclass(frozen=True)
class ParsedUrl:
    text: str
    scheme: str  # "postgresql" (the part before `+driver`), lower case
    driver: str  # "asyncpg" for `postgresql+asyncpg://`, else ""
    user: str | None
    password: str | None
    host: str | None  # None: absent or unknown
    port: int | None  # None: absent or unknown
    port_unknown: bool
    database: str | None
    params: tuple[tuple[str, str], ...]

    def param(self, name: str) -> str | None:
        return next((v for k, v in self.params if k == name), None)


def has_unknown(text: str) -> bool:
    return _UNKNOWN.search(text) is not None


def parse(text: str) -> ParsedUrl | None:
    """A URL or keyword DSN, or None when `text` is neither."""
    text = text.strip()
    if "://" in text:
        return _parse_url(text)
    return _parse_keyword_dsn(text)


def _parse_url(text: str) -> ParsedUrl | None:
    scheme_part, _, rest = text.partition("://")
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme_part):
        return None
    scheme, _, driver = scheme_part.lower().partition("+")
    if scheme == "mongodb" and driver == "srv":
        scheme, driver = "mongodb+srv", ""
    # Hide template holes from urlsplit, which rejects `{port}` as a port.
    holes: list[str] = []

    def hide(match: re.Match[str]) -> str:
        holes.append(match.group(0))
        return f"\x00{len(holes) - 1}\x00"

    hidden = _UNKNOWN.sub(hide, rest)
    userinfo, at = "", ""
    unescaped = _USERINFO_WITH_SLASH.match(hidden)
    if unescaped is not None and "@" not in hidden.partition("/")[0]:
        # `user:/#Rp8+A9*&F@host`: a password with `/` or `#` left unescaped. SQLAlchemy's
        # parser takes everything up to the `@` as the password, and so do we.
        userinfo, at, hidden = unescaped.group("userinfo"), "@", hidden[unescaped.end() :]
    netloc, _, path_query = hidden.partition("/")
    if "?" in netloc:  # `postgresql://host?x=y`
        netloc, _, query = netloc.partition("?")
        path_query = "?" + query
    if not at:
        userinfo, at, hostport = netloc.rpartition("@")
        if not at:
            userinfo, hostport = "", netloc
    else:
        hostport = netloc
    user, colon, password = userinfo.partition(":")
    host, port, port_unknown = _host_port(hostport)
    database, _, query = path_query.partition("?")

    def show(value: str) -> str:
        return re.sub(r"\x00(\d+)\x00", lambda m: holes[int(m.group(1))], value)

    try:
        params = tuple((show(k), show(v)) for k, v in parse_qsl(query, keep_blank_values=True))
    except ValueError:
        params = ()
    shown_host = show(host) if host else None
    return ParsedUrl(
        text=text,
        scheme=scheme,
        driver=driver,
        user=show(user) if userinfo else None,
        password=show(password) if colon else None,
        host=None if shown_host is None or has_unknown(shown_host) else shown_host.lower(),
        port=port,
        port_unknown=port_unknown or "\x00" in hostport.rpartition(":")[2],
        database=show(database) or None,
        params=params,
    )


def _host_port(hostport: str) -> tuple[str | None, int | None, bool]:
    # Several hosts (`h1:5432,h2:5432`) happen with libpq; the first one decides.
    hostport = hostport.split(",", 1)[0]
    if hostport.startswith("["):  # IPv6
        host, _, rest = hostport[1:].partition("]")
        port_text = rest.removeprefix(":")
    else:
        host, _, port_text = hostport.partition(":")
    if port_text.isdigit():
        return host or None, int(port_text), False
    return host or None, None, bool(port_text)


def _parse_keyword_dsn(text: str) -> ParsedUrl | None:
    pairs = {
        m.group("key").lower(): m.group("value").strip("'") for m in _KEYWORD_DSN.finditer(text)
    }
    if "host" not in pairs and "port" not in pairs and "dbname" not in pairs:
        return None
    port_text = pairs.get("port", "")
    host = pairs.get("host")
    known = {"host", "port", "user", "password", "dbname"}
    return ParsedUrl(
        text=text,
        scheme="postgresql",
        driver="",
        user=pairs.get("user"),
        password=pairs.get("password"),
        host=None if host is None or has_unknown(host) else host.lower(),
        port=int(port_text) if port_text.isdigit() else None,
        port_unknown=bool(port_text) and not port_text.isdigit(),
        database=pairs.get("dbname"),
        params=tuple((k, v) for k, v in pairs.items() if k not in known),
    )


def classify(url: ParsedUrl, packs: PackSet) -> Pooler | None:
    """The first pooler entry the URL matches; None when none does or the deciding part is
    unknown. A port counts only together with the scheme (25061 is also DigitalOcean Redis)."""
    for pooler in packs.poolers:
        if url.scheme not in pooler.schemes or pooler.images:
            continue
        if pooler.hosts and (
            url.host is None or not any(fnmatch.fnmatchcase(url.host, p) for p in pooler.hosts)
        ):
            continue
        if pooler.ports and url.port not in pooler.ports:
            continue
        if pooler.params and not all(_has_param(url, p) for p in pooler.params):
            continue
        return pooler
    return None


def _has_param(url: ParsedUrl, wanted: str) -> bool:
    name, _, value = wanted.partition("=")
    actual = url.param(name)
    return actual is not None and (not value or actual.lower() == value.lower())


def rebuild(url: ParsedUrl, changes: dict[str, str]) -> str:
    """The URL's text with parts replaced, in SQLAlchemy `URL.set()` terms (drivername,
    username, password, host, port, database) plus `query:NAME` parameters."""
    scheme = f"{url.scheme}+{url.driver}" if url.driver else url.scheme
    scheme = changes.get("drivername", scheme)
    user = changes.get("username", url.user or "")
    password = changes.get("password", url.password)
    host = changes.get("host", url.host or "{host}" if url.port_unknown else url.host or "")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    port = changes.get("port", str(url.port) if url.port is not None else "")
    database = changes.get("database", url.database or "")
    params = dict(url.params)
    params.update(
        (k.removeprefix("query:"), v) for k, v in changes.items() if k.startswith("query:")
    )
    userinfo = user + (f":{password}" if password is not None else "")
    text = f"{scheme}://" + (f"{userinfo}@" if userinfo else "") + host
    text += (f":{port}" if port else "") + (f"/{database}" if database else "")
    if params:
        text += "?" + "&".join(f"{k}={v}" for k, v in params.items())
    return text


def mask(text: str) -> str:
    """`postgresql://user:secret@host/db` -> `postgresql://user:***@host/db`; `password=...`
    in keyword DSNs and query strings too. Every message that shows a URL goes through this."""
    # Greedy up to the last `@` before the path: a password may contain `@` itself.
    masked = re.sub(r"(://[^/\s:@]*:)[^\s/]*@", r"\1***@", text)
    # A password with an unescaped `/` or `#` (`user:/#Rp8@host`), as SQLAlchemy reads it.
    masked = re.sub(r"(://[^/\s:@?]*:)(?!\d+[/?])[^@\s]*[/#?][^@\s]*@", r"\1***@", masked)
    return re.sub(r"(?i)\b(password|passwd|pwd)(\s*=\s*)('[^']*'|[^\s&;]+)", r"\1\2***", masked)


def urls_in_text(text: str) -> list[tuple[int, str]]:
    """(offset, url) of every `scheme://...` in a piece of text."""
    return [(m.start(), m.group("url").rstrip(".,;)]")) for m in _URL_IN_TEXT.finditer(text)]


# --- credentials -------------------------------------------------------------------------------

# Passwords that are placeholders or well-known local defaults, not secrets (compared lower-case).
PLACEHOLDER_PASSWORDS = frozenset(
    {
        "",
        "password",
        "pass",
        "passwd",
        "pwd",
        "secret",
        "changeme",
        "change-me",
        "change_me",
        "changethis",
        "example",
        "test",
        "testing",
        "dev",
        "demo",
        "sample",
        "postgres",
        "mysql",
        "root",
        "admin",
        "user",
        "redis",
        "mongo",
        "guest",
        "xxx",
        "xxxx",
        "***",
        "...",
        "your-password",
        "your_password",
        "yourpassword",
        "mypassword",
        "my-password",
        "my_password",
        "db_password",
        "[your-password]",
        "[password]",
        "dummy",
        "fake",
        "placeholder",
        "none",
        "null",
    }
)
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0", "host.docker.internal"})


def real_password(url: ParsedUrl) -> bool:
    """A password that looks like a secret: written out, not a placeholder, not a template hole,
    not the user name repeated, not one character repeated, and not for a loopback host."""
    # `?password=...` is libpq's query-string spelling of the same secret.
    password = url.password if url.password is not None else url.param("password")
    if password is None:
        return False
    lowered = password.lower()
    if lowered in PLACEHOLDER_PASSWORDS or has_unknown(password) or "\x00" in password:
        return False
    if any(word in lowered for word in ("password", "changeme", "redacted", "***", "example")):
        return False
    if "your" in lowered or lowered.startswith(("my_", "<", "[")):
        return False
    if url.user is not None and lowered == url.user.lower():
        return False
    if len(set(password)) <= 1:
        return False
    return url.host not in LOCAL_HOSTS
