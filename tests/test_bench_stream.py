"""The benchmark's XML stream reader and its percentiles: pure logic, checked exactly."""

from __future__ import annotations

import pytest

from pi_im_bench.stats import percentile, summary
from pi_im_bench.xmpp import SessionError, StreamReader

STREAM = (
    b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
    b"xmlns:stream='http://etherx.jabber.org/streams' id='s1' version='1.0'>"
    b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>"
    b"<message to='a@b' type='chat'><body>1 2 3 x</body></message>"
    b"<message to='a@b' type='chat'><body>&lt;not a tag&gt;</body></message>"
    b"</stream:stream>"
)


@pytest.mark.parametrize("chunk", [1, 7, len(STREAM)])
def test_stanzas_come_out_whole_whatever_the_chunking(chunk):
    reader = StreamReader()
    stanzas = []
    for start in range(0, len(STREAM), chunk):
        stanzas.extend(reader.feed(STREAM[start : start + chunk]))
    assert [s.tag.split("}")[1] for s in stanzas] == ["features", "message", "message"]
    assert stanzas[2].findtext("{jabber:client}body") == "<not a tag>"
    assert reader.opened
    assert reader.closed


def test_handled_stanzas_are_not_kept():
    """Thousands of sessions each holding every stanza they ever got would be a leak."""
    reader = StreamReader()
    reader.feed(STREAM[: STREAM.index(b"</stream:stream>")])
    assert reader._root is not None
    assert len(reader._root) == 0


def test_broken_xml_is_a_session_error():
    reader = StreamReader()
    with pytest.raises(SessionError, match="xml"):
        reader.feed(b"<stream:stream xmlns:stream='x'><a></b>")


def test_nearest_rank_percentiles():
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None
    assert summary([3.0, 1.0, 2.0]) == {"count": 3, "p50": 2.0, "p90": 3.0, "p99": 3.0, "max": 3.0}
