"""DnsServer's TCP admission on a real socket: when the server is full, an idle connection of the
client holding the most gives way to a new client; a client over its own limit is refused."""

from __future__ import annotations

import asyncio

import dns.asyncquery
import dns.message
import dns.rcode

from services.dns.server import DnsServer
from tests.processes import free_port


def _responder(query: dns.message.Message) -> dns.message.Message:
    response = dns.message.make_response(query)
    response.set_rcode(dns.rcode.NXDOMAIN)
    return response


async def _open(port: int, source: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def _closed_by_server(reader: asyncio.StreamReader) -> bool:
    try:
        return await asyncio.wait_for(reader.read(1), 0.3) == b""
    except (TimeoutError, ConnectionError):
        return False


def test_full_server_evicts_the_heaviest_clients_idle_connection_and_caps_each_client():
    async def main() -> None:
        port = free_port()
        server = DnsServer(_responder, "127.0.0.1", port, max_tcp=8, max_tcp_per_client=6, tcp_idle_s=30)
        await server.start()
        try:
            hog = [await _open(port, "127.0.0.2") for _ in range(6)]
            other = [await _open(port, "127.0.0.3") for _ in range(2)]
            await asyncio.sleep(0.2)
            # Over its own limit: the hog's seventh connection is closed at once.
            seventh = await _open(port, "127.0.0.2")
            assert await _closed_by_server(seventh[0])
            # The server is full (8); a new client still gets an answer: one of the hog's idle ones gives way.
            reply = await dns.asyncquery.tcp(dns.message.make_query("x.example.", "A"), "127.0.0.1", port=port,
                                             timeout=3, source="127.0.0.4")
            assert reply.rcode() == dns.rcode.NXDOMAIN
            closed = [await _closed_by_server(r) for r, _ in hog]
            assert closed.count(True) == 1
            assert not any([await _closed_by_server(r) for r, _ in other])
            for _, w in hog + other + [seventh]:
                w.close()
        finally:
            server.close()

    asyncio.run(main())
