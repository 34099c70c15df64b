"""swarmboot's own exceptions: third-party errors are translated into these at the adapters."""

from __future__ import annotations

__all__ = [
    "ExitCode",
    "StaleError",
    "SwarmbootError",
    "TemplateError",
    "UdfError",
]


class ExitCode:
    """Exit codes that scripts can rely on (documented in the README)."""

    OK = 0
    ERROR = 1  # a command failed; the message says why and what to do
    USAGE = 2  # bad command line (Typer's own usage errors use it too)
    STALE = 3  # `render --check`: the committed StackScripts differ from the templates
    BAD_SPEC = 4  # the cluster spec is invalid; nothing was created
    NO_TOKEN = 5  # no Linode API token was found, or the API refused it
    NOT_READY = 6  # a node did not become ready (stuck, failed probe, host key mismatch)
    UNSAFE = 7  # refused: removing a manager would lose the swarm's raft quorum (see --force)
    DEPLOY_FAILED = 8  # `deploy`: a rollout failed (the services it updated were rolled back)


class SwarmbootError(Exception):
    """An error the user can act on: `message` says what happened, `hint` what to do."""

    exit_code = ExitCode.ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}; {self.hint}"


class TemplateError(SwarmbootError):
    """A template or the template catalogue is broken."""


class UdfError(SwarmbootError):
    """A StackScript's UDF header, or data meant for it, is invalid."""

    def __init__(
        self, message: str, *, source: str = "", line: int | None = None, hint: str | None = None
    ) -> None:
        where = source + (f":{line}" if line is not None else "")
        super().__init__(f"{where}: {message}" if where else message, hint=hint)
        self.source = source
        self.line = line


class StaleError(SwarmbootError):
    """Rendered StackScripts differ from what the templates produce."""

    exit_code = ExitCode.STALE
