"""The faster WebSocket unmasking gives exactly what eventlet's own gives."""

from eventlet.websocket import RFC6455WebSocket
from hypothesis import given
from hypothesis import strategies as st

from cop.live.transport import unmask

# Taken before anything replaces it (wsgi.py does, in the server process only).
eventlets_own = RFC6455WebSocket.__dict__["_apply_mask"].__func__


@given(
    data=st.binary(max_size=300),
    mask=st.binary(min_size=4, max_size=4),
    as_list=st.booleans(),
    offset=st.integers(min_value=0, max_value=7),
    cut=st.integers(min_value=0, max_value=300),
)
def test_unmask_gives_what_eventlet_gives(data, mask, as_list, offset, cut):
    key = list(mask) if as_list else mask  # eventlet passes bytes in, a list when sending
    length = min(cut, len(data))

    assert unmask(data, key, length, offset) == eventlets_own(data, key, length, offset)
    assert unmask(data, key, offset=offset) == eventlets_own(data, key, offset=offset)


def test_unmasking_twice_gives_the_frame_back():
    frame = "café [c1e2]".encode() * 40

    assert unmask(unmask(frame, b"\x01\x02\x03\x04"), b"\x01\x02\x03\x04") == frame
    assert unmask(frame, b"\x00\x00\x00\x00") == frame
