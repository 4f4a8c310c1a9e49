"""The signal rules of the score model, one small pure function per rule group.

A journey's events fall into *rule groups*: the contact chain, the survey responses, one
group per promise, per feedback item, per case, per billing dispute, and one group per
event for the signals an event carries on its own (rework, lost context, long wait,
proactive update). A group's signals depend only on the group's events, the model and the
event-time clock, so an incoming event re-evaluates just the groups it belongs to; that
keeps the per-event cost flat while the result stays the same as a full re-score (see
tests). This module owns the groups' keys (`group_keys`, `parse_group`, `members`); the
rules with a deadline are in `obligations`.
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

# --- rule-group keys -------------------------------------------------------------------
# A rule group is named by a key, and the keys are stored: they key each journey's `groups`
# and `deadlines` in every book of the state table, so changing this grammar changes
# persisted state. This section is its one owner (encode, decode, and which events belong):
#   "contacts"          the contact chain
#   "survey"            the survey responses
#   "e:<event id>"      the signals one event carries on its own
#   "<k>:<id>"          an obligation by its id attribute: k is p (promise), f (feedback),
#                       c (case) or d (billing dispute); a case or dispute without its id
#                       is the journey's unnamed one, id ""
#   "<k>#<event id>"    a promise or feedback opened without its id: a group of its own
CONTACTS = "contacts"
SURVEY = "survey"
OWN = "e"
PROMISE, FEEDBACK, CASE, DISPUTE = "p", "f", "c", "d"
OBLIGATIONS = frozenset({PROMISE, FEEDBACK, CASE, DISPUTE})

# Per obligation kind: the attribute that names one, and the event types of its group.
_ID_ATTRIBUTE = {
    PROMISE: "promise_id", FEEDBACK: "feedback_id", CASE: "case_id", DISPUTE: "dispute_id"
}  # fmt: skip
_MEMBER_TYPES = {
    PROMISE: frozenset({"promise_made", "promise_kept"}),
    FEEDBACK: frozenset({"feedback_received", "feedback_answered"}),
    CASE: frozenset({"case_opened", "case_resolved", "case_reopened"}),
    DISPUTE: frozenset({"billing_dispute_opened", "billing_dispute_resolved"}),
}


def own_group(event_id: str) -> str:
    """The key of the group of an event's own signals."""
    return "e:" + event_id


def obligation_group(kind: str, ident: str) -> str:
    """The key of an obligation (`PROMISE`, ...) named by its id attribute."""
    return f"{kind}:{ident}"


def unnamed_obligation_group(kind: str, event_id: str) -> str:
    """The key of an obligation opened without its id: the opening event's own group."""
    return f"{kind}#{event_id}"


class GroupKey(NamedTuple):
    """A decoded rule-group key.

    `kind` is CONTACTS, SURVEY, OWN or an obligation kind. `ident` is the event id of an
    OWN group or of an unnamed obligation (`unnamed`), an obligation's id attribute
    otherwise, and "" for the contact chain and the survey.
    """

    kind: str
    ident: str
    unnamed: bool


_WHOLE_GROUPS = {CONTACTS: GroupKey(CONTACTS, "", False), SURVEY: GroupKey(SURVEY, "", False)}
_new_tuple = tuple.__new__  # GroupKey's own __new__ is Python code: this runs per group per event


def parse_group(key: str) -> GroupKey:
    """The kind and id a rule-group key encodes (the inverse of the functions above)."""
    whole = _WHOLE_GROUPS.get(key)  # before the first letter: "contacts" is no case
    if whole is not None:
        return whole
    return _new_tuple(GroupKey, (key[0], key[2:], key[1] == "#"))


def group_keys(event: StoredEvent) -> tuple[str, ...]:
    """The rule groups an event belongs to (empty when it carries no signal)."""
    kind = event.type
    if kind == "contact":
        return (CONTACTS, own_group(event.id))
    if kind in ("case_opened", "case_resolved"):
        return (obligation_group(CASE, _ident(event, "case_id") or ""),)
    if kind == "case_reopened":
        return (own_group(event.id), obligation_group(CASE, _ident(event, "case_id") or ""))
    if kind in REWORK_TYPES or kind in ("handoff", "proactive_update"):
        return (own_group(event.id),)
    if kind.startswith("billing_dispute_"):
        return (obligation_group(DISPUTE, _ident(event, "dispute_id") or ""),)
    if kind.startswith("promise_"):
        return _keyed(event, PROMISE, kind == "promise_made")
    if kind.startswith("feedback_"):
        return _keyed(event, FEEDBACK, kind == "feedback_received")
    return (SURVEY,) if kind == "survey_response" else ()


def _keyed(event: StoredEvent, kind: str, opens: bool) -> tuple[str, ...]:
    # An opening event without its id still forms a group of its own (it can be broken);
    # a closing event without an id cannot be matched to anything.
    ident = _ident(event, _ID_ATTRIBUTE[kind])
    if ident is not None:
        return (obligation_group(kind, ident),)
    return (unnamed_obligation_group(kind, event.id),) if opens else ()


def _ident(event: StoredEvent, name: str) -> str | None:
    value = event.attrs.get(name)
    return None if value is None else str(value)


def members(events: Sequence[StoredEvent], group: GroupKey) -> list[StoredEvent]:
    """The events of one rule group (`parse_group(key)`), in event order: those whose
    `group_keys` hold its key."""
    kind, ident, unnamed = group
    if kind == CONTACTS:
        return [e for e in events if e.type == "contact"]
    if kind == SURVEY:
        return [e for e in events if e.type == "survey_response"]
    if kind == OWN or unnamed:
        return [e for e in events if e.id == ident]
    kinds, name = _MEMBER_TYPES[kind], _ID_ATTRIBUTE[kind]
    # The same test as group_keys, without a call per event (this is on the hot path).
    if kind in (CASE, DISPUTE):  # one without an id is the journey's unnamed one
        return [
            e
            for e in events
            if e.type in kinds and ("" if (v := e.attrs.get(name)) is None else str(v)) == ident
        ]
    return [
        e
        for e in events
        if e.type in kinds and (v := e.attrs.get(name)) is not None and str(v) == ident
    ]


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
    return Signal(  # positionally: several times faster than by keyword (see `types`)
        digest,  # signal_id
        ctx.journey_id,
        ctx.customer_id,
        kind,  # signal
        by.department,
        by.stage,
        impact,
        from_us(at),  # effective_at
        list(evidence),  # evidence_event_ids
        reason if isinstance(reason, str) else reason(),
        ctx.model.version,  # score_model
    )


def evaluate(kind: str, events: Sequence[StoredEvent], ctx: Context) -> Outcome:
    """The signals of a rule group without a deadline, by its kind (`parse_group(key).kind`;
    obligations has the groups with one)."""
    if kind == CONTACTS:
        return Outcome(contact_chain(events, ctx))
    if kind == OWN:
        return Outcome(own_signals(events[0], ctx))
    return Outcome([])  # the survey group: it feeds the survey score, not signals


def survey_score(responses: Sequence[StoredEvent]) -> float | None:
    """The survey group's score: CSAT (1-5), NPS (0-10) and CES (1-7, 7 easiest) mapped to
    0-100 and averaged (`scoring.snapshot` blends it with the operational score)."""
    points: list[float] = []
    for response in responses:
        for name, low, high in (("csat", 1, 5), ("nps", 0, 10), ("ces", 1, 7)):
            value = response.attrs.get(name)
            if (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and low <= value <= high
            ):
                points.append((value - low) / (high - low) * 100)
    return round(sum(points) / len(points), 2) if points else None


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
