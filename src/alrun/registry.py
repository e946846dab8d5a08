"""Config selects code by name: YAML `name:` -> registered factory of the same name."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

from alrun.errors import AlrunError

T = TypeVar("T", bound=Callable)


class Registry(Generic[T]):
    """Name -> factory; duplicates and unknown names fail loudly, listing what exists."""

    def __init__(self, kind: str, config_group: str) -> None:
        self.kind = kind
        self.config_group = config_group
        self._items: dict[str, T] = {}

    def register(self, fn: T) -> T:
        """Decorator: registers `fn` under its own `__name__` (name = file = function)."""
        name = fn.__name__
        if name in self._items:
            raise AlrunError(f"{self.kind} {name!r} is registered twice; names must be unique")
        self._items[name] = fn
        return fn

    def get(self, name: str) -> T:
        if name not in self._items:
            raise AlrunError(
                f"unknown {self.kind} {name!r} (key `{self.config_group}`); "
                f"valid names: {', '.join(self.names())}"
            )
        return self._items[name]

    def check_params(
        self, name: str, params: Mapping[str, object], where: str, positional: int = 0
    ) -> None:
        """Unknown hyper-parameters fail at start-up, naming the key and the valid ones."""
        sig = inspect.signature(self.get(name))
        accepted = [
            p
            for p in list(sig.parameters.values())[positional:]
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
            return
        valid = {p.name for p in accepted}
        for key in params:
            if key not in valid:
                raise AlrunError(
                    f"{where}.{key}: {self.kind} {name!r} has no parameter {key!r}; "
                    f"valid: {', '.join(sorted(valid)) or '(none)'}"
                )

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items
