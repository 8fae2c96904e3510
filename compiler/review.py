"""Review of table writes (`review: required`, issue 17): propose, then approve.

With review required, `config put` records a proposal (sources/proposals.py) that
no compile reads; `config approve` by another author writes it as the layer's next
version. Both steps are audit lines naming who did them; the table keeps who and
when on the proposal and, for the version, the proposal and its approver.
"""

from __future__ import annotations

from typing import Any

from compiler.errors import InputError, RefusedError, UsageError
from compiler.model import LayerVersion, layer_name_from_pk
from compiler.operations import steps
from compiler.sources import ConfigStore
from compiler.sources.dynamodb import DynamoDBStore
from compiler.sources.proposals import PROPOSED, Approval, Proposal, history, propose


def review_store(store: ConfigStore) -> DynamoDBStore:
    """Proposals live in the table; a snapshot directory is reviewed in git instead."""
    if not isinstance(store, DynamoDBStore):
        raise UsageError(
            "review: required keeps proposals in the DynamoDB table; use --source dynamodb "
            "(a snapshot directory is reviewed as a git change)"
        )
    return store


def submit(store: ConfigStore, proposed: LayerVersion, *, author: str, comment: str) -> Proposal:
    """Record `proposed` as a proposal; nothing reads it until it is approved."""
    table = review_store(store)
    layer = proposed.layer_name
    with steps.step("dynamodb", layer=layer, action="propose", author=author) as out:
        made = propose(
            table, proposed.pk, proposed.config, cluster=proposed.cluster, author=author,
            comment=comment,
        )  # fmt: skip
        out.update(proposal=made.number, proposed_at=made.created_at)
    return made


def proposal(store: ConfigStore, pk: str, number: int) -> Proposal:
    """Proposal `number` of the layer while it is proposed; else bad input saying what
    there is (the pending proposals, or what became of this one)."""
    found = history(review_store(store), pk)
    layer = layer_name_from_pk(pk)
    chosen = next((p for p in found if p.number == number), None)
    if chosen is not None and chosen.state == PROPOSED:
        return chosen
    waiting = ", ".join(str(p.number) for p in reversed(found) if p.state == PROPOSED) or "none"
    if chosen is not None:
        raise InputError(
            f"{layer} proposal {number} is approved already: by {chosen.approved_by} at "
            f"{chosen.approved_at}, as version {chosen.version}; pending proposals: {waiting}"
        )
    raise InputError(
        f"{layer} has no proposal {number}; pending proposals: {waiting} "
        "(`gitops-compiler config history` lists them)"
    )


def check_approver(chosen: Proposal, approver: str) -> None:
    """Four eyes: the approver is not the author."""
    if approver == chosen.author:
        raise RefusedError(
            f"{chosen.layer_name} proposal {chosen.number} was proposed by {chosen.author!r}; "
            f"approver {approver!r} is the same author: another author approves it "
            "(--author or $GITOPS_AUTHOR names who approves)"
        )


def as_version(chosen: Proposal) -> LayerVersion:
    """The proposal as the version it would become: what the gate compiles."""
    return LayerVersion(
        pk=chosen.pk, sk="", version=0, config=chosen.config, created_at="",
        cluster=chosen.cluster,
    )  # fmt: skip


def approve(store: ConfigStore, chosen: Proposal, *, approver: str, forced: bool) -> LayerVersion:
    """Write the proposal as the layer's next version (author: the proposer) and mark it
    approved, in one transaction; an audit line names both authors."""
    table = review_store(store)
    check_approver(chosen, approver)
    inputs: dict[str, Any] = {
        "author": chosen.author,
        "approver": approver,
        "proposal": chosen.number,
    }
    with steps.step(
        "dynamodb", layer=chosen.layer_name, action="approve", forced=forced, **inputs
    ) as out:
        written = table.put(
            chosen.pk,
            chosen.config,
            cluster=chosen.cluster,
            author=chosen.author,
            comment=chosen.comment,
            approval=Approval(proposal=chosen, approver=approver),
        )
        out.update(version=written.version, approved_at=written.created_at)
    return written


def proposals_of(store: ConfigStore, pk: str) -> list[Proposal]:
    """A layer's proposals, newest first (a snapshot directory holds none)."""
    return history(store, pk) if isinstance(store, DynamoDBStore) else []
