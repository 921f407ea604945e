"""What the pack says about the code: why each scope and no narrower one, and which control meets
which assessment requirement, with where in the code and the tests it is proved.

The requirement ids are OWASP ASVS 4.0.3's (the basis of the CASA assessment Google asks of apps
with restricted Gmail scopes). Every path named here is checked to exist by the tests, so the
table cannot point at code that moved.
"""

from __future__ import annotations

from dataclasses import dataclass

from connector.accounts import scopes

# Why no narrower scope would do, per scope the connector may request.
WHY_NOT_NARROWER: dict[str, str] = {
    scopes.GMAIL_READONLY: "gmail.metadata cannot open message bodies or attachments and refuses "
    "search queries (q); reading and searching the inbox needs gmail.readonly, which still "
    "cannot change or delete anything.",
    scopes.GMAIL_SEND: "gmail.send is the narrowest scope that sends; it gives no read access.",
    scopes.GMAIL_COMPOSE: "Drafts cannot be created, edited or sent with gmail.send; "
    "gmail.compose is the narrowest scope for drafts.",
    scopes.GMAIL_MODIFY: "gmail.labels manages label names only and cannot apply labels to "
    "messages, archive, mark read or trash; gmail.modify is the narrowest that does, and it "
    "excludes permanent deletion (https://mail.google.com/ is never requested).",
    scopes.GMAIL_SETTINGS_BASIC: "Send-as addresses and the vacation responder are settings; "
    "gmail.settings.basic is the narrowest settings scope (settings.sharing is not requested).",
    scopes.USERINFO_EMAIL: "Non-sensitive; only shows which address is linked. The user may untick "
    "it.",
}


@dataclass(frozen=True, slots=True)
class Control:
    requirement: str  # ASVS 4.0.3 id
    text: str  # the requirement, in short
    control: str  # how the connector meets it
    code: tuple[str, ...]  # repository paths
    tests: tuple[str, ...]


CONTROLS: tuple[Control, ...] = (
    Control("V1.1.2", "Threat modelling for the design",
            "STRIDE threat model kept with the code", ("docs/threat-model.md",),
            ("tests/test_architecture.py",)),
    Control("V1.4.1", "Access control enforced at a trusted enforcement point",
            "Every Gmail call goes through the policy gate; only the gate imports the client",
            ("connector/policy/gate.py", "connector/policy/rules.py"),
            ("tests/test_architecture.py", "tests/test_layering.py", "tests/policy/test_gate.py")),
    Control("V4.1.3", "Least privilege: users reach only what they are authorised for",
            "Grants per actor kind, operation and purpose; a human reads only with a consent or "
            "an approved request naming the messages",
            ("connector/policy/rules.py", "connector/policy/consents.py",
             "connector/policy/access_requests.py"),
            ("tests/policy/test_rules_table.py", "tests/policy/test_rules_properties.py",
             "tests/e2e/test_human_access.py")),
    Control("V4.1.5", "Access controls fail securely (deny by default)",
            "Anything no grant allows is refused with reasons; forbidden purposes always refused",
            ("connector/policy/rules.py",),
            ("tests/policy/test_rules_default_deny.py", "tests/policy/test_rules_pinned.py")),
    Control("V4.2.1", "Protection against insecure direct object references",
            "The owner check binds every account id to the caller's own accounts",
            ("connector/policy/rules.py", "connector/web/auth.py"),
            ("tests/policy/test_rules_combined.py", "tests/e2e/test_refusals_audited.py")),
    Control("V5.1.3", "Input validated with allow lists",
            "Route parameters and bodies validated before any work; problem+json on refusal",
            ("connector/web/validation.py", "connector/web/problems.py"),
            ("tests/e2e/test_inputs.py", "tests/e2e/test_fuzz_openapi.py")),
    Control("V3.4.2", "Session cookies are HttpOnly, Secure and SameSite",
            "The web client's session cookie, CSRF token and content security policy",
            ("connector/webclient/session.py", "connector/webclient/security.py"),
            ("tests/webclient/test_attacks.py",)),
    Control("V2.10.4", "Secrets and keys are not stored in the database or source",
            "Vault keys come from the environment, a 0600 file or a KMS, never the database",
            ("connector/accounts/vault.py",),
            ("tests/linking/test_vault_store.py", "tests/linking/test_vault_pinned.py")),
    Control("V6.2.2", "Industry-proven cryptographic algorithms",
            "AES-256-GCM with associated data for tokens; Ed25519 for checkpoints and receipts",
            ("connector/accounts/vault.py", "audit/signing.py", "audit/receipts.py"),
            ("tests/linking/test_vault_store.py", "tests/audit/test_receipts.py")),
    Control("V6.4.1", "Keys are managed: created, rotated, retired",
            "Key ring with ids beside each ciphertext; `connector vault rotate` re-seals",
            ("connector/accounts/rotation.py", "connector/accounts/vault_cli.py"),
            ("tests/linking/test_vault_store.py",)),
    Control("V7.1.1", "Credentials and tokens are never logged",
            "Redaction processor; canary tokens searched for in every log and table",
            ("connector/logs.py",), ("tests/test_logs.py", "tests/e2e/test_canary.py")),
    Control("V7.1.2", "Other sensitive data is not logged",
            "Audit events hold identifiers only; addresses and queries as keyed hashes",
            ("audit/event.py", "audit/hashing.py"),
            ("tests/audit/test_encoding.py", "tests/e2e/test_canary.py")),
    Control("V7.2.2", "Every access control decision, and every failure, is logged",
            "The Recorder writes the decision before Gmail is called and the outcome before "
            "data leaves; refusals are recorded with their reasons",
            ("connector/policy/recorder.py", "connector/policy/gate.py"),
            ("tests/policy/test_gate.py", "tests/e2e/test_refusals_audited.py")),
    Control("V7.3.3", "Security logs protected from unauthorised modification",
            "Append-only tables, a hash chain, Ed25519 checkpoints, pinned keys and a witness",
            ("audit/chain.py", "audit/schema.py", "audit/pg_roles.py", "audit/witness.py"),
            ("tests/audit/test_append_only.py", "tests/audit/test_tamper.py",
             "tests/audit/test_restricted_role.py", "tests/audit/test_verify_witness_pinned.py")),
    Control("V8.3.2", "Users can remove their data on demand",
            "Unlink revokes at Google, purges every row and returns a signed receipt",
            ("connector/accounts/unlink.py", "audit/receipts.py"),
            ("tests/linking/test_unlink.py", "tests/linking/test_unlink_receipt.py")),
    Control("V8.3.8", "Personal data is deleted on a retention schedule",
            "Retention runs in the service (one instance per interval) and from the CLI, each "
            "audited: expired consents and approvals removed, dormant accounts noticed, then "
            "unlinked; the audit log sealed by period into signed segments, dropped past its "
            "retention behind signed tombstones that verify keeps checking",
            ("connector/rights/retention.py", "connector/rights/audit_archive.py",
             "audit/segment_archive.py", "audit/segment_verify.py"),
            ("tests/rights/test_retention.py", "tests/rights/test_dormant.py",
             "tests/rights/test_audit_archive.py", "tests/audit/test_segments.py")),
    Control("V13.1.4", "Authorisation decided at the route and at the resource",
            "Signed bearer JWTs; every route has a role policy entry",
            ("connector/web/auth.py", "connector/web/route_policy.py"),
            ("tests/web/test_auth.py", "tests/web/test_route_policy.py")),
)  # fmt: skip
