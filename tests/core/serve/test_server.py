"""The listening socket of ``connector serve``: its connections answer at once."""

from __future__ import annotations

import asyncio
import socket

from core.serve.server import bind


def test_accepted_connections_send_answers_without_waiting_for_the_clients_ack() -> None:
    """asyncio turns Nagle's algorithm off only on sockets that say they are TCP: without it,
    a small answer written in two parts (head, body) waited for the client's delayed ACK."""

    async def nodelay_of_accepted() -> list[int]:
        sock = bind("127.0.0.1", 0)
        seen: list[int] = []

        async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted_sock = writer.get_extra_info("socket")
            seen.append(accepted_sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(accepted, sock=sock)
        async with server:
            reader, writer = await asyncio.open_connection(*sock.getsockname()[:2])
            await reader.read()
            writer.close()
        return seen

    assert asyncio.run(nodelay_of_accepted()) == [1]
