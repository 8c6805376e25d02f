"""The two kinds of broken value rule the domain raises inside pydantic validation.

They live apart from the models so the value readers (timestamps, money, contacts) can raise them
without importing the models that use those readers.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["FieldProblem", "RuleError"]


class FieldProblem(ValueError):
    """A value rule broken; ``render(field)`` writes the sentence once the field's name is known."""

    def __init__(self, render: Callable[[str], str]) -> None:
        super().__init__(render("value"))
        self.render = render


class RuleError(ValueError):
    """A rule across fields; the message is a whole sentence (or several) and is shown as is."""
