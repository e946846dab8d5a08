"""Oracles answer label queries, built by name from `conf/oracle/<name>.yaml`.

`base` holds the protocol (`Oracle`, `Labels`, `OracleContext`); `simulated` and `web` the two
oracles. The web oracle (its server and SQLAlchemy) is imported only when asked for. Get a
factory with `ORACLES.get(name)`: importing the submodule `alrun.oracles.web` rebinds the
package attribute `web` to that module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from alrun.oracles.base import Labels, Oracle, OracleContext
from alrun.oracles.simulated import SimulatedOracle
from alrun.registry import Registry

__all__ = ["ORACLES", "Labels", "Oracle", "OracleContext", "SimulatedOracle"]

ORACLES: Registry = Registry("oracle", "oracle")


@ORACLES.register
def simulated(ctx: OracleContext) -> SimulatedOracle:
    return SimulatedOracle(ctx.pool)


@ORACLES.register
def web(
    ctx: OracleContext,
    host: str = "127.0.0.1",
    port: int = 8080,
    db: str | None = None,
    token: str | None = None,
    user: str | None = None,
    lease_seconds: float = 120.0,
    linger_seconds: float = 3.0,
    allowed_hosts: Sequence[str] = (),
    overlap: int = 1,
    reviewers: Sequence[str] = (),
) -> Any:
    from alrun.oracles.web import WebOracle  # the server and SQLAlchemy only when asked for

    return WebOracle(
        ctx,
        host=host,
        port=port,
        db=db,
        token=token,
        user=user,
        lease_seconds=lease_seconds,
        linger_seconds=linger_seconds,
        allowed_hosts=[str(h) for h in allowed_hosts],
        overlap=int(overlap),
        reviewers=[str(r) for r in reviewers],
    )
