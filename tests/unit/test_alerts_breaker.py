"""A department's circuit breaker: it opens after `threshold` attempts in a row without an
HTTP answer and only then; while open, at most one probe is in flight and no probe starts
before `probe_interval` has passed since the opening or the last probe; any answer closes
it; a cancelled probe does not leave it stuck. Checked on every sequence hypothesis draws
against a model of the rules, plus the asyncio `Circuit` around it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pipeline.alerts.breaker import Admission, CircuitBreaker, Transition
from pipeline.alerts.sender import Answer, Circuit


def test_it_opens_after_threshold_misses_in_a_row_and_an_answer_resets_the_count() -> None:
    breaker = CircuitBreaker(threshold=3, probe_interval=1.0)
    assert [breaker.record(False, 0.0) for _ in range(2)] == [None, None]
    assert breaker.record(True, 0.1) is None  # answered (a 503 too): the count starts again
    assert [breaker.record(False, 0.2) for _ in range(2)] == [None, None]
    assert breaker.admit(0.2) is Admission.SEND
    assert breaker.record(False, 0.3) is Transition.OPENED
    assert breaker.is_open


def test_while_open_one_probe_per_interval_others_wait_or_fail_at_once() -> None:
    breaker = CircuitBreaker(threshold=1, probe_interval=1.0)
    assert breaker.record(False, 10.0) is Transition.OPENED
    assert breaker.admit(10.5) is Admission.REFUSE  # too early for a probe
    assert breaker.admit(11.0) is Admission.PROBE
    assert breaker.admit(11.0) is Admission.WAIT  # the probe is in flight
    assert breaker.record(False, 11.2, probe=True) is None  # still down
    assert breaker.admit(11.3) is Admission.REFUSE  # the next probe from 12.2
    assert breaker.admit(12.2) is Admission.PROBE
    assert breaker.record(True, 12.3, probe=True) is Transition.CLOSED
    assert breaker.admit(12.3) is Admission.SEND and breaker.refused == 2


def test_an_answer_to_a_request_sent_before_the_opening_closes_it_too() -> None:
    breaker = CircuitBreaker(threshold=1, probe_interval=1.0)
    breaker.record(False, 0.0)
    assert breaker.record(True, 0.1) is Transition.CLOSED


def test_threshold_zero_never_opens_and_nonsense_is_refused() -> None:
    breaker = CircuitBreaker(threshold=0, probe_interval=1.0)
    assert all(breaker.record(False, float(t)) is None for t in range(100))
    assert breaker.admit(100.0) is Admission.SEND
    with pytest.raises(ValueError):
        CircuitBreaker(threshold=-1, probe_interval=1.0)
    with pytest.raises(ValueError):
        CircuitBreaker(threshold=1, probe_interval=0.0)


@dataclass
class Model:
    """The rules, written out plainly, against which the breaker is checked."""

    threshold: int
    interval: float
    misses: int = 0
    open: bool = False
    probes: int = 0  # in flight
    last_probe: float = 0.0
    log: list[str] = field(default_factory=list)


# One step: (dt, action), action one of admit, the outcome of an attempt that went out
# (answered or not, a probe or a plain send), or a probe abandoned.
STEP = st.tuples(
    st.floats(0, 3, allow_nan=False),
    st.sampled_from(["admit", "answered", "unanswered", "abandon"]),
)


@settings(max_examples=400)
@given(threshold=st.integers(0, 6), interval=st.floats(0.1, 2), steps=st.lists(STEP, max_size=80))
# Always tried, whatever hypothesis draws: a second attempt while the probe is out; the
# probe answered; an answer to a send from before the opening.
@example(1, 0.5, [(0, "admit"), (0, "unanswered"), (1, "admit"), (0, "admit")])
@example(1, 0.5, [(0, "admit"), (0, "unanswered"), (1, "admit"), (0, "answered"), (0, "admit")])
@example(1, 0.5, [(0, "admit"), (0, "admit"), (0, "unanswered"), (0, "answered"), (0, "admit")])
def test_every_sequence_follows_the_rules(
    threshold: int, interval: float, steps: list[tuple[float, str]]
) -> None:
    breaker = CircuitBreaker(threshold, interval)
    model = Model(threshold, interval)
    now = 0.0
    in_flight: list[bool] = []  # attempts that went out and await their outcome: probe?
    for dt, action in steps:
        now += dt
        if action == "admit":
            admission = breaker.admit(now)
            if not model.open:
                assert admission is Admission.SEND
                in_flight.append(False)
            elif model.probes:
                assert admission is Admission.WAIT  # never a second probe in flight
            elif now - model.last_probe >= interval:
                assert admission is Admission.PROBE
                model.probes += 1
                in_flight.append(True)
            else:
                assert admission is Admission.REFUSE
        elif in_flight:
            probe = in_flight.pop(0)
            if action == "abandon":
                if probe:
                    breaker.abandon()
                    model.probes -= 1
                continue
            answered = action == "answered"
            transition = breaker.record(answered, now, probe=probe)
            if probe:
                model.probes = 0
                model.last_probe = now
            if answered:
                model.misses = 0
                assert transition is (Transition.CLOSED if model.open else None)
                model.open = False
            else:
                model.misses += 1
                opens = not model.open and threshold > 0 and model.misses >= threshold
                assert transition is (Transition.OPENED if opens else None)
                if opens:
                    model.open, model.last_probe, model.probes = True, now, 0
                    in_flight = [False for _ in in_flight]  # earlier sends are no probes
        assert breaker.is_open == model.open
        assert model.probes <= 1 and breaker.probing == (model.open and model.probes == 1)


def answer(status: int | None) -> Answer:
    return Answer(status, b"", 0.0, error="" if status else "ClientConnectorError: refused")


def test_the_circuit_sends_nothing_while_open_and_the_waiters_follow_the_probe() -> None:
    """Asyncio side: attempts that come while the probe is out wait for it; the probe's
    answer lets them all go out, its failure fails them at once, unsent."""
    clock = [0.0]
    changes: list[bool] = []
    circuit = Circuit("billing", CircuitBreaker(2, 1.0), changes.append, lambda: clock[0])
    sent: list[str] = []

    async def scenario() -> list[Answer | None]:
        release = asyncio.Event()
        outcome: list[int | None] = [None]

        async def send(name: str) -> Answer:
            sent.append(name)
            if name == "probe":
                await release.wait()
                return answer(outcome[0])
            return answer(None if not changes else 200)

        assert await circuit.attempt(lambda: send("a")) == answer(None)
        assert await circuit.attempt(lambda: send("b")) == answer(None)
        assert circuit.is_open and changes == [True]
        assert await circuit.attempt(lambda: send("c")) is None  # before the probe is due
        clock[0] = 1.0
        probe = asyncio.create_task(circuit.attempt(lambda: send("probe")))
        await asyncio.sleep(0)
        waiters = [asyncio.create_task(circuit.attempt(lambda: send("w"))) for _ in range(3)]
        await asyncio.sleep(0)
        assert sent == ["a", "b", "probe"]  # the waiters wait
        release.set()  # the probe fails: the waiters fail at once, unsent
        results = [await probe, *[await w for w in waiters]]
        assert sent == ["a", "b", "probe"]
        clock[0] = 2.5
        release.clear()
        outcome[0] = 503  # an answer, even an error, says the receiver is up
        probe = asyncio.create_task(circuit.attempt(lambda: send("probe")))
        await asyncio.sleep(0)
        waiters = [asyncio.create_task(circuit.attempt(lambda: send("w"))) for _ in range(2)]
        await asyncio.sleep(0)
        release.set()
        results += [await probe, *[await w for w in waiters]]
        return results

    results = asyncio.run(scenario())
    assert results == [answer(None), None, None, None, answer(503), answer(200), answer(200)]
    assert sent == ["a", "b", "probe", "probe", "w", "w"]
    assert changes == [True, False] and not circuit.is_open
    assert "2 attempts in a row without an HTTP answer" in circuit.outage()


def test_a_cancelled_probe_lets_the_next_one_go() -> None:
    clock = [0.0]
    circuit = Circuit("billing", CircuitBreaker(1, 1.0), clock=lambda: clock[0])

    async def scenario() -> Answer | None:
        async def refused() -> Answer:
            return answer(None)

        async def hangs() -> Answer:
            await asyncio.Event().wait()
            raise AssertionError

        await circuit.attempt(refused)
        clock[0] = 1.0
        probe = asyncio.create_task(circuit.attempt(hangs))
        await asyncio.sleep(0)
        waiter = asyncio.create_task(circuit.attempt(refused))
        await asyncio.sleep(0)
        probe.cancel()
        await asyncio.gather(probe, return_exceptions=True)
        return await waiter  # became the next probe: sent, not stuck

    assert asyncio.run(scenario()) == answer(None)
    assert not circuit.breaker.probing
