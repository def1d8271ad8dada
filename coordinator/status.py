"""``mishards status``: the cluster as its members and catalog see it.

Prints the members (role, state, health), the writer and its epoch, the catalog revision, and how many
segments each read-only node serves under the placement function.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from coordinator.catalog import Catalog
from coordinator.membership import Member, create_provider, readers
from coordinator.model import SEARCHABLE_STATES
from coordinator.placement import Placement
from coordinator.tls import ClusterDialer, cluster_tls
from coordinator.writer_lookup import current_writer

SERVICE = "milvus.grpc.MilvusService"


@dataclass(frozen=True, slots=True)
class MemberStatus:
    member: Member
    health: str
    segments: int | None  # served segments (read-only members)


def probe_health(address: str, timeout: float = 2.0, dialer: ClusterDialer | None = None) -> str:
    """The node's health as its gRPC health service reports it (through ``dialer``: with the cluster
    certificate when the nodes run cluster mTLS)."""
    try:
        with (dialer or ClusterDialer(None)).channel(address) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=SERVICE), timeout=timeout
            )
    except grpc.RpcError as exc:
        return f"unreachable ({exc.code().name})"
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


def segment_load(members: Sequence[Member], segment_ids: Sequence[int], replication: int | None) -> dict[str, int]:
    """Segments each ready read-only member serves (any replica) under the placement function."""
    nodes = [m.node_id for m in readers(members)]
    if not nodes:
        return {}
    assigned = Placement.of(nodes, r=replication).assignments(segment_ids)
    return {node: len(segs) for node, segs in assigned.items()}




def render(members: Sequence[MemberStatus], revision: int, epoch: int, writer_id: str, elected: Member | None,
           segments: int) -> str:
    lines = [
        f"catalog revision {revision}; writer epoch {epoch} (claimed by {writer_id or 'nobody yet'})",
        f"writer: {elected.node_id + ' at ' + elected.address if elected else 'none'}",
        f"searchable segments: {segments}",
        f"{'NODE':<28} {'ADDRESS':<24} {'ROLE':<11} {'STATE':<8} {'HEALTH':<22} SEGMENTS",
    ]
    for st in members:
        m = st.member
        served = "-" if st.segments is None else str(st.segments)
        lines.append(f"{m.node_id:<28} {m.address:<24} {m.role:<11} {m.state:<8} {st.health:<22} {served}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mishards status", description="Show the cluster.")
    parser.add_argument("--membership", required=True, help="membership URI (as given to the nodes)")
    parser.add_argument("--meta-uri", default=os.environ.get("MISHARDS_META_URI", ""),
                        help="catalog URI (default: $MISHARDS_META_URI, which keeps a password out of `ps`)")
    parser.add_argument("--replication", type=int, default=0, help="replicas per segment (0: automatic)")
    parser.add_argument("--cluster-tls-cert", default="", help="cluster mTLS: a cluster certificate to reach nodes")
    parser.add_argument("--cluster-tls-key", default="", help="cluster mTLS: its private key")
    parser.add_argument("--cluster-tls-ca", default="", help="cluster mTLS: the cluster CA")
    parser.add_argument("--cluster-tls-server-name", default="", help="the name the nodes' certificates carry")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if not args.meta_uri:
        parser.error("--meta-uri (or MISHARDS_META_URI) is required")
    try:
        dialer = ClusterDialer(cluster_tls(args.cluster_tls_cert, args.cluster_tls_key, args.cluster_tls_ca,
                                           args.cluster_tls_server_name))
        provider = create_provider(args.membership)
    except (ValueError, OSError) as exc:
        print(f"mishards status: {exc}", file=sys.stderr)
        return 2
    provider.start()
    catalog = Catalog(args.meta_uri)
    try:
        members = provider.members()
        revision, epoch, writer_id = catalog.writer_state()
        snap = catalog.snapshot()
        segment_ids = [s.id for segs in snap.segments.values() for s in segs if s.state in SEARCHABLE_STATES]
        load = segment_load(members, segment_ids, args.replication or None)
        rows = [MemberStatus(m, probe_health(m.address, dialer=dialer), load.get(m.node_id) if m.role == "ro" else None)
                for m in members]
        elected = current_writer(provider, members, catalog.writer_lease)
        print(render(rows, revision, epoch, writer_id, elected, len(segment_ids)))
    except Exception as exc:
        print(f"mishards status: {exc}", file=sys.stderr)
        return 1
    finally:
        catalog.close()
        provider.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
