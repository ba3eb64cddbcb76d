"""Security headers: every response refuses framing and referrers; the dashboard also gets a
Content-Security-Policy that allows only its own scripts, styles and API (no inline script,
no third-party origin), so an injected string cannot run and the page cannot be framed."""

from __future__ import annotations

__all__ = ["DASHBOARD_CSP", "SecurityHeaders"]

DASHBOARD_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
_ALWAYS = [
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
]


class SecurityHeaders:
    def __init__(self, app, *, dashboard_prefix: str = "/dashboard"):
        self.app, self.prefix = app, dashboard_prefix

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        dashboard = scope["path"] == "/" or scope["path"].startswith(self.prefix)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in _ALWAYS if k not in present]
                if dashboard and b"content-security-policy" not in present:
                    extra.append((b"content-security-policy", DASHBOARD_CSP.encode()))
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)
