"""Load: concurrent clients on ``GET envs`` and ``POST requests`` against a loopback server.

By default starts its own ``jupyter server`` (the one tests/test_openapi.py runs: real shared
environments, a SQLite request store in a temporary directory, or ``--database postgresql`` for a
PostgreSQL cluster of the run's own; users told apart by their tokens), then runs 50 concurrent
clients for 20 s on asyncio: half list the environments (``GET envs``), half file requests
(``POST requests``), each POST with specs of its own so that each one creates a request, spread over
several users. Then it counts the requests the store holds from this run and compares them, id by
id, with the POSTs the server accepted (201/200).

Prints p50/p99 latency, throughput and errors per endpoint, stored versus accepted, and the CPU
time the server process (not a PostgreSQL server's own processes) and the load generator used.
Targets: zero errors, p99 under 100 ms for GET envs, nothing lost; the exit status is 1 when one
is missed.

Clients send their next request as soon as the last one is answered (closed loop, the default), so
latency there is mostly queueing: about clients / throughput. ``--interval S`` paces each client to
one request every S seconds instead, a load below saturation. Latency is measured by the client, on
the same machine as the server: each client is one keep-alive connection spoken directly over
asyncio streams (about 0.25 ms of CPU per request); ``--client httpx`` uses httpx (about 2 ms per
request, which on a small machine makes the generator the bottleneck it measures).

Bounded and local: at most 200 clients and 120 s, loopback addresses only.

Run: .venv/bin/python tests/benchmarks/load_api.py [--clients 50] [--duration 20] [--users 5]
     [--interval S] [--posting N] [--database sqlite|postgresql] [--client raw|httpx]
Against a running server: --url http://127.0.0.1:8888/ --token TOKEN [--database-url URL]
(without --database-url, each accepted request is looked up through the API instead).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import itertools
import json
import math
import os
import resource
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # tests.test_openapi, for the server it runs

ENV = "isis4.3.0"  # the environment POSTs ask for an addition to (built by tests.test_openapi.build_site)
MAX_CLIENTS = 200
MAX_DURATION = 120.0
REQUEST_TIMEOUT = 10.0
GET_ENVS = "GET envs"
POST_REQUESTS = "POST requests"


@dataclass
class Endpoint:
    """What one endpoint did during the run."""

    latencies: list[float] = field(default_factory=list)  # seconds, successful responses only
    errors: Counter[str] = field(default_factory=Counter)  # "HTTP 500", "ReadTimeout", ...

    @property
    def count(self) -> int:
        return len(self.latencies) + sum(self.errors.values())


@dataclass
class Run:
    """Everything the clients saw."""

    endpoints: dict[str, Endpoint] = field(
        default_factory=lambda: {GET_ENVS: Endpoint(), POST_REQUESTS: Endpoint()}
    )
    accepted: dict[int, int] = field(default_factory=dict)  # request id -> HTTP status (201 or 200)
    duplicates: int = 0  # accepted POSTs that answered with an id another POST already had
    seconds: float = 0.0
    client_cpu: float = 0.0  # CPU seconds of this process (the load generator) during the run
    server_cpu: float | None = None  # CPU seconds of the server, when this script started it


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def check_loopback(url: str) -> None:
    """Refuse anything but a loopback server: this script is a load generator."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise SystemExit(f"--url must name a loopback server (127.0.0.1, ::1 or localhost), not {host!r}")


class Pace:
    """When a client sends its next request: as soon as the last one is answered (``interval`` 0), or
    at most one every ``interval`` seconds, starting ``offset`` seconds in (clients spread out)."""

    def __init__(self, until: float, interval: float, offset: float) -> None:
        self.until = until
        self.interval = interval
        self.slot = time.monotonic() + offset

    async def next(self) -> bool:
        """Wait for the next slot; False once the run is over."""
        if self.interval:
            delay = self.slot - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self.slot = max(self.slot + self.interval, time.monotonic())
        return time.monotonic() < self.until


class LoadError(Exception):
    """A request that got no HTTP answer (connection refused or reset, timeout, malformed reply)."""


class RawClient:
    """One keep-alive HTTP/1.1 connection, spoken directly over asyncio streams.

    The load generator shares the machine with the server: httpx spends about 2 ms of CPU on each
    request, more than the server does for ``GET envs``, so 25 httpx clients saturate a core and
    measure their own queue. This client spends a few tens of microseconds; it handles what
    tornado sends (Content-Length or chunked bodies, ``Connection: close``) and nothing more.
    """

    def __init__(self, api: str) -> None:
        parts = urlsplit(api)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/") + "/"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, token: str, body: Any = None) -> tuple[int, bytes]:
        try:
            return await asyncio.wait_for(self._exchange(method, path, token, body), REQUEST_TIMEOUT)
        # IncompleteReadError is an EOFError; LookupError and ValueError: a malformed status line
        except (OSError, EOFError, LookupError, ValueError, asyncio.TimeoutError) as err:
            await self.aclose()  # the next request opens a new connection
            raise LoadError(type(err).__name__) from err

    async def _exchange(self, method: str, path: str, token: str, body: Any) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        payload = b"" if body is None else json.dumps(body).encode()
        head = (
            f"{method} {self.prefix}{path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: token {token}\r\nAccept: application/json\r\n"
            + ("Content-Type: application/json\r\n" if body is not None else "")
            + f"Content-Length: {len(payload)}\r\n\r\n"
        )
        self.writer.write(head.encode("latin-1") + payload)
        lines = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            data = bytearray()
            while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
                data += await self.reader.readexactly(size + 2)
                del data[-2:]
            await self.reader.readuntil(b"\r\n")  # no trailers from tornado: the final empty line
            content = bytes(data)
        else:
            content = await self.reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            await self.aclose()
        return status, content

    async def aclose(self) -> None:
        writer, self.reader, self.writer = self.writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


class HttpxClient:
    """The same through httpx (``--client httpx``): the cost of a full-featured client, for comparison."""

    def __init__(self, api: str) -> None:
        import httpx

        self._errors = (httpx.HTTPError,)
        self.client = httpx.AsyncClient(
            base_url=f"{api}/",
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            timeout=httpx.Timeout(REQUEST_TIMEOUT),
            trust_env=False,
        )

    async def request(self, method: str, path: str, token: str, body: Any = None) -> tuple[int, bytes]:
        try:
            response = await self.client.request(
                method, path, json=body, headers={"Authorization": f"token {token}"}
            )
        except self._errors as err:
            raise LoadError(type(err).__name__) from err
        return response.status_code, response.content

    async def aclose(self) -> None:
        await self.client.aclose()


Client = RawClient | HttpxClient
CLIENTS: dict[str, type[RawClient] | type[HttpxClient]] = {"raw": RawClient, "httpx": HttpxClient}


async def get_envs(client: Client, token: str, run: Run, pace: Pace) -> None:
    """One client listing the environments until the run is over."""
    stats = run.endpoints[GET_ENVS]
    while await pace.next():
        start = time.perf_counter()
        try:
            status, content = await client.request("GET", "envs", token)
        except LoadError as err:
            stats.errors[str(err)] += 1
            continue
        elapsed = time.perf_counter() - start
        if status != 200:
            stats.errors[f"HTTP {status}"] += 1
        elif not _field(content, "envs"):
            stats.errors["no environments in the answer"] += 1
        else:
            stats.latencies.append(elapsed)


async def post_requests(client: Client, token: str, run: Run, pace: Pace, tag: str, number: int) -> None:
    """One client filing requests with specs of its own until the run is over."""
    stats = run.endpoints[POST_REQUESTS]
    for n in itertools.count():
        if not await pace.next():
            return
        # A package name of this run, client and round: no two POSTs ask for the same thing.
        body = {
            "env": ENV,
            "specs": [f"loadpkg-{tag}-{number}-{n} >=1.{n % 7}"],
            "reason": f"load test {tag}: client {number}, round {n}",
        }
        start = time.perf_counter()
        try:
            status, content = await client.request("POST", "requests", token, body)
        except LoadError as err:
            stats.errors[str(err)] += 1
            continue
        elapsed = time.perf_counter() - start
        request = _field(content, "request") if status in (200, 201) else None
        if status not in (200, 201):
            stats.errors[f"HTTP {status}"] += 1
        elif not isinstance(request, dict) or not isinstance(request.get("id"), int):
            stats.errors["no request id in the answer"] += 1
        else:
            stats.latencies.append(elapsed)
            request_id = request["id"]
            if request_id in run.accepted:
                run.duplicates += 1
            run.accepted[request_id] = status


def _field(content: bytes, name: str) -> Any:
    """``name`` of a JSON object answer; None when the answer is no such object."""
    try:
        data = json.loads(content)
    except ValueError:
        return None
    return data.get(name) if isinstance(data, dict) else None


@dataclass
class Load:
    """The shape of the load."""

    clients: int
    posting: int  # how many of the clients POST; the others GET
    duration: float
    interval: float  # seconds between a client's requests; 0: back to back
    tokens: list[str]
    client: str = "raw"  # key of CLIENTS


async def load(api: str, shape: Load, tag: str, server_pid: int | None = None) -> Run:
    """Run the clients against ``api`` for ``shape.duration`` seconds."""
    run = Run()
    # One connection per client, as 50 browsers would have (keep-alive, no pipelining).
    pool = [CLIENTS[shape.client](api) for _ in range(shape.clients)]
    tokens = [shape.tokens[i % len(shape.tokens)] for i in range(shape.clients)]
    try:
        # Warm up before the clock starts: every connection open,
        answers = await asyncio.gather(
            *(c.request("GET", "whoami", t) for c, t in zip(pool, tokens, strict=True))
        )
        for status, _ in answers:
            if status != 200:
                raise SystemExit(f"GET whoami answered {status}: are the tokens right?")
        # and both endpoints used once (the listing's caches, the store's compiled statements). This
        # request's reason is not the run's: it is not counted below.
        warm_up = {"env": ENV, "specs": [f"loadpkg-{tag}-warm-up"], "reason": f"load warm-up {tag}"}
        for method, path, body in (("GET", "envs", None), ("POST", "requests", warm_up)):
            status, _ = await pool[0].request(method, path, tokens[0], body)
            if status not in (200, 201):
                raise SystemExit(f"{method} {path} answered {status} before the run")
        started = time.monotonic()
        until = started + shape.duration
        cpu = Cpu(server_pid)
        tasks = []
        for i, (client, token) in enumerate(zip(pool, tokens, strict=True)):
            pace = Pace(until, shape.interval, shape.interval * i / shape.clients)
            if i >= shape.posting:
                tasks.append(get_envs(client, token, run, pace))
            else:
                tasks.append(post_requests(client, token, run, pace, tag, i))
        await asyncio.gather(*tasks)
        run.seconds = time.monotonic() - started
        run.client_cpu, run.server_cpu = cpu.used()
    finally:
        await asyncio.gather(*(c.aclose() for c in pool))
    return run


class Cpu:
    """CPU seconds this process (the clients) and the server (when it is ours) use from now on."""

    def __init__(self, server_pid: int | None) -> None:
        self.server_pid = server_pid
        self.start = (self._client(), self._server())

    def used(self) -> tuple[float, float | None]:
        client, server = self._client(), self._server()
        started_server = self.start[1]
        return client - self.start[0], (
            None if server is None or started_server is None else server - started_server
        )

    @staticmethod
    def _client() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    def _server(self) -> float | None:
        # utime and stime, fields 14 and 15 of /proc/PID/stat (Linux); None elsewhere
        try:
            fields = Path(f"/proc/{self.server_pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stored_ids(database_url: str, tag: str) -> set[int]:
    """Ids of this run's requests in the store itself (not through the server)."""
    from jupyter_envshare.store import RequestStore

    with RequestStore(database_url) as store:
        found = store.list(env=ENV, limit=10**7)
    return {r.id for r in found if f"load test {tag}:" in r.reason}


async def api_ids(api: str, token: str, ids: set[int]) -> set[int]:
    """The accepted ids the server can still show, looked up one by one (no store access)."""
    found: set[int] = set()
    client = RawClient(api)
    try:
        for request_id in sorted(ids):
            status, _ = await client.request("GET", f"requests/{request_id}", token)
            if status == 200:
                found.add(request_id)
    finally:
        await client.aclose()
    return found


def report(run: Run, stored: set[int], shape: Load, *, users: int, full_count: bool) -> bool:
    """Print the figures; True when every target is met."""
    pacing = f"one request every {shape.interval:g} s each" if shape.interval else "back to back"
    print(
        f"{shape.clients} clients ({shape.clients - shape.posting} GET envs, {shape.posting} POST "
        f"requests; {pacing}), {users} users, {run.seconds:.1f} s, {shape.client} HTTP client"
    )
    print(f"{'endpoint':<15}{'requests':>10}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}  errors")
    for name, stats in run.endpoints.items():
        ms = [x * 1000 for x in stats.latencies]
        errors = ", ".join(f"{k}: {v}" for k, v in stats.errors.most_common()) or "0"
        print(
            f"{name:<15}{stats.count:>10}{stats.count / run.seconds:>9.1f}{percentile(ms, 50):>9.1f}"
            f"{percentile(ms, 99):>9.1f}{max(ms, default=float('nan')):>9.1f}  {errors}"
        )
    accepted = set(run.accepted)
    created = sum(1 for status in run.accepted.values() if status == 201)
    lost = accepted - stored
    extra = stored - accepted if full_count else set()
    print(
        f"POST requests: {len(run.accepted)} accepted ({created} created, {len(run.accepted) - created} "
        f"folded into another); stored: {len(stored)}; lost: {len(lost)}"
        + (f"; stored but never acknowledged: {len(extra)}" if full_count else " (looked up by id)")
    )
    total = sum(stats.count for stats in run.endpoints.values()) or 1
    parts = [] if run.server_cpu is None else [("server", run.server_cpu)]
    parts.append(("load generator", run.client_cpu))
    print(
        "CPU: "
        + ", ".join(f"{who} {cpu:.1f} s ({cpu / total * 1000:.2f} ms/request)" for who, cpu in parts)
        + f"; {os.cpu_count()} cores x {run.seconds:.1f} s"
    )
    get_p99 = percentile([x * 1000 for x in run.endpoints[GET_ENVS].latencies], 99)
    failed = sum(sum(s.errors.values()) for s in run.endpoints.values())
    targets = {
        "zero errors": failed == 0,
        f"GET envs p99 < 100 ms ({get_p99:.1f} ms)": get_p99 < 100 or shape.posting == shape.clients,
        # each POST asked for specs of its own, so each must have created a request of its own
        "stored == accepted, nothing lost": not lost
        and not extra
        and not run.duplicates
        and created == len(run.accepted),
    }
    for name, ok in targets.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    return all(targets.values())


async def main_async(args: argparse.Namespace) -> bool:
    tag = uuid.uuid4().hex[:8]  # marks this run's requests in the store
    if args.url:
        check_loopback(args.url)
        api = args.url.rstrip("/") + "/envshare/api"
        shape = Load(args.clients, args.posting, args.duration, args.interval, [args.token], args.client)
        print(f"server: {args.url} (given)")
        run = await load(api, shape, tag)
        if args.database_url:
            stored = await asyncio.to_thread(stored_ids, args.database_url, tag)
        else:
            stored = await api_ids(api, args.admin_token or args.token, set(run.accepted))
        return report(run, stored, shape, users=1, full_count=bool(args.database_url))

    from tests.test_openapi import LiveServer, build_site

    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="envshare-load-"))
        database_url = None
        if args.database == "postgresql":
            from tests.postgres import running_postgres

            # a cluster of this run's own (Debian's PostgreSQL, as the tests use), removed afterwards
            database_url = stack.enter_context(running_postgres()).create_database()
        base = Path(tmp)
        inst = await asyncio.to_thread(build_site, base)
        server = LiveServer(base, inst, database_url=database_url)
        await asyncio.to_thread(server.start)
        try:
            print(f"server: {server.url} (started here; {server.database_url})")
            tokens = [
                f"load{i}-token" for i in range(args.users)
            ]  # users load0, load1, ... (tests/identity.py)
            shape = Load(args.clients, args.posting, args.duration, args.interval, tokens, args.client)
            run = await load(server.api, shape, tag, server.process.pid if server.process else None)
            stored = await asyncio.to_thread(stored_ids, server.database_url, tag)
            return report(run, stored, shape, users=args.users, full_count=True)
        finally:
            await asyncio.to_thread(server.stop)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients, half GET, half POST")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load")
    parser.add_argument(
        "--interval",
        type=float,
        default=0.0,
        help="seconds between the starts of a client's requests (default 0: back to back)",
    )
    parser.add_argument(
        "--client",
        choices=sorted(CLIENTS),
        default="raw",
        help="the HTTP client of the load generator (default raw: keep-alive HTTP/1.1 on asyncio streams)",
    )
    parser.add_argument("--posting", type=int, help="how many of the clients POST (default: half)")
    parser.add_argument("--users", type=int, default=5, help="distinct users (own server only)")
    parser.add_argument(
        "--database",
        choices=["sqlite", "postgresql"],
        default="sqlite",
        help="the request store of the server started here (postgresql: a cluster of the run's own)",
    )
    parser.add_argument("--url", help="a running server's base URL (loopback only) instead of our own")
    parser.add_argument("--token", help="with --url: the token every client uses")
    parser.add_argument("--admin-token", help="with --url: an admin's token, to look requests up")
    parser.add_argument("--database-url", help="with --url: the server's database, to count requests in it")
    args = parser.parse_args()
    if not 2 <= args.clients <= MAX_CLIENTS:
        parser.error(f"--clients must be between 2 and {MAX_CLIENTS}")
    if not 0 < args.duration <= MAX_DURATION:
        parser.error(f"--duration must be more than 0 and at most {MAX_DURATION:.0f} s")
    if args.posting is None:
        args.posting = args.clients // 2
    if not 0 <= args.posting <= args.clients:
        parser.error("--posting must be between 0 and --clients")
    if not 0 <= args.interval <= 10:
        parser.error("--interval must be between 0 and 10 s")
    if not 1 <= args.users <= 100:
        parser.error("--users must be between 1 and 100")
    if args.url and not args.token:
        parser.error("--url needs --token")
    ok = asyncio.run(main_async(args))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
