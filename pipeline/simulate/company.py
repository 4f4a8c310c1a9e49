"""The company's processes as journey templates: buying, delivery, onboarding, service visits,
billing and renewal, each crossing departments, with failure points that a breakdown profile
(or the baseline) switches on.

The front desk (sales, customer_service) mostly does well here on purpose: the product's
point is to show the loss that happens beyond it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from pipeline.simulate.journey import JourneyWriter

Rate = Callable[[str], float]
Template = Callable[[JourneyWriter, Rate], None]


def order(j: JourneyWriter, rate: Rate) -> None:
    """Buy, deliver, install: sales -> delivery -> customer_service onboarding."""
    channel = j.rng.choice(("store", "web", "phone"))
    j.contact("sales", "purchase", channel, "new contract", resolved=True)
    j.later(minutes=20)
    order_id = j.new_id("O")
    j.emit("sales", "order_placed", "purchase", channel, order_id=order_id)
    j.later(hours=2)
    promise_id = j.promise(
        "delivery", "delivery", "delivery on the promised day", timedelta(days=4)
    )
    if j.chance(0.3):
        j.later(hours=20)
        j.emit("delivery", "proactive_update", "delivery", "email", about="dispatch date")
    if j.fails("delivery_delay", rate("delivery_delay")):
        j.later(days=3.5)
        j.emit("delivery", "order_delayed", "delivery", "email", order_id=order_id)
        j.later(days=1)
    else:
        j.later(days=2)
    j.emit("delivery", "order_delivered", "delivery", "field", order_id=order_id)
    j.emit("delivery", "promise_kept", "delivery", promise_id=promise_id)
    _onboard(j, rate)
    j.later(days=1)
    j.emit("sales", "journey_closed", "onboarding", outcome="active customer")


def _onboard(j: JourneyWriter, rate: Rate) -> None:
    j.later(hours=6)
    if j.fails("onboarding_rework", rate("onboarding_rework")):
        j.emit("delivery", "rework", "onboarding", "field", reason="installation redone")
        j.later(hours=20)
    j.contact("customer_service", "onboarding", "phone", "how to set up", resolved=True)


def service_visit(j: JourneyWriter, rate: Rate) -> None:
    """A fault: the service desk hands it to maintenance, which opens a case and visits."""
    case_id = j.new_id("C")
    j.contact("customer_service", "service", "phone", "device fault", resolved=False)
    j.later(minutes=15)
    context = not j.fails("lost_context", rate("lost_context"))
    j.emit(
        "customer_service",
        "handoff",
        "service",
        to_department="maintenance",
        context_transferred=context,
    )
    j.emit("maintenance", "case_opened", "service", case_id=case_id)
    if not context:
        j.later(hours=5)
        j.contact("maintenance", "service", "phone", "explain the fault again", resolved=True)
    j.later(hours=2)
    _visit(j, rate)
    j.later(hours=1)
    j.emit("maintenance", "case_resolved", "service", case_id=case_id)
    j.later(days=1)
    j.emit("customer_service", "journey_closed", "service", outcome="fixed")


def _visit(j: JourneyWriter, rate: Rate) -> None:
    appointment_id = j.new_id("A")
    due = timedelta(days=j.rng.choice((1, 1, 2)))
    scheduled_for = (j.now + due).isoformat(timespec="seconds")
    j.emit(
        "maintenance",
        "appointment_scheduled",
        "service",
        "phone",
        appointment_id=appointment_id,
        scheduled_for=scheduled_for,
    )
    promise_id = j.promise("maintenance", "service", "technician visit", due)
    j.now += due
    if j.fails("visit_promise", rate("visit_promise")):
        j.emit(
            "maintenance", "appointment_missed", "service", "field", appointment_id=appointment_id
        )
        j.later(hours=4)
        j.contact("customer_service", "service", "phone", "technician did not come", resolved=True)
        j.later(days=2)
        j.emit(
            "maintenance", "appointment_completed", "service", "field", appointment_id=j.new_id("A")
        )
        return
    j.later(minutes=-90)  # visits happen inside the promised window
    j.emit(
        "maintenance", "appointment_completed", "service", "field", appointment_id=appointment_id
    )
    j.emit("maintenance", "promise_kept", "service", promise_id=promise_id)


def billing_cycle(j: JourneyWriter, rate: Rate) -> None:
    """A monthly invoice; sometimes wrong, then a call and a correction."""
    invoice_id = j.new_id("I")
    j.emit("billing", "invoice_issued", "billing", "email", invoice_id=invoice_id, amount=49.9)
    if j.fails("invoice_error", rate("invoice_error")):
        j.later(days=2)
        j.contact("customer_service", "billing", "phone", "invoice looks wrong", resolved=False)
        j.later(days=1)
        j.emit("billing", "invoice_corrected", "billing", "email", invoice_id=invoice_id)
    elif j.chance(0.3):
        j.later(days=1)
        j.contact("billing", "billing", "chat", "payment question", resolved=True)
    j.later(days=1)
    j.emit("billing", "journey_closed", "billing", outcome="paid")


def renewal(j: JourneyWriter, rate: Rate) -> None:
    """The contract comes up: sales tells the customer first, billing invoices the renewal."""
    j.emit("sales", "proactive_update", "renewal", "email", about="contract renewal offer")
    j.later(days=2)
    j.contact("sales", "renewal", j.rng.choice(("phone", "store")), "renew", resolved=True)
    j.later(hours=6)
    invoice_id = j.new_id("I")
    j.emit("billing", "invoice_issued", "renewal", "email", invoice_id=invoice_id, amount=590.0)
    if j.fails("renewal_invoice", rate("renewal_invoice")):
        j.later(days=3)
        j.contact("customer_service", "renewal", "phone", "renewal price wrong", resolved=False)
        dispute_id = j.new_id("D")
        j.emit("billing", "billing_dispute_opened", "renewal", dispute_id=dispute_id)
        j.later(days=5.5)
        j.emit("billing", "invoice_corrected", "renewal", "email", invoice_id=invoice_id)
        j.emit("billing", "billing_dispute_resolved", "renewal", dispute_id=dispute_id)
    j.later(days=1)
    j.emit("sales", "journey_closed", "renewal", outcome="renewed")


def inquiry(j: JourneyWriter, rate: Rate) -> None:
    """A question or a comment, without a case number: grouped by customer and time."""
    channel = j.rng.choice(("phone", "chat", "email", "app"))
    j.contact("customer_service", "usage", channel, "how do I", resolved=j.chance(0.85))
    if j.chance(0.4):
        j.later(hours=3)
        feedback_id = j.new_id("F")
        sentiment = round(j.rng.uniform(-0.5, 0.9), 2)
        j.emit(
            "customer_service",
            "feedback_received",
            "usage",
            "app",
            feedback_id=feedback_id,
            sentiment=sentiment,
        )
        if not j.fails("unanswered_feedback", rate("unanswered_feedback")):
            j.later(days=1)
            j.emit(
                "customer_service", "feedback_answered", "usage", "email", feedback_id=feedback_id
            )


# (template, weight, journey-id prefix or None for customer-keyed journeys, longest span)
TEMPLATES: tuple[tuple[Template, float, str | None, timedelta], ...] = (
    (order, 0.2, "ORD", timedelta(days=10)),
    (service_visit, 0.3, "CASE", timedelta(days=8)),
    (billing_cycle, 0.2, "INV", timedelta(days=6)),
    (renewal, 0.15, "REN", timedelta(days=9)),
    (inquiry, 0.15, None, timedelta(days=2)),
)
