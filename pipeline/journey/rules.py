"""The signal rules of the score model, one small pure function per rule group.

A journey's events fall into *rule groups*: the contact chain, one group per promise, per
feedback item, per case, per billing dispute, and one group per event for the signals an
event carries on its own (rework, lost context, long wait, proactive update). A group's
signals depend only on the group's events, the model and the event-time clock, so an
incoming event re-evaluates just the groups it belongs to; that keeps the per-event cost
flat while the result stays the same as a full re-score (see tests).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

from pipeline.journey.events import StoredEvent, from_us, text_time
from pipeline.journey.model import ScoreModel
from pipeline.journey.types import Signal

REWORK_TYPES = frozenset(
    {"rework", "invoice_corrected", "case_reopened", "appointment_missed", "order_delayed"}
)
CONTACTS = "contacts"
SURVEY = "survey"


class Context(NamedTuple):
    """Who the signals are about, with which model, at which event time (microseconds).

    `known` holds a group's previous signals by (kind, *evidence): a signal is fully
    determined by its journey, kind, evidence and model version, so a re-evaluation reuses
    it instead of hashing and formatting its reason again (the contact chain's hot path).
    """

    journey_id: str
    customer_id: str
    model: ScoreModel
    clock: int
    known: dict[tuple[str, ...], Signal] | None = None


class Outcome(NamedTuple):
    """A group's signals and, if it still waits for something, its next deadline."""

    signals: list[Signal]
    deadline: int | None = None


def _ident(event: StoredEvent, name: str) -> str | None:
    value = event.attrs.get(name)
    return None if value is None else str(value)


def group_keys(event: StoredEvent) -> tuple[str, ...]:
    """The rule groups an event belongs to (empty when it carries no signal)."""
    kind, own = event.type, "e:" + event.id
    if kind == "contact":
        return (CONTACTS, own)
    if kind in ("case_opened", "case_resolved"):
        return ("c:" + (_ident(event, "case_id") or ""),)
    if kind == "case_reopened":
        return (own, "c:" + (_ident(event, "case_id") or ""))
    if kind in REWORK_TYPES or kind in ("handoff", "proactive_update"):
        return (own,)
    if kind.startswith("billing_dispute_"):
        return ("d:" + (_ident(event, "dispute_id") or ""),)
    if kind.startswith("promise_"):
        return _keyed(event, "p", "promise_id", kind == "promise_made")
    if kind.startswith("feedback_"):
        return _keyed(event, "f", "feedback_id", kind == "feedback_received")
    return (SURVEY,) if kind == "survey_response" else ()


def _keyed(event: StoredEvent, prefix: str, name: str, opens: bool) -> tuple[str, ...]:
    # An opening event without its id still forms a group of its own (it can be broken);
    # a closing event without an id cannot be matched to anything.
    ident = _ident(event, name)
    if ident is not None:
        return (f"{prefix}:{ident}",)
    return (f"{prefix}#{event.id}",) if opens else ()


def signal(
    ctx: Context,
    kind: str,
    by: StoredEvent,
    at: int,
    evidence: Sequence[str],
    reason: str | Callable[[], str],
) -> Signal:
    """A signal attributed to the department and stage of `by`, with the model's impact."""
    return signal_with(ctx, kind, by, ctx.model.impacts[kind], at, evidence, reason)


def signal_with(
    ctx: Context,
    kind: str,
    by: StoredEvent,
    impact: float,
    at: int,
    evidence: Sequence[str],
    reason: str | Callable[[], str],
) -> Signal:
    if ctx.known is not None:
        known = ctx.known.get((kind, *evidence))
        if known is not None and known.score_model == ctx.model.version:
            return known
    # The id must not depend on the model version or the clock: replays and re-scores of
    # the same events must upsert the same journey_signals rows.
    digest = hashlib.blake2b(
        "\x1f".join((ctx.journey_id, kind, *evidence)).encode(), digest_size=10
    ).hexdigest()
    return Signal(
        signal_id=digest,
        journey_id=ctx.journey_id,
        customer_id=ctx.customer_id,
        signal=kind,
        department=by.department,
        stage=by.stage,
        impact=impact,
        effective_at=from_us(at),
        evidence_event_ids=list(evidence),
        reason=reason if isinstance(reason, str) else reason(),
        score_model=ctx.model.version,
    )


def evaluate(key: str, events: Sequence[StoredEvent], ctx: Context) -> Outcome:
    """The signals of one rule group without a deadline (see obligations for the others)."""
    if key == CONTACTS:
        return Outcome(contact_chain(events, ctx))
    if key.startswith("e:"):
        return Outcome(own_signals(events[0], ctx))
    return Outcome([])  # the survey group: it feeds the survey score, not signals


def contact_chain(contacts: Sequence[StoredEvent], ctx: Context) -> list[Signal]:
    """Repeat contacts and first-contact resolutions along a journey's contacts."""
    found: list[Signal] = []
    previous: StoredEvent | None = None
    unresolved_before = False
    for contact in contacts:
        # `resolved` absent counts as unresolved: nobody recorded that the need was met.
        resolved = contact.attrs.get("resolved") is True
        if (
            previous is not None
            and previous.attrs.get("resolved") is not True
            and contact.at - previous.at <= ctx.model.repeat_contact_us
        ):
            found.append(repeat_contact(previous, contact, ctx))
        if resolved and not unresolved_before:
            found.append(
                signal(
                    ctx,
                    "first_contact_resolution",
                    contact,
                    contact.at,
                    [contact.id],
                    lambda contact=contact: (  # type: ignore[misc]
                        f"{_how(contact)} on {text_time(contact.at)} resolved the need at the "
                        "first contact"
                    ),
                )
            )
        unresolved_before = unresolved_before or not resolved
        previous = contact
    return found


def repeat_contact(previous: StoredEvent, contact: StoredEvent, ctx: Context) -> Signal:
    def reason() -> str:
        return (
            f"Customer had to explain again: contacted {contact.department} on "
            f"{text_time(contact.at)} after an unresolved {_how(previous).lower()} with "
            f"{previous.department} on {text_time(previous.at)}"
        )

    return signal(ctx, "repeat_contact", previous, contact.at, [previous.id, contact.id], reason)


def _how(contact: StoredEvent) -> str:
    return f"{contact.channel.capitalize()} contact" if contact.channel else "Contact"


def own_signals(event: StoredEvent, ctx: Context) -> list[Signal]:
    """The signals an event carries on its own: rework, lost context, long wait, proactive."""
    kind, attrs = event.type, event.attrs
    if kind in REWORK_TYPES:
        found = [signal(ctx, "rework", event, event.at, [event.id], rework_reason(event))]
        return found
    if kind == "handoff" and attrs.get("context_transferred") is False:
        reason = (
            f"Handoff from {event.department} to {attrs.get('to_department', 'another department')}"
            f" on {text_time(event.at)} lost the context: the customer had to explain again"
        )
        return [signal(ctx, "context_lost", event, event.at, [event.id], reason)]
    if kind == "proactive_update":
        about = attrs.get("about")
        reason = f"Customer was told before asking{f': {about}' if about else ''}"
        return [signal(ctx, "proactive_update", event, event.at, [event.id], reason)]
    if kind == "contact":
        return long_wait(event, ctx)
    return []


def long_wait(contact: StoredEvent, ctx: Context) -> list[Signal]:
    """-2 per channel threshold the wait exceeded (2.5x the threshold exceeds it twice)."""
    wait = contact.attrs.get("wait_seconds")
    if isinstance(wait, bool) or not isinstance(wait, int | float) or not math.isfinite(wait):
        return []
    threshold = ctx.model.wait_threshold(contact.channel)
    exceeded = math.ceil(wait / threshold) - 1
    if exceeded < 1:
        return []
    impact = max(ctx.model.long_wait_step * exceeded, ctx.model.long_wait_max)
    reason = (
        f"Customer waited {_duration(wait)} on {contact.channel or 'an unknown channel'} with "
        f"{contact.department} on {text_time(contact.at)}: over the {_duration(threshold)} "
        f"threshold {exceeded} time{'s' if exceeded > 1 else ''}"
    )
    return [signal_with(ctx, "long_wait", contact, impact, contact.at, [contact.id], reason)]


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:g} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.0f} h"


def rework_reason(event: StoredEvent) -> str:
    attrs, when = event.attrs, text_time(event.at)
    if event.type == "invoice_corrected":
        return f"Invoice {attrs.get('invoice_id', '')} had to be corrected on {when}".replace(
            "  ", " "
        )
    if event.type == "case_reopened":
        return f"Case {attrs.get('case_id', '')} was reopened on {when}".replace("  ", " ")
    if event.type == "appointment_missed":
        return f"Appointment {attrs.get('appointment_id', '')} was missed on {when}".replace(
            "  ", " "
        )
    if event.type == "order_delayed":
        return f"Order {attrs.get('order_id', '')} was delayed on {when}".replace("  ", " ")
    reason = attrs.get("reason")
    return f"Work had to be redone on {when}{f': {reason}' if reason else ''}"
