"""Free TCP ports on 127.0.0.1, so parallel test sessions never share a service port."""

import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

HOST = "127.0.0.1"
_MAX_PORT = 65535


class PortReservation:
    """Keeps every chosen port bound until the reservation ends, so the ports are distinct.

    The ports are released just before the server starts; a server losing the race for one
    fails to start, and the caller retries with new ports.
    """

    def __init__(self, stack: ExitStack) -> None:
        self._stack = stack

    def _bind(self, port: int) -> int | None:
        sock = self._stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        try:
            sock.bind((HOST, port))
        except OSError:
            return None
        return sock.getsockname()[1]

    def any(self) -> int:
        port = self._bind(0)
        if port is None:
            raise RuntimeError(f"no free port on {HOST}")
        return port

    def pair(self, offset: int, attempts: int = 200) -> int:
        """A port ``p`` with ``p + offset`` free too, for servers that derive one from the other."""
        for _ in range(attempts):
            port = self.any()
            if port + offset <= _MAX_PORT and self._bind(port + offset) is not None:
                return port
        raise RuntimeError(f"no free pair of ports {offset} apart on {HOST}")


@contextmanager
def reserve_ports() -> Iterator[PortReservation]:
    with ExitStack() as stack:
        yield PortReservation(stack)


def free_port() -> int:
    with reserve_ports() as ports:
        return ports.any()
