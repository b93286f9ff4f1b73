"""The student kernel's end of the boundary during grading.

The checker kernel sends each request as one silent ``execute_request`` whose code is
``handle("<base64>")`` and reads the reply back through the request's ``user_expressions``
(``take()``). Nothing here is trusted by the checker: whatever the student's kernel answers is
decoded as data only (:func:`hw_utils.boundary.data.decode`).
"""

from __future__ import annotations

import base64

from hw_utils.boundary.calls import respond
from hw_utils.boundary.data import decode, encode

MODULE = __name__
_reply = ""


def handle(payload: str) -> None:
    """Perform one request in the notebook's namespace and keep the reply for :func:`take`."""
    global _reply
    from IPython import get_ipython

    request = decode(base64.b64decode(payload))
    _reply = base64.b64encode(encode(respond(request, get_ipython().user_ns))).decode("ascii")


def take() -> str:
    """The last reply, once."""
    global _reply
    reply, _reply = _reply, ""
    return reply
