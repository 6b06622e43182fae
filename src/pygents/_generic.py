"""The type variable of pygents' generic containers: ``ContextQueue[T]``, ``Turn[T]`` ...

To a type checker ``T`` defaults to ``Any`` (PEP 696), so an unparameterised
``ContextQueue(limit=10)`` is a ``ContextQueue[Any]`` and needs no annotation, as before the
containers were generic. At run time it is a plain ``typing.TypeVar`` (a default needs
Python 3.13's ``typing`` or ``typing_extensions``, and the core imports only the stdlib).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["T"]

if TYPE_CHECKING:
    from typing_extensions import TypeVar

    T = TypeVar("T", default=Any)
else:
    from typing import TypeVar

    T = TypeVar("T")
