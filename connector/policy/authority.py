"""Decide-and-record for everything that is not a Gmail access: lifecycle changes and audit reads.

    authority.authorize(change)       decide(); a refusal is recorded and raised as AccessDenied
    ...make the change inside a transaction...
    authority.record(change)          the allowed change, appended before the transaction commits

`permit()` does both at once for reads (an audit query, the owner's access history, a consent
listing): the read is recorded before anything is returned. Gmail accesses go through the gate,
which uses the same `decide()` and the same `Recorder`.
"""

from __future__ import annotations

from dataclasses import dataclass

from audit.event import AppendReceipt
from connector.clock import Clock, system_clock
from connector.errors import AccessDenied
from connector.policy.facts import ApprovalFact, ConsentFact, PolicyRequest
from connector.policy.ports import AccountOwners
from connector.policy.recorder import Change, Recorder
from connector.policy.rules import DEFAULT_RULE, Allow, Deny, decide
from connector.policy.vocab import Reason


@dataclass(eq=False)
class Authority:
    recorder: Recorder
    # None: no account is ever known (deny by default), for account-less work such as key
    # rotation.
    owners: AccountOwners | None
    clock: Clock = system_clock

    async def verdict(
        self,
        change: Change,
        *,
        approval: ApprovalFact | None = None,
        consent: ConsentFact | None = None,
    ) -> Allow | Deny:
        """The policy's answer for `change`, with the account's owner looked up (no record)."""
        if change.purpose is None:  # no purpose, no grant: deny by default
            return Deny(DEFAULT_RULE, (Reason.PURPOSE_NOT_PERMITTED,))
        account_id = change.account_id
        owner = None
        if account_id is not None and self.owners is not None:
            owner = await self.owners.owner_of(account_id)
        return decide(
            PolicyRequest(
                change.actor, change.operation, change.purpose, self.clock(),
                account_id=account_id, account_owner=owner, basis=change.basis,
                approval=approval, consent=consent,
            )
        )  # fmt: skip

    async def authorize(
        self,
        change: Change,
        *,
        approval: ApprovalFact | None = None,
        consent: ConsentFact | None = None,
    ) -> None:
        """Return if the policy allows `change`; otherwise record the refusal and raise."""
        verdict = await self.verdict(change, approval=approval, consent=consent)
        if isinstance(verdict, Deny):
            await self.recorder.change(change, verdict)
            raise AccessDenied(verdict)

    async def record(
        self,
        change: Change,
        *,
        reasons: tuple[str, ...] = (),
        failed: bool = False,
        error_code: str | None = None,
    ) -> AppendReceipt:
        """Record an allowed change that was made (or that failed, with `failed`)."""
        return await self.recorder.change(
            change, reasons=reasons, failed=failed, error_code=error_code
        )

    async def permit(self, change: Change) -> AppendReceipt:
        """Authorize and record at once: for reads, recorded before anything is returned."""
        await self.authorize(change)
        return await self.record(change)
