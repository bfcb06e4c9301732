from __future__ import annotations

from collections.abc import Iterator

from dbpoollint.analysis.model import Span
from dbpoollint.checks.base import Finding, Project, Rule
from dbpoollint.compose import ComposeFile
from dbpoollint.project_files import read_project
from dbpoollint.urls import mask, parse, real_password, urls_in_text


class CredentialsInUrl(Rule):
    """
    ## What it does
    Finds a password written into a connection URL in source or a committed config file.

    Where: a string literal (or the literal parts of an f-string) in Python source, or a value
    in a committed config file (`.env*` and other env files, `alembic.ini`, docker-compose /
    serverless `environment:` blocks). The password may be the URL's own
    (`user:secret@host`, also with an IPv6 host `[2001:db8::1]`) or a `?password=` query
    parameter, or `password=` in a libpq keyword DSN. Only URLs with a known
    database or broker scheme (`postgresql`, `mysql`, `redis`, `mongodb`, `amqp`, ... from the
    pooler pack's `url-schemes`) count.

    What is *not* a finding, and how that is decided:
    - a placeholder: an unknown part (`{password}`, `${DB_PASSWORD}`, `$PW`, `%(pw)s`,
      `<password>`), or a well-known placeholder or local default (`password`, `changeme`,
      `secret`, `demo`, `postgres`, `example`, `your_password`, `***`, any value containing
      `password` or `changeme`, one character repeated, the user name repeated);
    - a URL to a loopback host (`localhost`, `127.0.0.1`, `::1`): a local development default;
    - in a docker-compose file, a URL to a database service the same file defines, with the
      password the file gives that container (`MONGO_INITDB_ROOT_PASSWORD: s3cret` and
      `mongodb://root:s3cret@mongodb/`): a local stack whose password is written where its
      container is defined; the URL adds nothing to report;
    - docstrings, tests and conftest; files ignored by `.gitignore` (not committed) are not
      read at all when `respect-gitignore` is on (the default).
    Templates such as `.env.example` follow the same decision: their placeholders pass, a
    real-looking password in them is reported, since the file is committed.

    ## Why is this bad?
    A password in a committed file is in every clone, fork, CI log and backup, and outlives its
    rotation in the git history. Connection URLs are copied around more than most secrets.

    ## Example
    ```python
    engine = create_engine("postgresql://app:Xk82-vqPz@db.example.com:5432/app")
    ```

    ## Use instead
    ```python
    engine = create_engine(os.environ["DATABASE_URL"])
    ```

    ## Fix safety
    No fix: where the secret should come from is the project's decision. Messages show URLs with
    the password masked (`postgresql://app:***@db.example.com:5432/app`).

    ## Options
    - `per-file-ignores` for fixtures that hold fake credentials.

    ## References
    - [OWASP: secrets management cheat sheet](https://cheatsheetseries.owasp.org/cheatsheets/Secrets_Management_Cheat_Sheet.html)
    - [The Twelve-Factor App: config](https://12factor.net/config)
    """

    code = "DPL601"
    name = "credentials-in-url"
    severity = "error"
    severity_reason = "A password in the repository is a leaked password."

    def check(self, project: Project) -> Iterator[Finding]:
        schemes = project.packs.url_schemes if project.packs is not None else frozenset()
        for summary in project.reported_summaries():
            if summary.is_test:
                continue
            for literal in summary.urls.literals:
                for _, text in urls_in_text(literal.text):
                    finding = self._finding(summary.path, literal.span, text, schemes)
                    if finding is not None:
                        yield finding
                        break
        config = read_project(project.files)
        own = {compose.path: _own_passwords(compose) for compose in config.compose}
        values = [*config.env, *(i.url for i in config.alembic if i.url is not None)]
        for value in values:
            for offset, text in urls_in_text(value.raw or value.value):
                column = value.column + offset
                span = Span(value.line, column, value.line, column + len(text))
                if _to_own_container(text, own.get(value.path, {})):
                    continue
                finding = self._finding(value.path, span, text, schemes)
                if finding is not None:
                    yield finding
                    break

    def _finding(self, path: str, span: Span, text: str, schemes: frozenset[str]) -> Finding | None:
        url = parse(text)
        if url is None or not real_password(url):
            return None
        full_scheme = f"{url.scheme}+{url.driver}" if url.driver else url.scheme
        if url.scheme not in schemes and full_scheme not in schemes:
            return None
        message = (
            f"password written into the connection URL `{mask(text)}`: read the URL (or the "
            f"password) from the environment or a secret store, and rotate this one"
        )
        return Finding(path, span, self.code, message)


def _own_passwords(compose: ComposeFile) -> dict[str, frozenset[str]]:
    """Service name -> the passwords its own environment sets (`POSTGRES_PASSWORD: ...`)."""
    return {
        service.name: frozenset(
            entry.value
            for entry in service.environment
            if entry.value and "PASS" in entry.key.upper()
        )
        for service in compose.services
    }


def _to_own_container(text: str, own: dict[str, frozenset[str]]) -> bool:
    """A URL to a database service the same compose file defines, with the password that file
    gives that container: a throwaway local stack, whose password is written where the
    container is defined anyway; the URL leaks nothing more."""
    url = parse(text)
    if url is None or url.host not in own:
        return False
    password = url.password if url.password is not None else url.param("password")
    return password is not None and password in own[url.host]
