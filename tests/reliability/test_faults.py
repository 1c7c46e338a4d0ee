"""Standing faults suite: each emulator fault switch on for a whole run, then the end state exact.

A scenario switches one kind of fault on (or all of them) with seeded dice for a whole run of a
shipped recipe: 5xx bursts, timeouts (the server hangs, then answers 504), dropped connections,
lost responses (the server did the work, the answer never came), 429 storms (many with
``Retry-After: 0``, a few with a real wait) and latency. Faults hit Virtuous (the sink; CSV ->
Virtuous, under both of its validation modes) or the source (Stripe, Givebutter, Donorbox ->
Virtuous). What must hold:

- the faulted run's report counts, with their money, exactly the gifts Virtuous now holds, and
  no record Virtuous holds is dead-lettered;
- after ``dlq retry`` and one more run with the faults off, every gift is held once (the same
  gifts a run without faults sends), nothing is dead-lettered or left in flight, and the reports
  of all runs add up to what Virtuous holds, money included.

``CONNECTOR_SOAK=1`` runs every scenario on every flow, with more records and other dice.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from pydantic import PrivateAttr

from connectors.donorbox.emulator.app import EmulatorSettings as DonorboxSettings
from connectors.donorbox.emulator.app import create_app as donorbox_app
from connectors.givebutter.emulator.app import EmulatorSettings as GivebutterSettings
from connectors.givebutter.emulator.app import create_app as givebutter_app
from connectors.mailchimp.emulator.app import create_app as mailchimp_app
from connectors.mailchimp.emulator.store import EmulatorSettings as MailchimpSettings
from connectors.stripe.emulator.app import EmulatorSettings as StripeSettings
from connectors.stripe.emulator.app import create_app as stripe_app
from core.emulation import EmulatorServer, Faults
from tests.connectors.stripe.conftest import KEY as STRIPE_KEY
from tests.connectors.virtuous.support import KEY as VIRTUOUS_KEY
from tests.connectors.virtuous.support import Virtuous, running
from tests.reliability.support import (
    PROJECTS,
    SEED,
    SOAK,
    TALLY,
    Money,
    as_held,
    assert_held_exactly,
    contacts_held,
    csv_to_virtuous,
    donations_csv,
    ledger,
    money_of,
    reported,
    reported_money,
    run_json,
    shipped,
    stripe_charges,
    stripe_to_virtuous,
    virtuous_held,
)

RECORDS = 200 if SOAK else 60
BATCH = 4  # many requests, so that many are faulted
PAGE = 5

#: Each scenario's switches (:class:`core.emulation.Faults`), on for the whole faulted run.
SCENARIOS: dict[str, dict[str, Any]] = {
    "5xx": {"error_rate": 0.3, "error_statuses": [500, 502, 503]},
    "timeouts": {"timeout_rate": 0.25, "hang_seconds": 0.2},
    "drops": {"drop_rate": 0.25},
    "lost-responses": {"lost_response_rate": 0.3},
    "429-storm": {"rate_limit_storm": 3, "storm_retry_after": 1},
    # Retry-After: 0 is read as "not said": the client backs off exponentially instead.
    "429-no-wait": {"rate_limit_storm": 3, "storm_retry_after": 0},
    "latency": {"latency_seconds": 0.03},
    # Every kind at once, each attempt faulted about one time in five: a read fails for good
    # (five attempts) about once in 3,000 requests, so that seeded runs end (a read that fails
    # for good stops the run, exit 3: see test_a_run_stopped_by_a_source_outage_...).
    "mixed": {
        "error_rate": 0.08,
        "timeout_rate": 0.04,
        "hang_seconds": 0.2,
        "drop_rate": 0.04,
        "lost_response_rate": 0.08,
        "rate_limit_storm": 2,
        "storm_retry_after": 1,
        "latency_seconds": 0.01,
    },
}
if SOAK:  # more than 10 throttles in a row (a 429 must never fail a record while time is left)
    SCENARIOS["429-long-storm"] = {"rate_limit_storm": 12, "storm_retry_after": 1}
#: The scenarios each source's reads go through by default, to stay inside CI's budget (a lost
#: answer to a read is a failed read, which 5xx and drops already are); all of them under
#: CONNECTOR_SOAK=1.
STRIPE_SCENARIOS = list(SCENARIOS) if SOAK else ["5xx", "timeouts", "429-storm"]
PLATFORM_SCENARIOS = list(SCENARIOS) if SOAK else ["5xx", "drops"]


class CountingFaults(Faults):
    """The emulator's fault switches, counting each request a fault hit (latency aside)."""

    _hits: list[int] = PrivateAttr(default_factory=lambda: [0])

    @property
    def hits(self) -> int:
        return self._hits[0]

    def chance(self, rate: float) -> bool:
        hit = super().chance(rate)
        self._hits[0] += hit
        return hit

    def take_storm(self) -> bool:
        hit = super().take_storm()
        self._hits[0] += hit
        return hit


@contextmanager
def virtuous_serving(
    monkeypatch: pytest.MonkeyPatch, validation: str = "lenient", faults: Faults | None = None
) -> Iterator[Virtuous]:
    with running(transaction_validation=validation, faults=faults or Faults()) as virtuous:
        virtuous.control("POST", "seed", json={"projects": PROJECTS})
        monkeypatch.setenv("VIRTUOUS_BASE_URL", virtuous.url)
        monkeypatch.setenv("VIRTUOUS_API_KEY", VIRTUOUS_KEY)
        yield virtuous


def dlq_retry(invoke: Callable[..., Result], recipe: Path) -> dict[str, Any]:
    result = invoke("dlq", "retry", recipe, "--json")
    assert result.exit_code in (0, 1), result.output
    report: dict[str, Any] = json.loads(result.stdout)
    return report


Held = Callable[[Any], list[tuple[str, Money]]]


def through_faults(
    invoke: Callable[..., Result],
    recipe: Path,
    name: str,
    virtuous: Virtuous,
    faults: CountingFaults,
    scenario: str,
    holds: Held = virtuous_held,
) -> list[dict[str, Any]]:
    """Run ``recipe`` once with ``scenario`` on, check its report against what Virtuous holds,
    then settle what it left (``dlq retry``, a run) with the faults off. Returns the reports."""
    faults.update(**SCENARIOS[scenario], seed=SEED)
    try:
        first = run_json(invoke, recipe)
    finally:
        faulted = faults.hits
        faults.clear()
    TALLY.faulted[scenario] += faulted
    held = holds(virtuous)
    assert first["outcomes"]["written"] == len(held), first["outcomes"]
    assert reported_money([first]) == money_of(money for _, money in held)
    state = ledger(recipe, name)
    held_ids = {key.split("/", 1)[1] for key, _ in held}
    assert not held_ids & {letter.key for letter in state.dead_letters}  # held, yet "failed"
    reports = [first]
    if state.dead_letters or state.in_flight:
        reports.append(dlq_retry(invoke, recipe))
    reports.append(run_json(invoke, recipe))
    return reports


def assert_settled(
    reports: list[dict[str, Any]],
    recipe: Path,
    name: str,
    virtuous: Virtuous,
    holds: Held = virtuous_held,
) -> list[tuple[str, Money]]:
    """Nothing dead-lettered or in flight; the reports add up to what Virtuous holds."""
    state = ledger(recipe, name)
    assert (state.dead_letters, state.in_flight) == ([], [])
    held = holds(virtuous)
    assert reported(reports, "written") == len(held)
    assert reported_money(reports) == money_of(money for _, money in held)
    return held


# --- faults at the sink: CSV -> Virtuous, under both validation modes -------------------------

CSV_RECIPE = "csv-donations-to-virtuous-gifts"


@pytest.mark.parametrize("validation", ["lenient", "strict"])
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_csv_into_a_faulty_virtuous_ends_exact(
    scenario: str, validation: str, monkeypatch, invoke, tmp_path
) -> None:
    faults = CountingFaults()
    with virtuous_serving(monkeypatch, validation, faults) as virtuous:
        wanted = donations_csv(tmp_path / "donations.csv", RECORDS, f"faults-{scenario}")
        recipe = csv_to_virtuous(tmp_path, BATCH)
        reports = through_faults(invoke, recipe, CSV_RECIPE, virtuous, faults, scenario)
        held = assert_settled(reports, recipe, CSV_RECIPE, virtuous)
    assert_held_exactly(held, as_held(wanted, "CSV Import"))
    assert faults.hits or scenario == "latency"


# --- faults at the source: Stripe, Givebutter, Donorbox -> Virtuous ---------------------------


@pytest.mark.parametrize("scenario", STRIPE_SCENARIOS)
def test_stripe_through_faults_into_virtuous_ends_exact(
    scenario: str, monkeypatch, invoke, tmp_path
) -> None:
    faults = CountingFaults()
    app = stripe_app(StripeSettings(api_keys=[STRIPE_KEY], faults=faults))
    with EmulatorServer(app) as stripe, virtuous_serving(monkeypatch) as virtuous:
        monkeypatch.setenv("STRIPE_BASE_URL", stripe.url)
        monkeypatch.setenv("STRIPE_API_KEY", STRIPE_KEY)
        wanted = stripe_charges(app.state.store, RECORDS, f"faults-{scenario}")
        recipe = stripe_to_virtuous(tmp_path, BATCH, page=5)
        name = "stripe-charges-to-virtuous-gifts"
        reports = through_faults(invoke, recipe, name, virtuous, faults, scenario)
        held = assert_settled(reports, recipe, name, virtuous)
    assert_held_exactly(held, as_held(wanted, "Stripe"))
    assert faults.hits or scenario == "latency"


GIVEBUTTER_KEY, DONORBOX_EMAIL, DONORBOX_KEY = "gb-faults-key", "ops@example.org", "dbx-faults-key"


def _givebutter(faults: Faults) -> tuple[Any, dict[str, str]]:
    app = givebutter_app(GivebutterSettings(api_keys=[GIVEBUTTER_KEY], faults=faults))
    app.state.emulator.seed(count=RECORDS, seed=SEED)
    return app, {"GIVEBUTTER_API_KEY": GIVEBUTTER_KEY}


def _donorbox(faults: Faults) -> tuple[Any, dict[str, str]]:
    app = donorbox_app(DonorboxSettings(credentials={DONORBOX_EMAIL: DONORBOX_KEY}, faults=faults))
    app.state.emulator.seed(count=RECORDS, seed=SEED)
    return app, {"DONORBOX_EMAIL": DONORBOX_EMAIL, "DONORBOX_API_KEY": DONORBOX_KEY}


PLATFORMS = {
    "givebutter": (_givebutter, "givebutter-to-virtuous-gifts", "GIVEBUTTER_BASE_URL"),
    "donorbox": (_donorbox, "donorbox-to-virtuous-gifts", "DONORBOX_BASE_URL"),
}


def platform_recipe(name: str, url: str, folder: Path) -> Path:
    """The shipped recipe, reading small pages (so that a run makes requests to fault)."""
    address = f'base_url: "${{{url}:-'  # the source's address, the line to put per_page before
    return shipped(name, folder, **{address: f"per_page: {PAGE}\n    {address}"})


@pytest.mark.parametrize("scenario", PLATFORM_SCENARIOS)
@pytest.mark.parametrize("platform", list(PLATFORMS))
def test_a_platform_through_faults_into_virtuous_ends_as_without_them(
    platform: str, scenario: str, monkeypatch, invoke, tmp_path
) -> None:
    """The gifts Virtuous ends with are those a run without faults sends (the oracle: a run of
    the same recipe over the same platform data into a second Virtuous, with no fault on)."""
    make, name, url = PLATFORMS[platform]
    faults = CountingFaults()
    app, env = make(faults)
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    with EmulatorServer(app) as source:
        monkeypatch.setenv(url, source.url)
        (tmp_path / "clean").mkdir()
        (tmp_path / "faulted").mkdir()
        with virtuous_serving(monkeypatch) as virtuous:
            baseline = run_json(invoke, platform_recipe(name, url, tmp_path / "clean"))
            assert baseline["ok"], baseline["problems"]
            expected = dict(virtuous_held(virtuous))
        with virtuous_serving(monkeypatch) as virtuous:
            recipe = platform_recipe(name, url, tmp_path / "faulted")
            reports = through_faults(invoke, recipe, name, virtuous, faults, scenario)
            held = assert_settled(reports, recipe, name, virtuous)
    assert len(expected) >= RECORDS // 2  # most of the platform's records are gifts
    assert_held_exactly(held, expected)
    assert faults.hits or scenario == "latency"


MAILCHIMP_KEY, MAILCHIMP_LIST = "mcfaultskey0c1e2d9a0b-us1", "L1"
MAILCHIMP_RECIPE = "mailchimp-members-to-virtuous-contacts"


def _mailchimp_members(state: Any) -> None:
    """Members changed over the past days; one in seven without a last name (not a contact)."""
    for n in range(RECORDS):
        names = {"FNAME": f"First{n}", "LNAME": f"Last{n}" if n % 7 else ""}
        changed = datetime.now(UTC) - timedelta(hours=RECORDS - n)
        state.create(MAILCHIMP_LIST, f"member{n}@donors.org", "subscribed", names, None, changed)


@pytest.mark.parametrize("scenario", list(SCENARIOS) if SOAK else ["5xx"])
def test_mailchimp_through_faults_into_virtuous_contacts_ends_as_without_them(
    scenario: str, monkeypatch, invoke, tmp_path
) -> None:
    """Members become contact transactions: each once, as a run without faults makes them."""
    settings = MailchimpSettings(
        api_keys=[MAILCHIMP_KEY], lists={MAILCHIMP_LIST: "Donors"}, faults=CountingFaults()
    )
    app = mailchimp_app(settings)
    faults = app.state.emulator.faults  # the emulator's own copy of the switches
    _mailchimp_members(app.state.emulator)
    monkeypatch.setenv("MAILCHIMP_API_KEY", MAILCHIMP_KEY)
    monkeypatch.setenv("MAILCHIMP_LIST_ID", MAILCHIMP_LIST)
    (tmp_path / "clean").mkdir()
    (tmp_path / "faulted").mkdir()
    address = 'base_url: "${MAILCHIMP_BASE_URL:-}"'
    page = {address: f"page_size: {PAGE}\n    {address}"}
    with EmulatorServer(app) as mailchimp:
        monkeypatch.setenv("MAILCHIMP_BASE_URL", f"{mailchimp.url}/3.0")
        with virtuous_serving(monkeypatch) as virtuous:
            baseline = run_json(invoke, shipped(MAILCHIMP_RECIPE, tmp_path / "clean", **page))
            assert baseline["ok"], baseline["problems"]
            expected = dict(contacts_held(virtuous))
        with virtuous_serving(monkeypatch) as virtuous:
            recipe = shipped(MAILCHIMP_RECIPE, tmp_path / "faulted", **page)
            reports = through_faults(
                invoke, recipe, MAILCHIMP_RECIPE, virtuous, faults, scenario, contacts_held
            )
            held = assert_settled(reports, recipe, MAILCHIMP_RECIPE, virtuous, contacts_held)
    assert len(expected) == RECORDS - len(range(0, RECORDS, 7))
    assert_held_exactly(held, expected)
    assert faults.hits or scenario == "latency"


@pytest.mark.parametrize("scenario", ["lost-responses", "mixed"] if SOAK else ["lost-responses"])
def test_members_into_a_virtuous_that_loses_answers_become_one_contact_each(
    scenario: str, monkeypatch, invoke, tmp_path
) -> None:
    """A contact transaction has no dedup key: one whose answer was lost is sent again, so the
    holding area may hold it twice (a window that remains). Virtuous's import matches contacts
    on their reference, so each member still ends as one contact, as the report counts."""
    app = mailchimp_app(MailchimpSettings(api_keys=[MAILCHIMP_KEY], lists={MAILCHIMP_LIST: "D"}))
    _mailchimp_members(app.state.emulator)
    monkeypatch.setenv("MAILCHIMP_API_KEY", MAILCHIMP_KEY)
    monkeypatch.setenv("MAILCHIMP_LIST_ID", MAILCHIMP_LIST)
    address = 'base_url: "${VIRTUOUS_BASE_URL:-https://api.virtuoussoftware.com}"'
    small = {address: f"{address}\n    batch_size: {BATCH}"}
    faults = CountingFaults()
    with EmulatorServer(app) as mailchimp, virtuous_serving(monkeypatch, faults=faults) as virtuous:
        monkeypatch.setenv("MAILCHIMP_BASE_URL", f"{mailchimp.url}/3.0")
        recipe = shipped(MAILCHIMP_RECIPE, tmp_path, **small)
        faults.update(**SCENARIOS[scenario], seed=SEED)
        reports = [run_json(invoke, recipe)]
        faults.clear()
        TALLY.faulted[f"contacts {scenario}"] += faults.hits
        if ledger(recipe, MAILCHIMP_RECIPE).dead_letters:
            reports.append(dlq_retry(invoke, recipe))
        reports.append(run_json(invoke, recipe))
        held = contacts_held(virtuous)
        virtuous.import_now()
        contacts = virtuous.state()["contacts"]
    references = Counter(ref["id"] for contact in contacts for ref in contact["contactReferences"])
    members = RECORDS - len(range(0, RECORDS, 7))
    assert len({key for key, _ in held}) == members  # some perhaps twice, none missing
    assert reported(reports, "written") == len(contacts) == len(references) == members
    assert set(references.values()) == {1}
    state = ledger(recipe, MAILCHIMP_RECIPE)
    assert (state.dead_letters, state.in_flight) == ([], [])
    assert faults.hits


class OutageAfter(Faults):
    """Answers the first ``requests`` API requests, then a 503 to every one: a service that
    goes down in the middle of a run."""

    _seen: list[int] = PrivateAttr(default_factory=lambda: [0])
    _up_for: list[int] = PrivateAttr(default_factory=lambda: [0])

    def down_after(self, requests: int) -> None:
        self._up_for[0] = requests

    def take_storm(self) -> bool:
        self._seen[0] += 1
        if self._seen[0] > self._up_for[0] and self.error_rate < 1:
            self.update(error_rate=1.0, error_statuses=[503])
        return super().take_storm()


def test_a_run_stopped_by_a_source_outage_reports_what_it_wrote(
    monkeypatch, invoke, tmp_path
) -> None:
    """Stripe goes down after a few pages: the run stops (exit 3, one line), but the gifts it
    had sent by then are in Virtuous, and its --json report must count them; else no report
    ever does (the next run finds them in the ledger: unchanged)."""
    outage = OutageAfter()
    app = stripe_app(StripeSettings(api_keys=[STRIPE_KEY], faults=outage))
    with EmulatorServer(app) as stripe, virtuous_serving(monkeypatch) as virtuous:
        monkeypatch.setenv("STRIPE_BASE_URL", stripe.url)
        monkeypatch.setenv("STRIPE_API_KEY", STRIPE_KEY)
        wanted = stripe_charges(app.state.store, 60, "outage")
        recipe = stripe_to_virtuous(tmp_path, 10, page=5)
        outage.down_after(12)
        stopped = invoke("run", recipe, "--json")
        held_then = virtuous_held(virtuous)
        outage.clear()
        outage.down_after(10**9)
        rest = run_json(invoke, recipe)
        held = virtuous_held(virtuous)
    assert stopped.exit_code == 3
    assert stopped.stderr.count("\n") == 1  # one line, no traceback
    assert "Stripe" in stopped.stderr
    assert held_then  # gifts were sent before the outage
    assert_held_exactly(held, as_held(wanted, "Stripe"))
    report = json.loads(stopped.stdout or "null")
    assert report is not None, "the stopped run printed no report of the gifts it had sent"
    assert report["outcomes"]["written"] == len(held_then)
    assert report["ok"] is False
    assert "Stripe" in report["stopped"]
    assert reported([report, rest], "written") == len(held)
    assert reported_money([report, rest]) == money_of(money for _, money in held)


def test_the_scenarios_switch_every_fault_the_emulators_have() -> None:
    """A new switch in core.emulation.Faults must join a scenario here."""
    switched = Counter(name for switches in SCENARIOS.values() for name in switches)
    rates = {"error_rate", "timeout_rate", "drop_rate", "lost_response_rate"}
    kinds = rates | {"rate_limit_storm", "latency_seconds"}
    companions = {"error_statuses", "hang_seconds", "storm_retry_after", "seed"}
    assert set(Faults.model_fields) <= kinds | companions
    assert kinds <= set(switched)
