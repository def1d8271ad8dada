"""How long the campaign runs: ``MISHARDS_E2E=short`` (default, what CI runs) or ``long``; ``MISHARDS_E2E_SEED``
fixes the nemesis' seed (otherwise each scenario has its own fixed seed)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class E2ESettings:
    mode: str
    load_seconds: float  # one fault scenario's load
    nemesis_seconds: float  # the random campaign
    infra_down_seconds: float  # catalog database / etcd down
    infra_tail_seconds: float  # load after an infrastructure fault ends
    soak_seconds: float
    sample_interval: float  # soak: seconds between resource samples
    seed: int | None

    @property
    def long(self) -> bool:
        return self.mode == "long"


def from_env(env: Mapping[str, str] = os.environ) -> E2ESettings:
    mode = env.get("MISHARDS_E2E", "short").strip().lower() or "short"
    if mode not in ("short", "long"):
        raise ValueError(f"MISHARDS_E2E must be 'short' or 'long', not {mode!r}")
    seed = env.get("MISHARDS_E2E_SEED", "").strip()
    if mode == "long":
        return E2ESettings(mode, 60.0, 300.0, 20.0, 15.0, 600.0, 5.0, int(seed) if seed else None)
    return E2ESettings(mode, 12.0, 24.0, 6.0, 6.0, 36.0, 1.5, int(seed) if seed else None)
