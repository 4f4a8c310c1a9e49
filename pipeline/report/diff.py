"""`journeys diff OLD NEW`: what a model version changes, read from the stored rows of both.

Both versions' rows sit in the same tables (migration 0007), so each figure is the report's
own figure computed twice, once per `model_version`, over all stored journeys: points lost
per department x stage, the ranking of breakdowns (department x stage x signal), the
journeys whose band changes, the share lost beyond the front desk (each version with its
own model's front desk) and the word-of-mouth balance (3 x good - 18 x poor).

`--since` / `--until` narrow both versions to the journeys that were under way in the
window (started before its end, last event at or after its start), each version by its own
rows (a model may split journeys otherwise), and the signals to those journeys: the books a
`journeys rescore --since --until` of the same window scored again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from typing import Any

from pipeline.journey import ScoreModel
from pipeline.journey.scoring import word_of_mouth
from pipeline.report.data import check_window
from pipeline.store import Store

BANDS = ("good", "neutral", "poor")
TOP = 10  # breakdowns ranked
EXAMPLES = 3  # journeys shown per band change

_T = "DateTime64(3, 'UTC')"
# A journey under way in the window [since, until) (the whole of time without one).
_IN_WINDOW = f"started_at < {{until:{_T}}} AND last_event_at >= {{since:{_T}}}"

_LOST = f"""SELECT department, stage, signal, -sum(impact) AS lost, count() AS signals
FROM journey_signals FINAL
WHERE model_version = {{version:String}} AND active = 1 AND impact < 0
  AND ({{everything:UInt8}} OR journey_id IN (
      SELECT journey_id FROM journeys FINAL
      WHERE model_version = {{version:String}} AND {_IN_WINDOW}))
GROUP BY department, stage, signal"""

_BANDS = f"""SELECT band, count() AS journeys FROM journeys FINAL
WHERE model_version = {{version:String}} AND status != 'retired' AND {_IN_WINDOW}
GROUP BY band"""

# Journeys scored by both versions, paired; a journey only one version holds is counted
# apart (`only_old`, `only_new`: a rescore of a window, or a model that segments otherwise).
_PAIRS = f"""SELECT o.band AS old_band, n.band AS new_band, count() AS journeys,
       arraySlice(arraySort(x -> (-abs(x.1), x.2), groupArray((o.score - n.score, o.journey_id,
                  o.score, n.score))), 1, {{examples:UInt32}}) AS examples
FROM (SELECT journey_id, band, score FROM journeys FINAL
      WHERE model_version = {{old:String}} AND status != 'retired' AND {_IN_WINDOW}) AS o
INNER JOIN (SELECT journey_id, band, score FROM journeys FINAL
            WHERE model_version = {{new:String}} AND status != 'retired' AND {_IN_WINDOW}) AS n
USING (journey_id)
GROUP BY old_band, new_band"""

_ONLY = f"""SELECT count() AS journeys FROM journeys FINAL
WHERE model_version = {{a:String}} AND status != 'retired' AND {_IN_WINDOW}
  AND journey_id NOT IN (
    SELECT journey_id FROM journeys FINAL
    WHERE model_version = {{b:String}} AND status != 'retired' AND {_IN_WINDOW})"""


@dataclass(frozen=True)
class Version:
    """One version's figures."""

    model: ScoreModel
    # (department, stage, signal) -> (points lost, signals)
    breakdowns: dict[tuple[str, str, str], tuple[float, int]]
    bands: dict[str, int]

    @property
    def cells(self) -> dict[tuple[str, str], float]:
        """Points lost per department x stage."""
        cells: dict[tuple[str, str], float] = {}
        for (department, stage, _), (lost, _) in self.breakdowns.items():
            cells[(department, stage)] = cells.get((department, stage), 0.0) + lost
        return cells

    @property
    def lost(self) -> float:
        return sum(lost for lost, _ in self.breakdowns.values())

    @property
    def beyond_front_desk(self) -> float | None:
        """Share of the points lost by departments outside this model's front desk."""
        beyond = sum(v for (d, _), v in self.cells.items() if d not in self.model.front_desk)
        return beyond / self.lost if self.lost else None

    @property
    def word_of_mouth(self) -> int:
        return word_of_mouth(self.bands.get("good", 0), self.bands.get("poor", 0))

    def ranking(self) -> list[tuple[str, str, str]]:
        """Breakdowns, the most points lost first (ties by name)."""
        return sorted(self.breakdowns, key=lambda k: (-self.breakdowns[k][0], k))


@dataclass(frozen=True)
class BandChange:
    old: str
    new: str
    journeys: int
    examples: list[tuple[str, float, float]]  # (journey_id, old score, new score)


@dataclass(frozen=True)
class Window:
    """The event-time window a diff looks at (None: open on that side)."""

    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        check_window(self.since, self.until, "--")

    def params(self) -> dict[str, Any]:
        return {
            "since": _ch_time(self.since or datetime(1970, 1, 1, tzinfo=UTC)),
            "until": _ch_time(self.until or datetime(2200, 1, 1, tzinfo=UTC)),
            "everything": int(self.since is None and self.until is None),
        }

    def describe(self) -> str:
        if self.since is None and self.until is None:
            return "every journey both versions scored"
        since = f"{self.since:%Y-%m-%d %H:%M} UTC" if self.since else "the beginning"
        until = f"{self.until:%Y-%m-%d %H:%M} UTC" if self.until else "the end"
        return f"the journeys both versions scored that were under way from {since} to {until}"


def _ch_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


@dataclass
class ModelDiff:
    old: Version
    new: Version
    window: Window = field(default_factory=Window)
    changes: list[BandChange] = field(default_factory=list)  # band pairs that differ
    same_band: int = 0  # journeys in both versions whose band did not change
    only_old: int = 0
    only_new: int = 0

    def cells(self) -> list[tuple[tuple[str, str], float, float]]:
        """(department, stage), old and new points lost; the largest change first."""
        old, new = self.old.cells, self.new.cells
        keys = set(old) | set(new)
        rows = [(k, old.get(k, 0.0), new.get(k, 0.0)) for k in keys]
        return sorted(rows, key=lambda r: (-abs(r[2] - r[1]), r[0]))

    def ranks(self, top: int = TOP) -> list[tuple[tuple[str, str, str], int | None, int | None]]:
        """Breakdowns in either version's top `top`: (breakdown, old rank, new rank)."""
        old = {k: n for n, k in enumerate(self.old.ranking(), 1)}
        new = {k: n for n, k in enumerate(self.new.ranking(), 1)}
        shown = {k for k, n in old.items() if n <= top} | {k for k, n in new.items() if n <= top}
        return sorted(((k, old.get(k), new.get(k)) for k in shown),
                      key=lambda r: (r[2] or 10**9, r[1] or 10**9, r[0]))  # fmt: skip

    @property
    def changed(self) -> int:
        return sum(c.journeys for c in self.changes)


def load_diff(
    store: Store, old: ScoreModel, new: ScoreModel, window: Window | None = None
) -> ModelDiff:
    """Both versions' figures from the stored rows; `old` and `new` name the versions and
    give each its front desk; `window` narrows them to the journeys under way in it."""
    window = window or Window()
    diff = ModelDiff(_version(store, old, window), _version(store, new, window), window)
    rows = store.query(
        _PAIRS, {"old": old.version, "new": new.version, "examples": EXAMPLES} | window.params()
    )  # fmt: skip
    for r in rows:
        if r["old_band"] == r["new_band"]:
            diff.same_band += int(r["journeys"])
            continue
        examples = [(str(e[1]), float(e[2]), float(e[3])) for e in r["examples"]]
        diff.changes.append(BandChange(r["old_band"], r["new_band"], int(r["journeys"]), examples))
    diff.changes.sort(key=lambda c: (-c.journeys, c.old, c.new))
    diff.only_old = _only(store, old.version, new.version, window)
    diff.only_new = _only(store, new.version, old.version, window)
    return diff


def _version(store: Store, model: ScoreModel, window: Window) -> Version:
    params = {"version": model.version} | window.params()
    breakdowns = {
        (r["department"], r["stage"], r["signal"]): (float(r["lost"]), int(r["signals"]))
        for r in store.query(_LOST, params)
    }
    bands = {r["band"]: int(r["journeys"]) for r in store.query(_BANDS, params)}
    return Version(model, breakdowns, bands)


def _only(store: Store, a: str, b: str, window: Window) -> int:
    return int(store.query(_ONLY, {"a": a, "b": b} | window.params())[0]["journeys"])


# --- as text ------------------------------------------------------------------------------
def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _rank(value: int | None) -> str:
    return "-" if value is None else str(value)


def summary_rows(diff: ModelDiff) -> list[tuple[str, str, str, str]]:
    """(figure, old, new, change) for the headline figures."""
    old, new = diff.old, diff.new
    rows = [
        ("points lost", f"{old.lost:,.0f}", f"{new.lost:,.0f}", f"{new.lost - old.lost:+,.0f}"),
        ("lost beyond the front desk", _share(old.beyond_front_desk),
         _share(new.beyond_front_desk), _points(old.beyond_front_desk, new.beyond_front_desk)),
        ("word-of-mouth balance", f"{old.word_of_mouth:+,}", f"{new.word_of_mouth:+,}",
         f"{new.word_of_mouth - old.word_of_mouth:+,}"),
    ]  # fmt: skip
    for band in BANDS:
        a, b = old.bands.get(band, 0), new.bands.get(band, 0)
        rows.append((f"{band} journeys", f"{a:,}", f"{b:,}", f"{b - a:+,}"))
    return rows


def _points(old: float | None, new: float | None) -> str:
    if old is None or new is None:
        return "-"
    return f"{100 * (new - old):+.1f} pts"


# --- as a report section --------------------------------------------------------------------
def html_section(diff: ModelDiff, top_cells: int = 15) -> tuple[str, str]:
    """(title, HTML) of the report section that shows the diff."""
    old, new = escape(diff.old.model.version), escape(diff.new.model.version)
    head = f"<tr><th>figure</th><th class='num'>{old}</th><th class='num'>{new}</th>"
    head += "<th class='num'>change</th></tr>"
    summary = "".join(
        f"<tr><td>{escape(f)}</td><td class='num'>{a}</td><td class='num'>{b}</td>"
        f"<td class='num'>{c}</td></tr>"
        for f, a, b, c in summary_rows(diff)
    )
    cells = "".join(
        f"<tr><td>{escape(d)}</td><td>{escape(s)}</td><td class='num'>{a:,.0f}</td>"
        f"<td class='num'>{b:,.0f}</td><td class='num'>{b - a:+,.0f}</td></tr>"
        for (d, s), a, b in diff.cells()[:top_cells]
    )
    ranks = "".join(
        f"<tr><td>{escape(d)} x {escape(s)}: {escape(sig.replace('_', ' '))}</td>"
        f"<td class='num'>{_rank(a)}</td><td class='num'>{_rank(b)}</td></tr>"
        for (d, s, sig), a, b in diff.ranks()
    )
    bands = "".join(
        f"<tr><td>{escape(c.old)} &rarr; {escape(c.new)}</td><td class='num'>{c.journeys:,}</td>"
        f"<td>{escape(', '.join(f'{j} ({a:.0f} → {b:.0f})' for j, a, b in c.examples))}</td></tr>"
        for c in diff.changes
    )
    html = (
        f"<p>Model {new} against {old}, over {escape(diff.window.describe())} "
        f"({diff.changed:,} changed band, {diff.same_band:,} kept it; only in {old}: "
        f"{diff.only_old:,}, only in {new}: {diff.only_new:,}).</p>"
        f"<table>{head}{summary}</table>"
        "<h3>Points lost per department x stage</h3>"
        "<table><tr><th>department</th><th>stage</th>"
        f"<th class='num'>{old}</th><th class='num'>{new}</th><th class='num'>change</th></tr>"
        f"{cells}</table>"
        "<h3>Ranking of breakdowns</h3>"
        f"<table><tr><th>breakdown</th><th class='num'>rank in {old}</th>"
        f"<th class='num'>rank in {new}</th></tr>{ranks}</table>"
        "<h3>Journeys that change band</h3>"
        "<table><tr><th>band</th><th class='num'>journeys</th><th>examples (score)</th></tr>"
        f"{bands or '<tr><td colspan=3>none</td></tr>'}</table>"
    )
    return f"What model {diff.new.model.version} changes", html
