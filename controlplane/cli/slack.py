"""check the Slack bot token and every channel the routing posts to

    controlplane slack check [--config FILE] [--channel C ...]

auth.test proves the token and the API URL (`slack.api_url`, the stand-in's in the demo);
then each channel of the routing file's `slack_configs` (and each --channel) is looked up:
an id with conversations.info, a `#name` in conversations.list. Nothing is posted. A channel
the bot is not a member of, or that it may not look up (missing_scope), is a warning: posting
may still work (chat:write.public). Exit 0 when nothing failed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from functools import partial

from slack_sdk import WebClient

from controlplane.config import Config, load_config
from controlplane.errors import ConfigError
from controlplane.notify.errors import NotifyError
from controlplane.notify.receivers import SlackConfig
from controlplane.notify.routing import load_routing
from controlplane.notify.slack import SlackError, call, web_client

MAX_PAGES = 50  # of conversations.list, 200 channels each
TYPES = "public_channel,private_channel"


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="slack_command", required=True)
    check = sub.add_parser("check", help="test the bot token and the configured channels")
    check.add_argument("--config", default=None, help="YAML file (default $CONTROLPLANE_CONFIG)")
    check.add_argument("--channel", action="append", default=[], help="also check this channel")


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        return _failed(str(exc))
    if not config.slack.bot_token:
        return _failed("no Slack bot token: set slack.bot_token or CONTROLPLANE_SLACK_BOT_TOKEN")
    channels, ok = _channels(config, args.channel)
    client = web_client(config.slack.api_url, config.slack.bot_token)
    print(f"Checking the token at {config.slack.api_url}")
    try:
        who = call("auth.test", client.auth_test)
    except NotifyError as exc:
        return _failed(str(exc))
    print(f"  SUCCESS: {who.get('user')} in {who.get('team')} ({who.get('url')})")
    results = [_check_channel(client, channel) for channel in channels]
    return 0 if ok and all(results) else 1


def _channels(config: Config, extra: Iterable[str]) -> tuple[list[str], bool]:
    """The routing's Slack channels and the asked ones, and whether the routing was read."""
    print(f"Reading the Slack channels of {config.routing_file}")
    try:
        routing = load_routing(config.routing_file)
    except ConfigError as exc:
        return list(dict.fromkeys(extra)), _problem(str(exc))
    found = [
        i.channel
        for r in routing.receivers.values()
        for i in r.integrations
        if isinstance(i, SlackConfig)
    ]
    print(f"  SUCCESS: {len(set(found))} channels in slack_configs")
    return list(dict.fromkeys([*found, *extra])), True


def _check_channel(client: WebClient, channel: str) -> bool:
    print(f"Checking channel {channel}")
    try:
        info = _lookup(client, channel)
    except SlackError as exc:
        if exc.code == "missing_scope":
            print(f"  WARNING: cannot look it up ({exc.code}: channels:read, groups:read)")
            return True
        return _problem(_why(exc.code, channel))
    except NotifyError as exc:
        return _problem(str(exc))
    if info is None:
        return _problem(f"{channel}: no such channel visible to the bot")
    where = f"{channel} is #{info.get('name')} ({info.get('id')})"
    if info.get("is_archived"):
        return _problem(f"{where}: archived, posting fails")
    if not info.get("is_member", False):
        print(f"  WARNING: {where}: the bot is not a member; /invite it or grant chat:write.public")
        return True
    print(f"  SUCCESS: {where}, the bot is a member")
    return True


def _lookup(client: WebClient, channel: str) -> dict[str, object] | None:
    if not channel.startswith("#"):
        response = call("conversations.info", lambda: client.conversations_info(channel=channel))
        found = response.get("channel")
        return dict(found) if isinstance(found, dict) else None
    name, cursor = channel.removeprefix("#"), ""
    for _ in range(MAX_PAGES):
        listing = partial(client.conversations_list, types=TYPES, limit=200, cursor=cursor or None)
        page = call("conversations.list", listing)
        for item in page.get("channels") or []:
            if isinstance(item, dict) and item.get("name") == name:
                return dict(item)
        cursor = str((page.get("response_metadata") or {}).get("next_cursor") or "")
        if not cursor:
            break
    return None


def _why(code: str, channel: str) -> str:
    hints = {
        "channel_not_found": "no such channel, or the bot cannot see it (a private one: invite it)",
        "invalid_auth": "the token is not valid",
    }
    return f"{channel}: {code}" + (f": {hints[code]}" if code in hints else "")


def _problem(line: str) -> bool:
    print(f"  FAILED: {line}", file=sys.stderr)
    return False


def _failed(line: str) -> int:
    _problem(line)
    return 1
