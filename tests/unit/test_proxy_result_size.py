"""The proxy's result-size refusal (Milvus 1.1.1) keeps the nodes' validation order and wording."""

from __future__ import annotations

from coordinator.errors import ErrorCode
from mishards.fanout import result_size_refusal

REASON = "Invalid nq 12000 topk 16384. The search result size may exceed the RPC transmission limit."


def test_a_result_of_2_gib_or_more_is_refused_in_the_nodes_words() -> None:
    refused = result_size_refusal("c", 16_384, 12_000)
    assert refused is not None and (refused.code, refused.reason) == (ErrorCode.ILLEGAL_TOPK, REASON)
    # 2 GiB exactly is refused, one slot less passes (12 bytes a slot).
    assert result_size_refusal("c", 1, 2 * 1024**3 // 12 + 1) is not None
    assert result_size_refusal("c", 1, 2 * 1024**3 // 12) is None
    assert result_size_refusal("c", 10, 1_000) is None
    assert result_size_refusal("c", 16_384, 0) is None  # no queries: the node words that


def test_an_earlier_error_in_the_nodes_order_is_left_to_the_writer() -> None:
    assert result_size_refusal("", 16_384, 12_000) is None  # the name comes first
    assert result_size_refusal("1abc", 16_384, 12_000) is None
    assert result_size_refusal("c", 2_000_000, 12_000) is None  # then topk
    assert result_size_refusal("c", -1, -12_000) is None
