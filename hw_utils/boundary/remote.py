"""The checker kernel's end of the boundary: requests to the student's kernel, data back.

A :class:`RemoteBackend` is a Jupyter client of the student's kernel (its connection file comes
from the grading run). Each request is one silent ``execute_request`` (see
:mod:`hw_utils.boundary.serve`); the reply is read as data only. A call that does not return in
time is interrupted; a kernel that dies or ignores the interrupt is *lost*, and every later call
fails at once with :class:`~hw_utils.boundary.StudentUnavailable`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import queue
import time
from typing import Any

from hw_utils.boundary.data import MAX_BYTES, decode, encode, error_from_data
from hw_utils.boundary.protocol import (
    BoundaryError,
    ForbiddenCallError,
    NotDataError,
    StudentTimeout,
    StudentUnavailable,
)
from hw_utils.boundary.serve import MODULE
from hw_utils.checks import CheckFailed

INTERRUPT_GRACE_S = 5.0
DEAD_AFTER_S = 0.5  # heartbeat missing this long (on top of its own 1 s): the kernel is gone
KNOWN_ERRORS: dict[str, type[BaseException]] = {
    f"{kind.__module__}.{kind.__qualname__}": kind
    for kind in (CheckFailed, ForbiddenCallError, NotDataError, BoundaryError)
}
TAKE = f"__import__({MODULE!r}, fromlist=['take']).take()"


class RemoteBackend:
    """Requests to the student kernel described by ``connection_file``; each may take
    ``timeout`` seconds."""

    def __init__(self, connection_file: str, timeout: float) -> None:
        self.connection_file = connection_file
        self.timeout = timeout
        self._client: Any = None
        self._lost: str | None = None

    def _connect(self) -> Any:
        import zmq
        from jupyter_client import BlockingKernelClient

        context = zmq.Context()
        # A reply larger than this is dropped by ZeroMQ before it reaches Python.
        context.setsockopt(zmq.MAXMSGSIZE, 4 * MAX_BYTES)
        client = BlockingKernelClient(context=context)
        client.load_connection_file(self.connection_file)
        client.start_channels(shell=True, iopub=False, stdin=False, hb=True, control=True)
        # The shell socket says at once when the student's kernel goes away (its process died).
        self._monitor = client.shell_channel.socket.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        self._client = client
        return client

    def close(self) -> None:
        """Stop talking to the student's kernel (the kernel itself is not touched)."""
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._monitor.close(linger=0)
                self._client.stop_channels()
                self._client.context.term()
            self._client = None

    def _disconnected(self) -> bool:
        import zmq
        from zmq.utils.monitor import recv_monitor_message

        try:
            while True:
                if recv_monitor_message(self._monitor, flags=zmq.NOBLOCK)["event"] == (
                    zmq.EVENT_DISCONNECTED
                ):
                    return True
        except zmq.Again:
            return False

    def request(self, request: dict[str, Any]) -> Any:
        if self._lost:
            raise StudentUnavailable(self._lost)
        client = self._client or self._connect()
        payload = base64.b64encode(encode(request)).decode("ascii")
        label = str(request["target"]).rpartition(":")[2]
        msg_id = client.execute(
            f"__import__({MODULE!r}, fromlist=['handle']).handle({payload!r})",
            silent=True,
            store_history=False,
            user_expressions={"reply": TAKE},
            allow_stdin=False,
            stop_on_error=False,
        )
        return self._unpack(self._wait(client, msg_id, label), label)

    def _wait(self, client: Any, msg_id: str, label: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        silent_since = None
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._interrupt(
                        client, msg_id, f"{label} did not return within {self.timeout:g} s"
                    )
                    raise StudentTimeout(
                        f"{label} did not return within {self.timeout:g} s and was interrupted "
                        "(an endless loop, or far too slow for the test's small inputs?)."
                    )
                try:
                    message = client.get_shell_msg(timeout=min(0.5, remaining))
                except queue.Empty:
                    if self._disconnected():
                        self._lose(f"the student's kernel died while {label} ran")
                        raise StudentUnavailable(self._lost) from None
                    if client.hb_channel.is_beating():
                        silent_since = None
                    else:
                        silent_since = silent_since or time.monotonic()
                        if time.monotonic() - silent_since > DEAD_AFTER_S:
                            self._lose(f"the student's kernel died while {label} ran")
                            raise StudentUnavailable(self._lost) from None
                    continue
                if message.get("parent_header", {}).get("msg_id") == msg_id:
                    return message
        except KeyboardInterrupt:  # the test cell ran out of time: stop the student's code too
            self._interrupt(
                client, msg_id, f"{label} was still running when its test cell timed out"
            )
            raise

    def _interrupt(self, client: Any, msg_id: str, why: str) -> None:
        """Interrupt the student's kernel and wait for the interrupted call's reply; without
        one the kernel is lost."""
        client.control_channel.send(client.session.msg("interrupt_request", {}))
        deadline = time.monotonic() + INTERRUPT_GRACE_S
        while time.monotonic() < deadline:
            try:
                message = client.get_shell_msg(timeout=0.2)
            except queue.Empty:
                continue
            if message.get("parent_header", {}).get("msg_id") == msg_id:
                return
        self._lose(f"{why} and ignored the interrupt: the student's kernel no longer responds")

    def _lose(self, why: str) -> None:
        self._lost = why
        self.close()

    @staticmethod
    def _unpack(message: dict[str, Any], label: str) -> Any:
        content = message.get("content", {})
        if content.get("status") != "ok":
            raise BoundaryError(
                f"the student's kernel could not run the call of {label} "
                f"({content.get('ename', 'error')}: {str(content.get('evalue', ''))[:200]})."
            )
        expression = content.get("user_expressions", {}).get("reply", {})
        data = expression.get("data", {}) if isinstance(expression, dict) else {}
        text = data.get("text/plain", "") if isinstance(data, dict) else ""
        if not (isinstance(text, str) and len(text) >= 2 and text[0] == text[-1] == "'"):
            raise BoundaryError(f"the student's kernel sent no reply for {label}.")
        try:
            envelope = decode(base64.b64decode(text[1:-1], validate=True))
        except (binascii.Error, ValueError):
            raise BoundaryError(f"the student's kernel sent a garbled reply for {label}.") from None
        if isinstance(envelope, dict) and "ok" in envelope:
            return envelope["ok"]
        if isinstance(envelope, dict) and "error" in envelope:
            raise error_from_data(envelope["error"], KNOWN_ERRORS)
        raise BoundaryError(f"the student's kernel sent a malformed reply for {label}.")
