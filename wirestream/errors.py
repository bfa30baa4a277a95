"""The one exception the CLI turns into a clean message and a non-zero exit code."""


class UserError(Exception):
    """Something the user can fix: the message says what was wrong and what to do."""


def yaml_problem(exc: Exception) -> str:
    """A YAML parser's error on one line: what is wrong and where (PyYAML's own spans several)."""
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None)
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if problem and mark is not None:
        return f"not valid YAML: {problem} (line {mark.line + 1}, column {mark.column + 1})"
    return "not valid YAML: " + " ".join(str(exc).split())
