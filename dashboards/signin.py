"""Signing in to the dashboards with a token: `GET /dash/signin` shows a form, `POST` checks
the token against config/access.yml and sets the session cookie (signed, HttpOnly,
SameSite=Strict, expiring), `GET /dash/signout` ends it. Plain Flask: the form must work before
any Dash script loads, and when anonymous reads are off nothing else is served."""

from __future__ import annotations

import html
from urllib.parse import urlsplit

from flask import Flask, Response, redirect, request
from werkzeug.wrappers import Response as BaseResponse

from controlplane.access.session import COOKIE
from dashboards.acting import Acting

_MAX_TOKEN = 512


def install(server: Flask, acting: Acting, prefix: str) -> None:
    signin, signout = f"{prefix}signin", f"{prefix}signout"

    @server.get(signin)
    def _form() -> Response:
        return _page(_next(prefix), "")

    @server.post(signin)
    def _sign_in() -> BaseResponse:
        token = request.form.get("token", "")[:_MAX_TOKEN].strip()
        user = acting.access().authenticate(token)
        if user is None:
            return _page(_next(prefix), "Unknown token.", status=401)
        response = redirect(_next(prefix), code=303)
        response.set_cookie(
            COOKIE,
            acting.sessions.issue(user),
            max_age=int(acting.sessions.ttl_s),
            path=prefix,
            httponly=True,
            secure=request.is_secure,
            samesite="Strict",
        )
        return response

    @server.get(signout)
    def _sign_out() -> BaseResponse:
        response = redirect(prefix, code=303)
        response.delete_cookie(COOKIE, path=prefix, httponly=True, samesite="Strict")
        return response


def _next(prefix: str) -> str:
    """Where to go after signing in: a path on this server under the dashboards, else home."""
    wanted = request.values.get("next", "")
    parts = urlsplit(wanted)
    if parts.scheme or parts.netloc or not parts.path.startswith(prefix) or "\\" in wanted:
        return prefix
    return wanted


def _page(next_url: str, problem: str, *, status: int = 200) -> Response:
    error = f'<p class="problem">{html.escape(problem)}</p>' if problem else ""
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in · control plane</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<style>
body {{ font-family: system-ui, sans-serif; background: #f1f3f5; color: #212529; }}
main {{ max-width: 380px; margin: 12vh auto; background: #fff; padding: 28px 32px;
        border-radius: 8px; box-shadow: 0 1px 4px rgba(0,0,0,.12); }}
h1 {{ font-size: 1.25rem; margin: 0 0 4px; }} p {{ font-size: .9rem; color: #495057; }}
input {{ width: 100%; box-sizing: border-box; padding: 8px; font: inherit; margin: 8px 0 16px;
         border: 1px solid #ced4da; border-radius: 4px; }}
button {{ background: #4c6ef5; color: #fff; border: 0; padding: 8px 16px; border-radius: 4px;
          font: inherit; cursor: pointer; }}
.problem {{ color: #c92a2a; }}
@media (prefers-color-scheme: dark) {{
  body {{ background: #1a1b1e; color: #e9ecef; }} main {{ background: #25262b; }}
  p {{ color: #adb5bd; }} input {{ background: #1a1b1e; color: #e9ecef; border-color: #495057; }}
}}
</style></head>
<body><main>
<h1>Casino control plane</h1>
<p>Sign in with your token (config/access.yml). Your role decides what you may do.</p>
{error}
<form method="post">
<input type="hidden" name="next" value="{html.escape(next_url)}">
<label for="token">Token</label>
<input id="token" name="token" type="password" autocomplete="current-password" autofocus>
<button type="submit">Sign in</button>
</form></main></body></html>"""
    return Response(body, status=status, mimetype="text/html")
