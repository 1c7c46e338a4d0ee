"""The *secrets* standing suite: no secret is ever shown or stored where it should not be.

Every recipe in ``recipes/`` runs against the emulators of the services it names, with canary
credentials: API keys, a password and a two-factor code (the Virtuous password grant), the OAuth
tokens Virtuous hands out, and a password in each base URL's userinfo. Each recipe goes through a
clean run at ``-vv`` (every request logged) with ``--json``, a refused key, a service answering
5xx (failed records, dead letters), a mapping error that quotes an interpolated key, ``connector
test``, ``validate``, ``state show`` and ``dlq list|show``. Then the canaries are searched for
in everything printed, every file the runs left (outputs, locks, the state database and its
journals, byte by byte), and the state database's rows: OAuth tokens may only be in
``http_tokens`` of a database only its owner can read.

A new recipe is covered as it is added: its services are the ones whose ``${SERVICE_...}``
variables it reads.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from click.testing import Result

from connectors.donorbox.emulator.app import EmulatorSettings as DonorboxSettings
from connectors.donorbox.emulator.app import create_app as donorbox_app
from connectors.givebutter.emulator.app import EmulatorSettings as GivebutterSettings
from connectors.givebutter.emulator.app import create_app as givebutter_app
from connectors.givebutter.emulator.shapes import KINDS
from connectors.mailchimp.emulator.app import create_app as mailchimp_app
from connectors.mailchimp.emulator.store import EmulatorSettings as MailchimpSettings
from connectors.stripe.emulator.app import EmulatorSettings as StripeSettings
from connectors.stripe.emulator.app import create_app as stripe_app
from connectors.virtuous import transactions
from connectors.virtuous.emulator.app import EmulatorSettings as VirtuousSettings
from connectors.virtuous.emulator.app import create_app as virtuous_app
from core.emulation import EmulatorServer
from core.http import redact
from core.http.retry import RetryTransport
from tests.connectors.mailchimp.conftest import people
from tests.connectors.virtuous.test_export_recipe import SEED as VIRTUOUS_GIFTS

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
ALL_RECIPES = sorted(RECIPES.glob("*.yaml"))

#: The credentials the recipes read, each a value that must never be shown or stored.
KEYS = {
    "VIRTUOUS_API_KEY": "vk-canary-Virtuous-4f7a9e",
    "STRIPE_API_KEY": "sk_test_canaryStripe8b2c6d",
    "MAILCHIMP_API_KEY": "canaryMailchimp3e5f1a-us1",
    "GIVEBUTTER_API_KEY": "gb-canary-Givebutter-7d0c2b",
    "DONORBOX_API_KEY": "dbx-canary-Donorbox-9a4e6f",
    "STRIPE_WEBHOOK_SECRET": "whsec_canaryStripeHook5e1f0a",
    "DONORBOX_WEBHOOK_SECRET": "dbx-canary-DonorboxHook2c8d4b",
    "VIRTUOUS_WEBHOOK_SECRET": "vk-canary-VirtuousHook7b3e9d",
    "MAILCHIMP_WEBHOOK_SECRET": "canaryMailchimpHook4d6c2e",
    "GIVEBUTTER_WEBHOOK_SECRET": "gb-canary-GivebutterHook8f1a3c",
}
#: The same names, holding keys the services refuse (which must not show either).
WRONG_KEYS = {name: f"wrong-{value[::-1]}" for name, value in KEYS.items()}
PASSWORD = "canary horse Battery 5!"
OTP = "73194682"
USERINFO_PASSWORD = "canaryUserinfoPw6q2w"
SIGN_IN = {"VIRTUOUS_PASSWORD": PASSWORD, "VIRTUOUS_OTP": OTP}
#: Other variables the recipes read: not secrets.
PLAIN = {"DONORBOX_EMAIL": "ops@example.org", "MAILCHIMP_LIST_ID": "L1"}
USER = "ops@example.org"
PROJECTS = [
    {"name": n, "code": c}
    for n, c in (("General", "GENERAL"), ("Scholarships", "SCHOLAR"), ("Missions", "MISSIONS"))
]

CANARIES = [*KEYS.values(), *WRONG_KEYS.values(), PASSWORD, OTP, USERINFO_PASSWORD]


# --- the services -------------------------------------------------------------------------------


@dataclass
class Service:
    """One emulator, serving the canary credentials, and the variables that point at it."""

    server: EmulatorServer
    env: dict[str, str]

    def control(self, path: str, body: dict[str, Any]) -> None:
        httpx.post(f"{self.server.url}/_emulator/{path}", json=body, timeout=10).raise_for_status()


def _with_userinfo(url: str) -> str:
    return url.replace("://", f"://suite:{USERINFO_PASSWORD}@", 1)


def _virtuous() -> tuple[Any, Callable[[str], dict[str, str]]]:
    settings = VirtuousSettings.model_validate(
        {
            "api_keys": {KEYS["VIRTUOUS_API_KEY"]: {"org": "org-1"}},
            "users": [
                {
                    "email": USER,
                    "password": PASSWORD,
                    "two_factor": True,
                    "otp": OTP,
                    "org": "org-1",
                }
            ],
        }
    )
    return virtuous_app(settings), lambda url: {"VIRTUOUS_BASE_URL": url}


def _stripe() -> tuple[Any, Callable[[str], dict[str, str]]]:
    app = stripe_app(StripeSettings(api_keys=[KEYS["STRIPE_API_KEY"]]))
    store = app.state.store
    # Recent charges: a first read starts at the oldest, and every day since costs a request.
    recent = int(time.time()) - 5 * 86_400
    for day, currency, amount in ((0, "usd", 2500), (1, "jpy", 1500), (2, "usd", 990)):
        store.seed_charge(
            {
                "amount": amount,
                "currency": currency,
                "created": recent + day * 86_400,
                "billing_details": {"name": "Ada Lovelace", "email": "ada@example.org"},
            }
        )
    charge = store.seed_charge(
        {"amount": 700, "created": recent + 3 * 86_400, "billing_details": {"name": "A B"}}
    )
    store.create_refund({"charge": charge["id"], "created": recent + 4 * 86_400})
    return app, lambda url: {"STRIPE_BASE_URL": url}


def _mailchimp() -> tuple[Any, Callable[[str], dict[str, str]]]:
    settings = MailchimpSettings(api_keys=[KEYS["MAILCHIMP_API_KEY"]], lists={"L1": "Donors"})
    app = mailchimp_app(settings)
    for member in people(3):
        app.state.emulator.create(
            "L1", member["email_address"], "subscribed", member["merge_fields"], None,
            member["last_changed"],
        )  # fmt: skip
    return app, lambda url: {"MAILCHIMP_BASE_URL": f"{url}/3.0"}


def _givebutter() -> tuple[Any, Callable[[str], dict[str, str]]]:
    app = givebutter_app(GivebutterSettings(api_keys=[KEYS["GIVEBUTTER_API_KEY"]]))
    app.state.emulator.seed_kinds(*KINDS)
    return app, lambda url: {"GIVEBUTTER_BASE_URL": url}


def _donorbox() -> tuple[Any, Callable[[str], dict[str, str]]]:
    credentials = {PLAIN["DONORBOX_EMAIL"]: KEYS["DONORBOX_API_KEY"]}
    app = donorbox_app(DonorboxSettings(credentials=credentials))
    app.state.emulator.seed_every_state()
    return app, lambda url: {"DONORBOX_BASE_URL": url}


EMULATORS = {
    "virtuous": _virtuous,
    "stripe": _stripe,
    "mailchimp": _mailchimp,
    "givebutter": _givebutter,
    "donorbox": _donorbox,
}


@contextmanager
def serving(names: set[str]) -> Iterator[dict[str, Service]]:
    with ExitStack() as stack:
        services = {}
        for name in sorted(names):
            app, variables = EMULATORS[name]()
            server = stack.enter_context(EmulatorServer(app))
            services[name] = Service(server, variables(_with_userinfo(server.url)))
        if "virtuous" in services:
            virtuous = services["virtuous"]
            virtuous.control("seed", {"projects": PROJECTS, **VIRTUOUS_GIFTS})
            ada = {"firstName": "Ada", "lastName": "Lovelace", "email": "ada@donors.org"}
            virtuous.control("seed", {"contacts": [ada]})
        yield services


# --- what a recipe reads ------------------------------------------------------------------------

_VARIABLE = re.compile(r"\$\{([A-Z][A-Z0-9_]*)")


def _variables(data: Any) -> set[str]:
    return set(_VARIABLE.findall(yaml.safe_dump(data)))


def _services_of(data: Any) -> set[str]:
    return {name.split("_")[0].lower() for name in _variables(data)} & set(EMULATORS)


@dataclass
class Recipe:
    """A copy of a shipped recipe in the test's folder, and what was printed by its commands."""

    path: Path
    data: dict[str, Any]
    invoke: Callable[..., Result]
    printed: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.data["name"])

    def variant(self, suffix: str, change: Callable[[dict[str, Any]], None]) -> Recipe:
        data = yaml.safe_load(self.path.read_text())
        data.pop("two_way", None)  # run alone: its pair names the original, not this copy
        change(data)
        data["name"] = f"{data['name']}-{suffix}"
        path = self.path.with_name(f"{self.path.stem}-{suffix}.yaml")
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return Recipe(path, data, self.invoke, self.printed)

    def __call__(self, *args: str, codes: tuple[int, ...] = (0, 1), verbose: str = "") -> Result:
        """``connector [verbose] COMMAND [SUBCOMMAND] RECIPE [ARGS]``, as a user types it."""
        command = args[:2] if args[0] in ("state", "dlq") else args[:1]
        flags = (verbose,) if verbose else ()
        result = self.invoke(*flags, *command, self.path, *args[len(command) :])
        self.printed.append(result.output)
        assert result.exit_code in codes, result.output
        assert "Traceback" not in result.output
        return result

    def look_at_state(self) -> None:
        """What a user looks at: state show, the dead letters listed and shown."""
        self("state", "show", codes=(0,))
        self("dlq", "list")
        listed = self("dlq", "list", "--json").stdout
        for key in re.findall(r'"key": "([^"]+)"', listed)[:2]:
            self("dlq", "show", key, codes=(0,))


def _key_variable(data: dict[str, Any]) -> str:
    """The recipe's first API key (the sink's first: the one a mapping error would quote)."""
    for part in ("sink", "source"):
        for name in sorted(_variables(data[part])):
            if name in KEYS:
                return name
    return "VIRTUOUS_API_KEY"  # a recipe with no key: quote one anyway


def _quote_key(data: dict[str, Any]) -> None:
    """Every record fails to map, with a message that quotes the interpolated key."""
    data["filter"] = f"('${{{_key_variable(data)}}}' | to_int) == 0"


def _sign_in_to_virtuous(data: dict[str, Any]) -> None:
    """Virtuous through the password grant with a two-factor code, instead of an API key."""
    for part in ("source", "sink", "reconcile"):
        settings = (data.get(part) or {}).get("with", {})
        if settings.get("api_key") == "${VIRTUOUS_API_KEY}":
            del settings["api_key"]
            settings.update(username=USER, password="${VIRTUOUS_PASSWORD}", otp="${VIRTUOUS_OTP}")


# --- the suite ----------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _fresh_redaction(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each command starts as a new process would: knowing no secret until its recipe loads."""
    monkeypatch.setattr(redact, "_secrets", set())


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """5xx answers are retried at once: this suite looks at what is shown, not at timing."""
    monkeypatch.setattr(RetryTransport, "_backoff", lambda self, attempt, server: server or 0.0)
    monkeypatch.setattr(transactions, "_backoff", lambda policy, attempt: 0.0)


def _copy(tmp_path: Path, source: Path, invoke: Callable[..., Result]) -> Recipe:
    folder = tmp_path / "recipes"
    if not folder.exists():
        shutil.copytree(RECIPES, folder, ignore=shutil.ignore_patterns(".connector", "*.yaml"))
    path = Path(shutil.copy(source, folder / source.name))
    data = yaml.safe_load(path.read_text())
    partner = (data.get("two_way") or {}).get("with")
    if partner:  # the other recipe of a two-way pair, which it names
        shutil.copy(source.parent / partner, folder / partner)
    return Recipe(path, data, invoke)


@pytest.mark.parametrize("source", ALL_RECIPES, ids=[p.stem for p in ALL_RECIPES])
def test_no_canary_is_ever_shown_or_stored(
    source: Path, tmp_path: Path, invoke: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = _copy(tmp_path, source, invoke)
    names = _services_of(recipe.data)
    for name, value in {
        **KEYS,
        **PLAIN,
        "VIRTUOUS_PASSWORD": PASSWORD,
        "VIRTUOUS_OTP": OTP,
    }.items():
        monkeypatch.setenv(name, value)
    with serving(names) as services:
        for service in services.values():
            for name, value in service.env.items():
                monkeypatch.setenv(name, value)
        _go_through_everything(recipe, services, monkeypatch)
    tokens = _tokens(tmp_path)
    # Signed in, the tokens were saved (a run of a webhook recipe with no poll reaches none).
    assert bool(tokens) == ("virtuous" in names and _polls(recipe.data))
    _assert_nowhere(recipe.printed, tmp_path, tokens)


def _go_through_everything(
    recipe: Recipe, services: dict[str, Service], monkeypatch: pytest.MonkeyPatch
) -> None:
    ran = (0, 1) if _polls(recipe.data) else (2,)  # no poll: run refuses, naming serve
    recipe("validate", codes=(0,))
    recipe("test", codes=(0,))
    recipe("run", "--json", codes=ran, verbose="-vv")  # every request logged
    recipe.look_at_state()

    quoting = recipe.variant("quoting", _quote_key)
    assert "mapping failed" in quoting("test", codes=(1,)).stdout
    quoting("run", codes=ran, verbose="-v")  # the summary a person reads, with each reason
    quoting.look_at_state()

    if "virtuous" in services and _polls(recipe.data):
        signed_in = recipe.variant("signed-in", _sign_in_to_virtuous)
        signed_in("run", "--json", verbose="-vv")  # the password grant, with a two-factor code
        signed_in("run", "--json", verbose="-vv")  # the saved tokens
        signed_in.look_at_state()

    if services and _polls(recipe.data):
        target = _sink_service(recipe.data, services)
        target.control("faults", {"error_rate": 1.0, "error_statuses": [500, 503]})
        failing = recipe.variant("failing", lambda data: None)
        failing("run", "--json", codes=(1, 3), verbose="-vv")
        failing.look_at_state()
        target.control("faults", {"error_rate": 0.0})

        for name, value in WRONG_KEYS.items():
            monkeypatch.setenv(name, value)
        refused = recipe.variant("refused", lambda data: None)
        result = refused("run", "--json", codes=(3,), verbose="-v")
        assert "refused" in result.stderr or "denied" in result.stderr, result.stderr


def _polls(data: dict[str, Any]) -> bool:
    """Whether ``connector run`` reads anything: a webhook recipe's events come through
    ``connector serve``, and a run of it only runs its ``reconcile:`` poll, if it has one."""
    return not str(data["source"]["use"]).endswith(".webhook") or "reconcile" in data


def _sink_service(data: dict[str, Any], services: dict[str, Service]) -> Service:
    """The service the recipe writes to, else the one it reads from."""
    names = _services_of(data["sink"]) or _services_of(data["source"])
    return services[sorted(names)[0]]


def _tokens(folder: Path) -> list[str]:
    """The OAuth tokens saved in the state databases under ``folder``."""
    found = []
    for database in folder.rglob("state.db"):
        assert stat.S_IMODE(database.stat().st_mode) & 0o077 == 0, database
        with sqlite3.connect(database) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            if "http_tokens" in tables:
                for (saved,) in db.execute("SELECT tokens FROM http_tokens"):
                    found += re.findall(r'"(?:access|refresh)_token": "([^"]+)"', saved)
    return found


def _assert_nowhere(printed: list[str], folder: Path, tokens: list[str]) -> None:
    assert _leaks(printed, folder, tokens) == []


def _leaks(printed: list[str], folder: Path, tokens: list[str]) -> list[str]:
    """Where each canary was found: what was printed, a file, a table of the state database."""
    found = []
    everything = "\n".join(printed)
    for canary in [*CANARIES, *tokens]:
        if canary in everything:
            found.append(f"{canary!r} was printed")
    for file in (p for p in folder.rglob("*") if p.is_file() and p.suffix != ".yaml"):
        content = file.read_bytes()
        where = file.relative_to(folder)
        found += [f"{c!r} is in {where}" for c in CANARIES if c.encode() in content]
        if file.name == "state.db":
            found += _tokens_outside_their_table(file, tokens)
        elif not file.name.startswith("state.db"):
            found += [f"a token is in {where}" for t in tokens if t.encode() in content]
    return found


def _tokens_outside_their_table(database: Path, tokens: list[str]) -> list[str]:
    found = []
    with sqlite3.connect(database) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in (t for t in tables if t != "http_tokens"):
            rows = repr(db.execute(f'SELECT * FROM "{table}"').fetchall())  # names: sqlite_master
            found += [f"a token is in table {table}" for token in tokens if token in rows]
    return found
