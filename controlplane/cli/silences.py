"""Manage silences on a running control plane: add, list, expire.

    controlplane silences add 'alertname=ProviderDown' 'region=~"eu|latam"' --duration 2h \
        --comment "provider maintenance"
    controlplane silences list [--state active]
    controlplane silences expire ID

Talks to the control plane's HTTP API (`--url`, or $CONTROLPLANE_URL, default
http://127.0.0.1:8000); writes send the token from $CONTROLPLANE_API_TOKEN.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from typing import Any

import requests

from controlplane.model.times import parse_duration
from controlplane.notify.matchers import matcher_string, parse_matchers

DEFAULT_URL = "http://127.0.0.1:8000"
TOKEN_ENV = "CONTROLPLANE_API_TOKEN"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        default=os.environ.get("CONTROLPLANE_URL", DEFAULT_URL),
        help="the control plane's base URL (default $CONTROLPLANE_URL or %(default)s)",
    )
    sub = parser.add_subparsers(dest="action", required=True)
    add = sub.add_parser("add", help="silence alerts matching all the matchers")
    add.add_argument("matchers", nargs="+", help="e.g. alertname=X, 'region=~\"eu|latam\"'")
    add.add_argument("--duration", default="1h", help="how long, e.g. 2h (default %(default)s)")
    add.add_argument("--comment", required=True, help="why")
    add.add_argument(
        "--author",
        default=None,
        help="informational: the server records your token's user as the author",
    )
    listing = sub.add_parser("list", help="list silences")
    listing.add_argument("--state", choices=("pending", "active", "expired"), default=None)
    listing.add_argument("--json", action="store_true", help="print the API's JSON")
    expire = sub.add_parser("expire", help="end a silence now")
    expire.add_argument("id")


def run(args: argparse.Namespace, session: requests.Session | None = None) -> int:
    own = session is None
    session = session or requests.Session()
    try:
        return _ACTIONS[args.action](args, session)
    except _CliError as exc:
        print(f"controlplane silences: {exc}", file=sys.stderr)
        return exc.code
    finally:
        if own:
            session.close()


class _CliError(Exception):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _headers() -> dict[str, str]:
    token = os.environ.get(TOKEN_ENV, "")
    if not token:
        raise _CliError(f"set {TOKEN_ENV} to the control plane's API token", code=2)
    return {"Authorization": f"Bearer {token}"}


def _call(session: requests.Session, method: str, url: str, **kwargs: Any) -> Any:
    try:
        response = session.request(method, url, timeout=10, **kwargs)
    except requests.RequestException as exc:
        raise _CliError(f"cannot reach {url}: {exc}") from exc
    with response:
        try:
            body = response.json()
        except ValueError:
            body = {"error": "http_error", "message": response.text[:200]}
        if response.status_code >= 400:
            message = body.get("message", "") if isinstance(body, dict) else body
            raise _CliError(f"{response.status_code} {message}")
        return body


def _add(args: argparse.Namespace, session: requests.Session) -> int:
    try:
        matchers = [matcher_string(m) for text in args.matchers for m in parse_matchers(text)]
        parse_duration(args.duration)
    except ValueError as exc:
        raise _CliError(str(exc), code=2) from exc
    body = {
        "matchers": matchers,
        "duration": args.duration,
        "comment": args.comment,
        # informational: the server records the token's user as the author
        "createdBy": args.author or getpass.getuser(),
    }
    url = args.url.rstrip("/") + "/api/v1/silences"
    answer = _call(session, "POST", url, json=body, headers=_headers())
    print(answer["id"])
    return 0


def _list(args: argparse.Namespace, session: requests.Session) -> int:
    params = {"state": args.state} if args.state else {}
    answer = _call(session, "GET", args.url.rstrip("/") + "/api/v1/silences", params=params)
    if args.json:
        print(json.dumps(answer, indent=2))
        return 0
    print(f"{'ID':36}  {'STATE':8}  {'ENDS AT':24}  {'CREATED BY':12}  MATCHERS / COMMENT")
    for s in answer["silences"]:
        print(
            f"{s['id']:36}  {s['state']:8}  {s['endsAt']:24}  {s['createdBy']:12}  "
            f"{' '.join(s['matchers'])}  # {s['comment']}"
        )
    return 0


def _expire(args: argparse.Namespace, session: requests.Session) -> int:
    url = f"{args.url.rstrip('/')}/api/v1/silences/{args.id}"
    answer = _call(session, "DELETE", url, headers=_headers())  # the token says who
    print(f"{answer['id']} {answer['state']}")
    return 0


_ACTIONS = {"add": _add, "list": _list, "expire": _expire}
