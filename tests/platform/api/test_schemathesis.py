"""Property-based API tests from /openapi.json (schemathesis): every operation, with auth;
no 5xx, every status and body as documented. Examples are bounded to keep the run short."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.slow
MAX_EXAMPLES = 12
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@pytest.fixture(scope="module")
def api_schema(stack, dataset):
    svc = stack.service
    svc.grant(
        dataset["dataset_id"], stack.grantee.address, expires_at=svc.chain.block_timestamp() + 86400
    )
    stack.schemathesis_headers = {
        who: stack.headers(who) for who in ("institution", "auditor", "grantee")
    }
    return schemathesis.openapi.from_asgi("/openapi.json", stack.app)


def _who(path: str) -> str:
    if path.startswith("/audit") or path.endswith("/verifications"):
        return "auditor"
    if path.endswith(("/key", "/content")):
        return "grantee"
    return "institution"


def test_every_operation(stack, api_schema):
    """One Hypothesis run per operation; all failures are reported together."""
    failures: list[str] = []
    calls = []
    operations = [r.ok() for r in api_schema.get_all_operations()]
    assert len(operations) >= 25

    def make(op, headers):
        @given(case=op.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case):
            calls.append(op.path)
            case.call_and_validate(headers=headers, checks=CHECKS)

        return run

    for op in operations:
        try:
            make(op, stack.schemathesis_headers[_who(op.path)])()
        except (Exception, BaseExceptionGroup) as exc:  # collect; report all at the end
            failures.append(f"{op.method.upper()} {op.path}: {str(exc)[:600]}")
    assert not failures, "\n\n".join(failures)
    assert len(set(calls)) == len({op.path for op in operations}) and len(calls) > 150
