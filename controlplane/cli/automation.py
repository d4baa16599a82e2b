"""The automation kill switch, through a running control plane's API."""

from __future__ import annotations

import argparse
import json
import os
import sys

import requests


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["status", "pause", "resume"])
    parser.add_argument("--reason", default="paused from the CLI")
    parser.add_argument(
        "--url", default=os.environ.get("CONTROLPLANE_URL", "http://127.0.0.1:8000")
    )
    parser.add_argument("--user", default=os.environ.get("USER", "cli"))


def run(args: argparse.Namespace) -> int:
    base = args.url.rstrip("/") + "/api/v1/automation"
    headers = {"Authorization": f"Bearer {os.environ.get('CONTROLPLANE_API_TOKEN', '')}"}
    try:
        if args.action == "status":
            resp = requests.get(base, timeout=10)
        else:
            resp = requests.post(
                f"{base}/{args.action}",
                headers=headers,
                timeout=10,
                json={"reason": args.reason, "user": args.user},
            )
    except requests.RequestException as exc:
        print(f"error: cannot reach {args.url}: {exc}", file=sys.stderr)
        return 1
    body = (
        resp.json() if resp.headers.get("content-type", "").startswith("application/json") else {}
    )
    if resp.status_code >= 400:
        print(f"error: {resp.status_code} {body.get('message', resp.text)}", file=sys.stderr)
        return 1
    print(json.dumps(body, indent=2))
    return 0
