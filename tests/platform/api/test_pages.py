"""The HTML the API serves and the method list: an HTML 404 inside /dashboard, problem JSON
with a readable type elsewhere, API docs from local files, methods from the registry."""

from __future__ import annotations

import re

from veilchain.anonymizer.methods import REGISTRY


def test_unknown_dashboard_page_is_an_html_404(stack):
    r = stack.client.get("/dashboard/nope")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")
    assert "Page not found" in r.text and 'href="/dashboard/"' in r.text
    assert "content-security-policy" in r.headers  # the dashboard's CSP holds on it too


def test_unknown_api_route_has_a_readable_problem_type(stack):
    r = stack.client.get("/no-such-route")
    assert r.status_code == 404
    body = r.json()
    assert body["type"].endswith("/not-found"), body
    assert "h-t-t-p" not in body["type"]


def test_docs_load_nothing_from_outside(stack):
    for page in ("/docs", "/redoc"):
        html = stack.client.get(page).text
        urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html) + re.findall(
            r"""url: *['"]([^'"]+)['"]""", html
        )
        assert urls, page
        assert all(u.startswith("/") for u in urls), (page, urls)
        for u in urls:
            assert stack.client.get(u).status_code == 200, u


def test_methods_come_from_the_registry(stack):
    body = stack.client.get("/methods").json()
    assert [m["name"] for m in body["data"]] == [m.name for m in REGISTRY]
    by_name = {m["name"]: m for m in body["data"]}
    assert by_name["dppix"]["takes_epsilon"] and not by_name["mask"]["takes_epsilon"]
    assert body["min_epsilon"] < body["default_epsilon"] < body["max_epsilon"]
