"""Rules with a deadline: promises, feedback, cases and billing disputes.

Each is a pure function of the group's events and the event-time clock. A deadline signal
(`promise_broken`, `feedback_unanswered`, `slow_resolution`) exists once the clock is past
its deadline and the obligation was not met in time; its evidence is only the event that
created the obligation, so it keeps the same id and content however it is later settled.
The one exception is by design: a late `promise_kept` replaces `promise_broken` with
`promise_kept_late` (the customer did get what was promised).
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.journey.events import StoredEvent, text_time
from pipeline.journey.rules import Context, Outcome, signal
from pipeline.journey.types import Signal


def evaluate(prefix: str, events: Sequence[StoredEvent], ctx: Context) -> Outcome:
    if prefix == "p":
        return promise(events, ctx)
    if prefix == "f":
        return feedback(events, ctx)
    if prefix == "c":
        return case(events, ctx)
    return dispute(events, ctx)


def _first(events: Sequence[StoredEvent], kind: str) -> StoredEvent | None:
    return next((e for e in events if e.type == kind), None)


def _first_after(
    events: Sequence[StoredEvent], kind: str, start: StoredEvent
) -> StoredEvent | None:
    return next((e for e in events if e.type == kind and e.order > start.order), None)


def promise(events: Sequence[StoredEvent], ctx: Context) -> Outcome:
    """Kept on time (+), kept late (-), or broken once the clock passes `due_at` (-)."""
    made, kept = _first(events, "promise_made"), _first(events, "promise_kept")
    if made is None:
        return Outcome([])
    what = str(made.attrs.get("description") or made.attrs.get("promise_id") or "promise")
    due = made.due
    if kept is not None:
        if due is None or kept.at <= due:
            reason = f"Promise '{what}'{_due_text(due)} was kept on time"
            kind = "promise_kept"
        else:
            reason = f"Promise '{what}' due {text_time(due)} was kept late, on {text_time(kept.at)}"
            kind = "promise_kept_late"
        return Outcome([signal(ctx, kind, made, kept.at, [made.id, kept.id], reason)])
    if due is None:
        return Outcome([])
    if ctx.clock > due:
        reason = f"Promise '{what}' due {text_time(due)} was not kept"
        return Outcome([signal(ctx, "promise_broken", made, due, [made.id], reason)])
    return Outcome([], due)


def _due_text(due: int | None) -> str:
    return "" if due is None else f" due {text_time(due)}"


def feedback(events: Sequence[StoredEvent], ctx: Context) -> Outcome:
    """Feedback not answered within the window is unanswered, even if answered later."""
    received = _first(events, "feedback_received")
    if received is None:
        return Outcome([])
    deadline = received.at + ctx.model.feedback_answer_us
    answered = _first(events, "feedback_answered")
    if answered is not None and answered.at <= deadline:
        return Outcome([])
    if ctx.clock > deadline:
        fid = received.attrs.get("feedback_id") or received.id
        days = ctx.model.feedback_answer_us / 86_400_000_000
        reason = (
            f"Feedback '{fid}' received {text_time(received.at)} was not answered within "
            f"{days:g} days"
        )
        return Outcome(
            [signal(ctx, "feedback_unanswered", received, deadline, [received.id], reason)]
        )
    return Outcome([], deadline)


def case(events: Sequence[StoredEvent], ctx: Context) -> Outcome:
    """A slow first resolution, and fast fixes of reopened cases."""
    found, deadline = _slow(events, "case_opened", "case_resolved", "Case", "case_id", ctx)
    for reopened in (e for e in events if e.type == "case_reopened"):
        fixed = _first_after(events, "case_resolved", reopened)
        if fixed is not None and fixed.at - reopened.at <= ctx.model.fast_fix_us:
            cid = reopened.attrs.get("case_id", "")
            reason = (
                f"Reopened case '{cid}' was fixed within {_hours(ctx.model.fast_fix_us)} "
                f"(in {_hours(fixed.at - reopened.at)})"
            )
            found.append(signal(ctx, "fast_fix", fixed, fixed.at, [reopened.id, fixed.id], reason))
    return Outcome(found, deadline)


def dispute(events: Sequence[StoredEvent], ctx: Context) -> Outcome:
    """A slow billing dispute, or a fast fix when resolved within the fast-fix window."""
    kinds = ("billing_dispute_opened", "billing_dispute_resolved")
    found, deadline = _slow(events, *kinds, "Billing dispute", "dispute_id", ctx)
    opened = _first(events, kinds[0])
    fixed = None if opened is None else _first_after(events, kinds[1], opened)
    if opened is not None and fixed is not None and fixed.at - opened.at <= ctx.model.fast_fix_us:
        reason = (
            f"Billing dispute '{opened.attrs.get('dispute_id', '')}' was resolved within "
            f"{_hours(ctx.model.fast_fix_us)} (in {_hours(fixed.at - opened.at)})"
        )
        found.append(signal(ctx, "fast_fix", fixed, fixed.at, [opened.id, fixed.id], reason))
    return Outcome(found, deadline)


def _slow(
    events: Sequence[StoredEvent], opens: str, resolves: str, noun: str, ident: str, ctx: Context
) -> tuple[list[Signal], int | None]:
    # Attributed to the department that opened it: it owns the case and its target.
    opened = _first(events, opens)
    if opened is None:
        return [], None
    target = ctx.model.resolution_target(opened.department)
    deadline = opened.at + target
    resolved = _first_after(events, resolves, opened)
    if resolved is not None and resolved.at <= deadline:
        return [], None
    if ctx.clock <= deadline:
        return [], deadline
    reason = (
        f"{noun} '{opened.attrs.get(ident, '')}' opened {text_time(opened.at)} was not resolved "
        f"within the {_hours(target)} target of {opened.department}"
    )
    return [signal(ctx, "slow_resolution", opened, deadline, [opened.id], reason)], None


def _hours(us: int) -> str:
    hours = us / 3_600_000_000
    return f"{hours:.0f} h" if hours >= 1 else f"{us / 60_000_000:.0f} min"
