"""Compose's variable substitution in one string, done where swarmboot runs, not on a manager.

`substitute` applies the Compose specification's rules to a string value: `$VAR`, `${VAR}`,
`${VAR:-default}` and `${VAR-default}` (used when VAR is unset or empty, or only unset),
`${VAR:?message}` and `${VAR?message}` (an error when VAR is unset or empty, or only unset),
`${VAR:+alt}` and `${VAR+alt}` (alt when VAR is set and non-empty, or only set, else ""), and
`$$` for a literal `$`. A default or an alternative may itself hold variables
(`${A:-${B}}`); it is substituted only when it is used. Names are ASCII letters, digits and
`_`, not starting with a digit.

Stricter than Compose where Compose would deploy something the user did not mean: an unset
variable without a default is an error (Compose warns and uses ""), and so is a `$` that
starts no variable (`cost: 5$`; `docker stack deploy` refuses it too). `escape` is the
inverse for the text handed to a manager: every `$` doubled, so that Docker there
substitutes nothing from an environment that is not the user's.

Pure: a lookup function answers for the variables (None: unset).
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["Lookup", "TemplateProblem", "escape", "substitute"]

Lookup = Callable[[str], str | None]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Longest first: ":-" must not be read as ":" then "-".
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")
FORMS = "${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME:+alt}"


class TemplateProblem(ValueError):
    """A string that cannot be substituted: `problem` says why, `hint` what to write."""

    def __init__(self, problem: str, hint: str, *, variable: str | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.hint = hint
        self.variable = variable


def escape(text: str) -> str:
    """`text` written so that Compose's substitution gives it back unchanged."""
    return text.replace("$", "$$")


def substitute(text: str, lookup: Lookup) -> str:
    """`text` with its variables replaced (see the module's text); TemplateProblem if one
    cannot be."""
    if "$" not in text:
        return text
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        j = text.find("$", i)
        if j < 0:
            out.append(text[i:])
            break
        out.append(text[i:j])
        after = text[j + 1 : j + 2]
        if after == "$":
            out.append("$")
            i = j + 2
        elif after == "{":
            value, i = _braced(text, j + 2, lookup)
            out.append(value)
        else:
            m = _NAME.match(text, j + 1)
            if m is None:
                raise TemplateProblem(
                    f"a $ that starts no variable in {text!r}", "write $$ for a literal $"
                )
            out.append(_required(m.group(), lookup))
            i = m.end()
    return "".join(out)


def _malformed(text: str) -> TemplateProblem:
    return TemplateProblem(
        f"malformed ${{...}} in {text!r}", f"write {FORMS}; and $$ for a literal $"
    )


def _required(name: str, lookup: Lookup) -> str:
    value = lookup(name)
    if value is None:
        raise TemplateProblem(
            f"the variable {name} is not set",
            f"set {name} in the environment, or give a default: ${{{name}:-value}}",
            variable=name,
        )
    return value


def _closing(text: str, start: int) -> int:
    """The index of the `}` that closes a `${` whose word starts at `start`."""
    depth, i, n = 0, start, len(text)
    while i < n:
        c = text[i]
        if c == "$" and text[i + 1 : i + 2] == "$":
            i += 2
        elif c == "$" and text[i + 1 : i + 2] == "{":
            depth += 1
            i += 2
        elif c == "}":
            if depth == 0:
                return i
            depth -= 1
            i += 1
        else:
            i += 1
    raise _malformed(text)


def _braced(text: str, start: int, lookup: Lookup) -> tuple[str, int]:
    """The value of the `${...}` whose name starts at `start`, and the index after it."""
    m = _NAME.match(text, start)
    if m is None:
        raise _malformed(text)
    name, k = m.group(), m.end()
    if text.startswith("}", k):
        return _required(name, lookup), k + 1
    op = next((o for o in _OPERATORS if text.startswith(o, k)), None)
    if op is None:
        raise _malformed(text)
    end = _closing(text, k + len(op))
    word = text[k + len(op) : end]
    value = lookup(name)
    present = bool(value) if op.startswith(":") else value is not None
    if op.endswith("-"):
        result = value if present and value is not None else substitute(word, lookup)
    elif op.endswith("+"):
        result = substitute(word, lookup) if present else ""
    elif present and value is not None:
        result = value
    else:
        state = "is empty" if value == "" else "is not set"
        raise TemplateProblem(
            f"the variable {name} {state}" + (f": {word}" if word else ""),
            f"set {name} in the environment",
            variable=name,
        )
    return result, end + 1
