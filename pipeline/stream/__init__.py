"""The stream worker: touchpoints from Kafka through the journey engine into ClickHouse.

`worker.create_app(settings)` builds the Faust app; `processor.JourneyProcessor` is the
Faust-free core (validation, routing, de-dup, event-time clock, rows), which `offline` runs
over a list of messages in this process (what the report and dashboard tests store);
`sink` writes to ClickHouse; `runtime` keeps rows, state and offsets in the order that
makes results effectively-once. See docs/operations.md.
"""
