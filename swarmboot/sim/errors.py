"""Linode's error responses: `{"errors": [{"reason": …, "field": …}]}` with an HTTP status."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ApiError", "Problem", "bad_request", "not_found"]


@dataclass(frozen=True)
class Problem:
    reason: str
    field: str | None = None

    def to_api(self) -> dict[str, str]:
        out = {"reason": self.reason}
        if self.field is not None:
            out["field"] = self.field
        return out


@dataclass
class ApiError(Exception):
    """An error the simulator answers with, as the real API would."""

    status: int
    problems: tuple[Problem, ...]
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, list[dict[str, str]]]:
        return {"errors": [p.to_api() for p in self.problems]}

    def __str__(self) -> str:
        return f"{self.status}: " + "; ".join(
            f"{p.field}: {p.reason}" if p.field else p.reason for p in self.problems
        )


def bad_request(reason: str, field_name: str | None = None) -> ApiError:
    return ApiError(400, (Problem(reason, field_name),))


def not_found() -> ApiError:
    return ApiError(404, (Problem("Not found"),))
