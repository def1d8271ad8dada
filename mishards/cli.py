"""The ``mishards`` console command: a thin dispatcher to each component's own entry point."""

from __future__ import annotations

import runpy
import sys
from collections.abc import Sequence

COMMANDS = {
    "node": ("node", "run a node (roles standalone, rw, ro)"),
    "proxy": ("mishards", "run the proxy (forwards to the cluster's nodes)"),
    "up": ("mishards.up", "run a local cluster: proxy, writer and read-only nodes on embedded defaults"),
    "user": ("coordinator.users_cli", "manage users, roles and tokens of token authentication"),
    "status": ("coordinator.status", "show the cluster: members, health, writer, epoch, segments per node"),
    "import": ("mishards_tools.import_cli", "load .npy/.fvecs/.bvecs/.ivecs/.hdf5/.parquet/.csv into a collection"),
    "bench": ("mishards_tools.bench_cli", "ann-benchmarks-style recall/QPS runs against any endpoint, with plots"),
}

USAGE = "usage: mishards <command> [options]\n\ncommands:\n" + "\n".join(
    f"  {name:<8} {help_text}" for name, (_, help_text) in COMMANDS.items()
)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if args else 2
    command = COMMANDS.get(args[0])
    if command is None:
        print(f"mishards: unknown command {args[0]!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    sys.argv = [f"mishards {args[0]}", *args[1:]]
    runpy.run_module(command[0], run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
