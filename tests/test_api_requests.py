"""The requests API over real HTTP with two users and an admin, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from jupyter_envshare.sidecar import stamp
from jupyter_envshare.testing.layouts import SharedInstallation

from .conftest import envshare_config
from .identity import token
from .postgres import PostgresServer

ALICE, BOB, ADMIN, HUBADMIN = token("alice"), token("bob"), token("admin"), token("hubadmin")
HOSTILE = "<script>alert('x')</script> '; DROP TABLE envshare_requests; -- \x07\x1b[31m ünï \u202e"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'requests.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def jp_server_config(mutable_site: SharedInstallation, database_url: str, tmp_path: Path) -> dict[str, Any]:
    spec = tmp_path / "environment.yml"
    spec.write_text("name: isis4.3.0\nchannels:\n  - local\ndependencies:\n  - isis ==4.3.0\n  - ipykernel\n")
    stamp(mutable_site.prefix("isis4.3.0"), spec=spec)
    return {
        "ServerApp": {
            "jpserver_extensions": {"jupyter_envshare": True},
            # alice, bob and admin are told apart by their tokens (tests/identity.py)
            "identity_provider_class": "tests.identity.NamedTokenUsers",
        },
        "EnvShare": envshare_config(
            mutable_site,
            refresh_interval=0,
            database_url=database_url,
            admin_users=["admin"],
            denied_envs=["nokernel"],
        ),
    }


async def call(
    jp_fetch: Any, method: str, *path: str, who: dict[str, str], body: Any = None, **params: str
) -> Any:
    kwargs: dict[str, Any] = {"method": method, "headers": who, "params": params}
    if body is not None:
        kwargs["body"] = body if isinstance(body, (str, bytes)) else json.dumps(body)
    response = await jp_fetch("envshare", "api", *path, **kwargs)
    return response.code, json.loads(response.body)


async def fails(
    jp_fetch: Any, method: str, *path: str, who: dict[str, str], body: Any = None
) -> tuple[int, Any]:
    with pytest.raises(HTTPClientError) as caught:
        await call(jp_fetch, method, *path, who=who, body=body)
    assert caught.value.response is not None
    return caught.value.code, json.loads(caught.value.response.body)


async def test_whoami_tells_users_and_admins_apart(jp_fetch: Any) -> None:
    assert (await call(jp_fetch, "GET", "whoami", who=ALICE))[1] == {"name": "alice", "is_admin": False}
    assert (await call(jp_fetch, "GET", "whoami", who=ADMIN))[1] == {"name": "admin", "is_admin": True}
    assert (await call(jp_fetch, "GET", "whoami", who=HUBADMIN))[1] == {"name": "hubadmin", "is_admin": True}


async def test_full_lifecycle_with_supporters_and_patch(jp_fetch: Any) -> None:
    # Given alice asks for polars in isis4.3.0
    code, made = await call(
        jp_fetch,
        "POST",
        "requests",
        who=ALICE,
        body={"env": "isis4.3.0", "specs": ["polars >=1.0"], "reason": "joins"},
    )
    assert code == 201
    assert made["created"] is True
    request = made["request"]
    rid = str(request["id"])
    assert (request["status"], request["requester"], request["specs"]) == ("open", "alice", ["polars >=1.0"])
    # When bob asks for the same thing, it folds into alice's request as his support
    code, folded = await call(
        jp_fetch,
        "POST",
        "requests",
        who=BOB,
        body={"env": "isis4.3.0", "specs": ["polars>=1.0"], "reason": "me too"},
    )
    assert code == 200
    assert folded["created"] is False
    assert folded["request"]["id"] == request["id"]
    assert [s["user"] for s in folded["request"]["supporters"]] == ["bob"]
    listed = (await call(jp_fetch, "GET", "requests", who=BOB, env="isis4.3.0", status="open"))[1]["requests"]
    assert [r["id"] for r in listed] == [request["id"]]
    assert [r["id"] for r in (await call(jp_fetch, "GET", "requests", who=BOB, mine="1"))[1]["requests"]] == [
        request["id"]
    ]
    # Then bob may neither approve it nor withdraw it; alice may not approve it either
    assert (await fails(jp_fetch, "PATCH", "requests", rid, who=BOB, body={"action": "approve"}))[0] == 403
    assert (await fails(jp_fetch, "PATCH", "requests", rid, who=BOB, body={"action": "withdraw"}))[0] == 403
    assert (await fails(jp_fetch, "PATCH", "requests", rid, who=ALICE, body={"action": "approve"}))[0] == 403
    # When the admin approves with a comment
    _, approved = await call(
        jp_fetch, "PATCH", "requests", rid, who=ADMIN, body={"action": "approve", "comment": "next rebuild"}
    )
    assert approved["request"]["status"] == "approved"
    assert approved["request"]["admin_comment"] == "next rebuild"
    # Then the patch adds polars to the environment's spec
    _, patch = await call(jp_fetch, "GET", "requests", rid, "patch", who=ADMIN)
    assert patch["env"] == "isis4.3.0"
    assert "+  - polars >=1.0" in patch["diff"]
    # and once the rebuilt environment is published, it is done; every change is in the history
    _, done = await call(
        jp_fetch, "PATCH", "requests", rid, who=ADMIN, body={"action": "done", "comment": "in 4.3.1"}
    )
    history = [(h["actor"], h["from_status"], h["to_status"]) for h in done["request"]["history"]]
    assert history == [("alice", None, "open"), ("admin", "open", "approved"), ("admin", "approved", "done")]
    # and alice sees the outcome among her requests
    mine = (await call(jp_fetch, "GET", "requests", who=ALICE, mine="1"))[1]["requests"]
    assert (mine[0]["status"], mine[0]["admin_comment"]) == ("done", "in 4.3.1")
    # and a done request cannot be approved again
    code, body = await fails(jp_fetch, "PATCH", "requests", rid, who=ADMIN, body={"action": "approve"})
    assert code == 409
    assert body["message"]


async def test_withdraw_by_requester(jp_fetch: Any) -> None:
    _, made = await call(
        jp_fetch,
        "POST",
        "requests",
        who=BOB,
        body={"env": "rstats", "specs": ["r-ggplot2"], "reason": "plots"},
    )
    rid = str(made["request"]["id"])
    assert (await fails(jp_fetch, "PATCH", "requests", rid, who=ALICE, body={"action": "withdraw"}))[0] == 403
    _, withdrawn = await call(jp_fetch, "PATCH", "requests", rid, who=BOB, body={"action": "withdraw"})
    assert withdrawn["request"]["status"] == "withdrawn"
    assert (await fails(jp_fetch, "GET", "requests", rid, "patch", who=ADMIN))[0] == 409


@pytest.mark.parametrize(
    ("body", "code", "field", "words"),
    [
        ({"env": "no-such-env", "specs": ["x"], "reason": "r"}, 404, None, "No shared environment"),
        ({"env": "nokernel", "specs": ["x"], "reason": "r"}, 404, None, "No shared environment"),
        (
            {"env": "isis4.3.0", "specs": ["polars >>= 1"], "reason": "r"},
            400,
            "specs[0]",
            "not a valid conda package spec",
        ),
        ({"env": "isis4.3.0", "specs": [], "reason": "r"}, 400, "specs", "one or more package specs"),
        ({"env": "isis4.3.0", "specs": ["x"], "reason": ""}, 400, "reason", "what you need it for"),
        ({"env": "isis4.3.0", "specs": ["x"] * 51, "reason": "r"}, 400, "specs", "at most 50"),
        ("not json", 400, None, "not JSON"),
        ("[1, 2]", 400, None, "JSON object"),
        ({"env": "isis4.3.0", "specs": ["x"], "reason": "r" * 70000}, 413, None, "larger than 64 KiB"),
    ],
)
async def test_bad_requests_get_json_errors(
    jp_fetch: Any, body: Any, code: int, field: str | None, words: str
) -> None:
    got, error = await fails(jp_fetch, "POST", "requests", who=ALICE, body=body)
    assert got == code
    assert error["code"] == code
    assert words in error["message"]
    if field is not None:
        assert field in error["errors"]


async def test_hostile_text_is_stored_and_returned_intact(jp_fetch: Any) -> None:
    _, made = await call(
        jp_fetch,
        "POST",
        "requests",
        who=ALICE,
        body={"env": "isis4.3.0", "specs": ["polars"], "reason": HOSTILE},
    )
    rid = str(made["request"]["id"])
    response = await jp_fetch("envshare", "api", "requests", rid, method="GET", headers=ALICE)
    assert response.headers["Content-Type"].startswith("application/json")
    assert b"<script>" not in response.body  # JSON-escaped on the wire ...
    assert json.loads(response.body)["request"]["reason"] == HOSTILE  # ... and intact


async def test_usage_is_for_admins(jp_fetch: Any) -> None:
    assert (await fails(jp_fetch, "GET", "usage", who=ALICE))[0] == 403
    _, usage = await call(jp_fetch, "GET", "usage", who=ADMIN)
    assert set(usage) == {"launches", "attempts", "envs"}
    # every environment of the installation, none launched yet
    assert {e["env"] for e in usage["envs"]} >= {"isis4.2.0", "isis4.3.0"}
    assert {(e["launches"], e["last_used"], e["present"]) for e in usage["envs"]} == {(0, None, True)}


async def test_env_detail_reports_node_fingerprints(jp_fetch: Any, jp_serverapp: Any) -> None:
    app = jp_serverapp.extension_manager.extension_apps["jupyter_envshare"].pop()
    app._refresh_blocking()  # what the periodic refresh does: statuses, events, fingerprints
    detail = (await call(jp_fetch, "GET", "envs", "isis4.3.0", who=ALICE))[1]
    assert detail["nodes"]["agree"] is True
    assert len(detail["nodes"]["servers"]) == 1
    # When another node reports a different package set for the same environment
    app.store.record_fingerprint("isis4.3.0", "gpu-07", "0" * 64, 3)
    detail = (await call(jp_fetch, "GET", "envs", "isis4.3.0", who=ALICE))[1]
    assert detail["nodes"]["agree"] is False
    assert "gpu-07" in {s["host"] for s in detail["nodes"]["servers"]}


class TestDatabaseOutage:
    """PostgreSQL stopped mid-run: requests answer 503, kernels keep listing and starting."""

    @pytest.fixture
    def database_url(self, private_postgres: PostgresServer) -> str:
        return private_postgres.create_database()

    async def test_503_while_down_and_recovery(self, jp_fetch: Any, private_postgres: PostgresServer) -> None:
        body = {"env": "isis4.3.0", "specs": ["polars"], "reason": "joins"}
        assert (await call(jp_fetch, "POST", "requests", who=ALICE, body=body))[0] == 201
        # When the database stops
        private_postgres.stop()
        # Then the request endpoints say so, clearly, and kernels are unaffected
        code, error = await fails(jp_fetch, "GET", "requests", who=ALICE)
        assert code == 503
        assert "request service is unavailable" in error["message"]
        assert (await fails(jp_fetch, "POST", "requests", who=ALICE, body=body))[0] == 503
        specs = json.loads((await jp_fetch("api", "kernelspecs", method="GET")).body)["kernelspecs"]
        assert "conda-env-isis4.3.0-py" in specs
        started = await jp_fetch(
            "api", "kernels", method="POST", body=json.dumps({"name": "conda-env-isis4.3.0-py"})
        )
        kernel = json.loads(started.body)
        assert started.code == 201
        await jp_fetch("api", "kernels", kernel["id"], method="DELETE")
        # When it returns, so does the service
        private_postgres.start()
        listed = (await call(jp_fetch, "GET", "requests", who=ALICE))[1]["requests"]
        assert [r["specs"] for r in listed] == [["polars"]]
