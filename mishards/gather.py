"""One search's sub-requests to the read nodes: sent in parallel, hedged when a node falls silent, retried
elsewhere when a node fails, each within its own deadline, the losers cancelled (the I/O around
``mishards.coverage``).

Every sub-request is a ``SearchInFiles`` future whose end is queued to the searching thread, except the
last one of the first routing when its node has nothing else in flight: a blocking call in that thread
(cheaper), cut at the hedge delay when another replica could take its segments. The searching thread alone
decides (``Coverage``). It wakes for an answer, for the next hedge check, or for the search's deadline,
whichever comes first:

- a good answer is accepted when none of its segments is answered yet; the sub-requests it makes useless
  are cancelled (a hedge that won: its node is suspected when it has been silent for ``hedging.SILENCE``);
- an in-band status that is the node's trouble (``outcomes.node_fault``) sends the segments to another
  replica; any other status is the request's and is final;
- a gRPC error sends the segments to another replica; a node that looks down (unreachable, broken
  connection, no answer within ``subrequest_timeout``) is suspected, and a node that died or timed out
  while holding the request counts toward query-of-death protection (``mishards.querydeath``);
- a future unanswered after the hedge delay (``mishards.hedging``) whose node answered nothing for as long
  is sent to another replica too, within the hedge budget; a node that answered others meanwhile is busy,
  not stuck (a hedge would only add load): it is looked at again after another delay. The blocking
  call, cut at the delay, is moved to another replica.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeAlias

import grpc

from coordinator.auth.guard import forwarded
from coordinator.errors import ErrorCode
from coordinator.placement import Placement
from coordinator.topk import TopK
from milvus_wire import milvus_pb2
from mishards.coverage import Attempt, Coverage
from mishards.hedging import SILENCE
from mishards.outcomes import Ending, blames_request, node_fault, rpc_ending, suspects_node
from mishards.results import decode_topk
from mishards.routing import plan_in_tiers
from mishards.subrequests import (
    MIN_REVISION_HEADER,
    SEARCH_IN_FILES,
    TOO_LARGE,
    Failed,
    SubRequests,
    as_error_code,
    search_in_files_request,
    unplaced_error,
)

if TYPE_CHECKING:
    from coordinator.tracing import Metadata

log = logging.getLogger(__name__)

DEADLINE_SLACK = 0.005  # seconds: a sub-request ending this close to the search's deadline ran out of it



class HedgeCut:
    """The end of a blocking sub-request the proxy cut at the hedge delay (its segments move elsewhere)."""


HEDGE_CUT = HedgeCut()
HEDGED, NO_REPLICA, OVER_BUDGET = "hedged", "no replica", "over budget"
# A reply, the call's error, a cut, or None: cancelled by the proxy.
Outcome: TypeAlias = "bytes | BaseException | HedgeCut | None"


def gather(shared: SubRequests, segments: list[int], placement: Placement, addresses: dict[str, str],
           request: bytes, revision: int, deadline: float, key: Callable[[], bytes],
           method: str = SEARCH_IN_FILES) -> list[tuple[bytes, TopK]]:
    """Each accepted reply (serialized and decoded), together covering ``segments`` once. ``method`` is the
    sub-request (SearchInFiles, or HybridSearchInSegments with ``request`` an HSearchParam)."""
    return _Search(shared, placement, addresses, request, revision, deadline, key, method).run(segments)


class _Search:
    """The sub-requests of one search (used by one thread, once)."""

    def __init__(self, shared: SubRequests, placement: Placement, addresses: dict[str, str], request: bytes,
                 revision: int, deadline: float, key: Callable[[], bytes], method: str = SEARCH_IN_FILES) -> None:
        self.method = method
        self.shared = shared
        self.placement = placement
        self.addresses = addresses
        self.request = request
        # the caller's authorization goes with every sub-request (a node without mTLS checks it too)
        self.metadata: Metadata = ((MIN_REVISION_HEADER, str(revision)), *forwarded())
        self.deadline = deadline
        self.key = key
        self.events: queue.SimpleQueue[tuple[Attempt, Outcome]] = queue.SimpleQueue()
        self.calls: dict[int, grpc.Future] = {}
        self.fault: Failed | None = None  # the last in-band status a node was blamed for
        self.last_failure = ""  # the last gRPC failure, in words
        self.placed = False  # the first routing was made
        self.cut: dict[int, str] = {}  # attempts cut at the hedge delay (-> their node), hedges on their way

    def run(self, segments: list[int]) -> list[tuple[bytes, TopK]]:
        cov = Coverage(segments)
        parts: list[tuple[bytes, TopK]] = []
        try:
            self._place(cov)
            while not cov.complete:
                wake = self.deadline
                due = cov.next_due()
                if due is not None and due < wake:
                    wake = due
                try:
                    attempt, outcome = self.events.get(timeout=max(0.0, wake - time.monotonic()))
                except queue.Empty:
                    if time.monotonic() >= self.deadline:
                        raise Failed(ErrorCode.UNEXPECTED_ERROR,
                                     "Search timed out waiting for the read nodes") from None
                    for slow in cov.due(time.monotonic()):
                        self._consider_hedge(cov, slow)
                    continue
                if attempt.id not in cov.inflight:
                    continue  # cancelled by this search, or its answer is no longer needed
                if isinstance(outcome, bytes):
                    self._answered(cov, attempt, outcome, parts)
                elif isinstance(outcome, HedgeCut):
                    self._cut(cov, attempt)
                else:
                    self._failed(cov, attempt, outcome)
                if not cov.complete:
                    self._place(cov)
            return parts
        finally:
            for attempt in cov.retire_all():
                call = self.calls.get(attempt.id)
                if call is not None:
                    call.cancel()

    # -- sending -------------------------------------------------------------------------------------

    def _place(self, cov: Coverage) -> int:
        """Send the segments nobody holds (all of them at first) to their least loaded allowed replicas:
        keeping off suspects and this search's slow nodes while another replica exists, never to a node
        that failed in this search. Returns how many nodes they went to.

        The first time, the last sub-request is a blocking call in this thread when its node has nothing
        else in flight, as cheap as a call gets (a future costs a hand-over between threads): with another
        replica to go to, the call is cut at the hedge delay and its segments hedged elsewhere (``_cut``).
        The others are futures, which can be hedged once their node falls silent."""
        first, self.placed = not self.placed, True
        orphans = cov.orphans()
        if not orphans:
            return 0
        avoid = cov.avoid()
        tiers = (avoid | self.shared.cluster.failures.suspects(), avoid, frozenset(cov.failed_nodes))
        route = plan_in_tiers(orphans, self.placement, self.shared.inflight.snapshot(), tiers)
        if route.unplaced:
            raise self.fault if self.fault is not None else unplaced_error(route.unplaced, self.last_failure)
        items = list(route.by_node.items())
        if not first:
            for node, segs in items:
                self._send(cov, node, segs, None)
            return len(items)
        shared = self.shared
        if shared.metrics is not None:
            shared.metrics.fanout_width.observe(len(items))
        delay = shared.hedge_delay() if self.placement.width >= 2 else None
        last, last_segs = items[-1]
        # The last call blocks this thread unless hedging may be needed while other work keeps its node busy
        # (then only a future can be hedged once the node falls silent).
        inline = delay is None or not shared.inflight.snapshot().get(last, 0)
        for node, segs in items if not inline else items[:-1]:
            self._send(cov, node, segs, None)
        if inline:
            # Over the hedge budget, the call is cut only once its node would count as paused.
            cut = None if delay is None else delay if shared.budget.available() else max(delay, SILENCE)
            self._send(cov, last, last_segs, None, inline=True, cut=cut)
        return len(items)

    def _send(self, cov: Coverage, node: str, segs: tuple[int, ...], hedge_of: int | None,
              inline: bool = False, cut: float | None = None) -> None:
        """One sub-request to ``node``: a future whose end is queued for the loop, or (``inline``) a blocking
        call whose end is queued the same way, cut after ``cut`` seconds (None: its full timeout)."""
        shared = self.shared
        attempt = cov.start(node, segs, time.monotonic(), hedge_of)
        metadata, finish = shared.sub_request(node, segs, self.metadata, self.method)
        events = self.events
        inflight = shared.inflight
        last_answer = shared.last_answer
        inflight.add(node)
        if hedge_of is None:
            shared.budget.earn()

        def ended(outcome: Outcome) -> None:
            inflight.release(node)
            if isinstance(outcome, bytes):
                last_answer[node] = time.monotonic()
            if finish is not None:
                finish(outcome if isinstance(outcome, BaseException) else None)
            events.put((attempt, outcome))

        timeout = shared.call_timeout(self.deadline)

        def done(fut: grpc.Future) -> None:
            if fut.cancelled():
                ended(None)
                return
            exc = fut.exception()
            ended(bytes(fut.result()) if exc is None else exc)

        call = shared.cluster.channel(self.addresses[node]).unary_unary(self.method)
        payload = search_in_files_request(segs, self.request)
        cut = cut if cut is not None and cut < timeout else None
        try:
            if inline:
                ended(bytes(call(payload, timeout=timeout if cut is None else cut, metadata=metadata)))
                return
            fut = call.future(payload, timeout=timeout, metadata=metadata)
        except grpc.RpcError as exc:
            ended(HEDGE_CUT if cut is not None and exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED else exc)
            return
        except Exception as exc:  # e.g. the channel closed under us: an ending like any other
            ended(exc)
            return
        self.calls[attempt.id] = fut
        fut.add_done_callback(done)
        delay = shared.hedge_delay()
        if delay is not None:
            cov.check_at(attempt.id, attempt.started + delay)

    def _consider_hedge(self, cov: Coverage, slow: Attempt) -> None:
        """``slow`` has not answered within the hedge delay. Its node answered nothing for as long (paused,
        hung, or busy with this one request): hedge it, within the budget unless the node has been silent
        for ``SILENCE`` (it looks paused: its hedges add no load to a node that works). It answered others
        meanwhile (busy, queued): a hedge would only add load; look again after another delay."""
        delay = self.shared.hedge_delay()
        if delay is None:
            return
        silent = self._silent_for(slow.node)
        if silent >= delay and self._hedge(cov, slow, budgeted=silent < max(delay, SILENCE)) != OVER_BUDGET:
            return  # hedged, or no other replica holds all its segments
        cov.check_at(slow.id, time.monotonic() + delay)

    def _silent_for(self, node: str) -> float:
        """Seconds since ``node`` last answered anything (an answer of another search counts)."""
        return time.monotonic() - self.shared.last_answer.get(node, 0.0)

    def _hedge(self, cov: Coverage, slow: Attempt, budgeted: bool = True) -> str:
        """Send ``slow``'s segments to other replicas too, when they exist and (``budgeted``) the budget
        allows: HEDGED, NO_REPLICA (none holds them all: a partial hedge could not replace it) or
        OVER_BUDGET."""
        shared = self.shared
        inflight = shared.inflight.snapshot()
        exclude = cov.avoid() | {slow.node}
        route = plan_in_tiers(slow.segments, self.placement, inflight,
                              (exclude | shared.cluster.failures.suspects(), exclude))
        if route.unplaced:
            return NO_REPLICA
        if not shared.budget.spend() and budgeted:
            return OVER_BUDGET
        log.info("read node %s has not answered in %.3f s; hedging its %d segments on %s", slow.node,
                 time.monotonic() - slow.started, len(slow.segments), ", ".join(route.by_node))
        cov.hedged(slow)
        if shared.metrics is not None:
            shared.metrics.hedges_sent.labels(slow.node).inc()
        for node, segs in route.by_node.items():
            self._send(cov, node, segs, slow.id)
        return HEDGED

    def _cut(self, cov: Coverage, attempt: Attempt) -> None:
        """The blocking sub-request was cut at the hedge delay: its segments go to other replicas (a hedge
        whose original is already gone, so it goes even when the budget ran out since the call was sent);
        with none left, ``_place`` sends them to a slow node again."""
        cov.withdraw(attempt.id)
        self._suspect_if_silent(attempt)
        if self._hedge(cov, attempt, budgeted=False) == HEDGED:
            self.cut[attempt.id] = attempt.node
        else:
            cov.hedged(attempt)

    # -- endings -------------------------------------------------------------------------------------

    def _answered(self, cov: Coverage, attempt: Attempt, data: bytes, parts: list[tuple[bytes, TopK]]) -> None:
        shared = self.shared
        code, _, result = decode_topk(data)
        if code != 0:
            reason = _status_reason(data)
            if not node_fault(code, reason):
                raise Failed(as_error_code(code), reason)  # the request's own fault: every replica says so
            log.warning("read node %s answered %d (%s); retrying its segments on other replicas",
                        attempt.node, code, reason)
            cov.failed(attempt.id)
            self.fault = Failed(as_error_code(code), reason)
            shared.node_failed(attempt.node, suspect=True)
            return
        shared.cluster.failures.succeeded(attempt.node)
        shared.latencies.add(time.monotonic() - attempt.started)
        accepted, retired = cov.answered(attempt.id)
        if not accepted:
            return
        parts.append((data, result))
        cut_node = self.cut.pop(attempt.hedge_of, None) if attempt.hedge_of is not None else None
        if cut_node is not None and shared.metrics is not None:  # the hedge of a cut sub-request answered
            shared.metrics.hedges_won.labels(cut_node).inc()
        for loser in retired:
            call = self.calls.get(loser.id)
            if call is not None:
                call.cancel()
            if attempt.hedge_of == loser.id:  # a hedge answered before the sub-request it hedged
                if shared.metrics is not None:
                    shared.metrics.hedges_won.labels(loser.node).inc()
                self._suspect_if_silent(loser)

    def _suspect_if_silent(self, slow: Attempt) -> None:
        """Suspect ``slow``'s node if it answered nothing for at least ``SILENCE`` seconds (paused, hung); a
        node busy answering others, or starved for a moment, is merely slow."""
        silent = self._silent_for(slow.node)
        if silent >= SILENCE:
            log.warning("read node %s answered nothing for %.3f s; suspecting it", slow.node, silent)
            self.shared.suspect(slow.node)

    def _failed(self, cov: Coverage, attempt: Attempt, outcome: BaseException | None) -> None:
        shared = self.shared
        if isinstance(outcome, grpc.RpcError):
            code, details = outcome.code(), outcome.details()
        elif outcome is None:
            code, details = grpc.StatusCode.CANCELLED, ""
        else:
            code, details = grpc.StatusCode.UNKNOWN, str(outcome)
        ending = rpc_ending(code, details)
        if ending == Ending.TOO_LARGE:  # every replica refuses the same bytes
            raise Failed(ErrorCode.UNEXPECTED_ERROR, f"{TOO_LARGE}: {details}")
        if ending == Ending.CANCELLED:
            ending = Ending.FAILED  # cancelled, but not by this search (the proxy is stopping)
        cov.failed(attempt.id)
        log.warning("read node %s failed (%s: %s); retrying its segments on other replicas", attempt.node,
                    code.name, details)
        self.fault = None
        if ending == Ending.TIMED_OUT:
            waited = time.monotonic() - attempt.started
            self.last_failure = f"read node {attempt.node} did not answer within {waited:.1f} s"
        else:
            self.last_failure = f"read node {attempt.node}: {code.name}"
        shared.node_failed(attempt.node, suspects_node(ending))
        if ending == Ending.TIMED_OUT and shared.metrics is not None:
            shared.metrics.subrequest_timeouts.labels(attempt.node).inc()
        if blames_request(ending) and shared.deaths.enabled:
            shared.blame(self.key, attempt.node)
        if time.monotonic() >= self.deadline - DEADLINE_SLACK:
            raise Failed(ErrorCode.UNEXPECTED_ERROR, "Search timed out waiting for the read nodes")


def _status_reason(data: bytes) -> str:
    return str(milvus_pb2.TopKQueryResult.FromString(data).status.reason)
