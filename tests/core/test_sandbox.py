"""``connector sandbox``: every emulator on loopback, the variables that point recipes at them,
and runs of any recipes against them that leave the checkout as it was (what `make demo` runs)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from core.plugins import load_plugin_manager
from core.sandbox import FAULTS
from core.sandbox.fleet import chosen, registered_emulators, serving

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "recipes"
GIFTS_FROM_CSV = RECIPES / "csv-donations-to-virtuous-gifts.yaml"
# ${NAME} without a default: a run cannot start unless something sets it.
_REQUIRED = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)\}")


@pytest.fixture
def no_serving(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --run the sandbox serves until Ctrl-C: here it stops at once."""
    monkeypatch.setattr("core.sandbox.command._serve_until_interrupted", lambda: None)


def _checkout_files() -> set[Path]:
    return {p for p in RECIPES.rglob("*") if ".connector" not in p.parts or p.is_file()}


def test_the_demo_sends_each_gift_once_and_writes_nothing_beside_the_recipe(
    invoke, tmp_path
) -> None:
    before = _checkout_files()
    result = invoke(
        "sandbox", "--service", "virtuous", "--run", GIFTS_FROM_CSV, "--twice", "--dir", tmp_path
    )
    assert result.exit_code == 0, result.output
    assert "nightly import ran: 4 gift(s)" in result.output
    assert "imported into Virtuous: 4" in result.output
    again = result.output.split("(again)")[1]
    assert "unchanged" in again
    assert "written" not in again
    assert _checkout_files() == before
    assert (tmp_path / "state.db").is_file()


def test_a_sandbox_started_again_in_its_folder_sends_to_its_fresh_emulators(
    invoke, tmp_path
) -> None:
    # The emulators start afresh each time; the state an earlier sandbox left in the folder
    # would call every gift unchanged, and the new Virtuous would never see one.
    args = [
        "sandbox",
        "--service",
        "virtuous",
        "--run",
        str(GIFTS_FROM_CSV),
        "--dir",
        str(tmp_path),
    ]
    assert "nightly import ran: 4 gift(s)" in invoke(*args).output
    again = subprocess.run(  # another day, another process
        [sys.executable, "-c", "from core.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert "nightly import ran: 4 gift(s)" in again.stdout
    assert (tmp_path / "previous-state.db").is_file()  # set aside, not deleted


def test_a_stripe_recipe_runs_against_the_stripe_emulator_with_no_key_set(
    invoke, tmp_path, monkeypatch
) -> None:
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)
    monkeypatch.delenv("VIRTUOUS_API_KEY", raising=False)
    recipe = RECIPES / "stripe-charges-to-virtuous-gifts.yaml"
    result = invoke("sandbox", "--run", recipe, "--dir", tmp_path)
    assert result.exit_code == 0, result.output
    assert "not set" not in result.output
    assert "imported into Virtuous: 11" in result.output  # 12 charges, one declined


def test_recipes_that_send_no_gifts_run_twice_beside_gift_ones_leaving_outputs_in_its_folder(
    invoke, tmp_path
) -> None:
    before = _checkout_files()
    export = RECIPES / "virtuous-gifts-to-csv.yaml"
    result = invoke(
        "sandbox", "--service", "virtuous", "--run", GIFTS_FROM_CSV, "--run", export, "--twice",
        "--dir", tmp_path,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output.count("$ connector run") == 4
    status = [line for line in result.output.splitlines() if line.startswith("$ connector status")]
    assert len(status) == 1  # the export sends no gifts
    # a command that runs as typed: the copy the run read, and the state it kept
    recipe, option, state = status[0].removeprefix("$ connector status ").split()
    assert Path(recipe).name == "csv-donations-to-virtuous-gifts.yaml"
    assert Path(recipe).is_file()
    assert option == "--state"
    assert Path(state).is_file()
    assert not (RECIPES / "exports").exists()
    assert _checkout_files() == before
    exported = list(tmp_path.rglob("virtuous-gifts.csv"))
    assert len(exported) == 1
    assert len(exported[0].read_text().splitlines()) == 1 + 6 + 4  # seeded, then imported


@pytest.mark.usefixtures("no_serving")
def test_it_prints_and_writes_the_variables_of_every_shipped_recipe(invoke, tmp_path) -> None:
    result = invoke("sandbox", "--dir", tmp_path)
    assert result.exit_code == 0, result.output
    required = {
        name for recipe in RECIPES.glob("*.yaml") for name in _REQUIRED.findall(recipe.read_text())
    }
    env_file = (tmp_path / "sandbox.env").read_text()
    for name in required | {"VIRTUOUS_BASE_URL", "STRIPE_BASE_URL"}:
        assert f"export {name}=" in result.output
        assert f"export {name}=" in env_file
    assert f"source {tmp_path / 'sandbox.env'}" in result.output
    for service in ("virtuous", "stripe", "mailchimp", "givebutter", "donorbox"):
        assert re.search(rf"^{service} +http://127\.0\.0\.1:\d+ ", result.output, re.M)


@pytest.mark.usefixtures("no_serving")
def test_one_service_alone(invoke, tmp_path) -> None:
    result = invoke("sandbox", "--service", "stripe", "--dir", tmp_path)
    assert result.exit_code == 0, result.output
    assert "export STRIPE_API_KEY=" in result.output
    assert "VIRTUOUS" not in result.output


def test_an_unknown_service_is_refused_with_the_choices(invoke) -> None:
    result = invoke("sandbox", "--service", "paypal")
    assert result.exit_code == 2
    assert "unknown emulator 'paypal'" in result.stderr
    assert "donorbox, givebutter, mailchimp, stripe, virtuous" in result.stderr


@pytest.mark.parametrize(
    ("seed", "said"),
    [
        ('{"gifts": [{"contactId": 5, "amount": "1"}]}', "seeded gift names no existing contact"),
        ("projects: [GENERAL]", "is not JSON"),
    ],
    ids=["refused", "not-json"],
)
def test_a_seed_the_emulator_cannot_take_stops_the_sandbox(
    invoke, tmp_path, seed: str, said: str
) -> None:
    (tmp_path / "seed.json").write_text(seed)
    result = invoke(
        "sandbox", "--service", "virtuous", "--seed", f"virtuous={tmp_path / 'seed.json'}"
    )
    assert result.exit_code == 2, result.output
    assert said in result.stderr
    assert "Traceback" not in result.output


def test_a_seed_must_name_its_emulator_when_several_run(invoke, tmp_path) -> None:
    (tmp_path / "seed.json").write_text("{}")
    result = invoke("sandbox", "--seed", tmp_path / "seed.json")
    assert result.exit_code == 2
    assert "--seed NAME=" in result.stderr


def test_faults_are_switched_on_in_every_emulator() -> None:
    pm = load_plugin_manager(load_entrypoints=False).pm
    emulators = chosen(registered_emulators(pm), [])
    with serving(emulators, faults=True) as served:
        for one in served:
            switches = httpx.post(f"{one.url}/_emulator/faults", json={}).json()
            assert switches["error_rate"] == FAULTS["error_rate"], one.name


def test_a_recipe_in_a_crowded_folder_is_not_copied(invoke, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr("core.sandbox.workspace.MAX_FILES", 3)
    for number in range(4):
        (tmp_path / f"{number}.csv").write_text("id\n1\n")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("version: 1\nname: r\nsource: {use: file.csv, with: {path: 0.csv}}\n")
    result = invoke("sandbox", "--service", "virtuous", "--run", recipe, "--dir", tmp_path / "s")
    assert result.exit_code == 2
    assert "too many to copy" in result.stderr


def test_its_folder_inside_the_recipes_is_not_copied_into_itself(invoke, tmp_path) -> None:
    (tmp_path / "in.jsonl").write_text('{"id": 1}\n')
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "version: 1\nname: r\nsource: {use: file.jsonl, with: {path: in.jsonl}}\n"
        "sink: {use: file.jsonl, with: {path: out.jsonl}}\n"
    )
    folder = tmp_path / "sandbox"
    result = invoke("sandbox", "--service", "virtuous", "--run", recipe, "--dir", folder)
    assert result.exit_code == 0, result.output
    assert not (folder / f"1-{tmp_path.name}" / "sandbox").exists()
    assert (folder / f"1-{tmp_path.name}" / "out.jsonl").read_text() == '{"id": 1}\n'
    assert not (tmp_path / "out.jsonl").exists()


def test_a_webhook_recipe_is_served_and_a_new_contact_travels_to_mailchimp(
    invoke, tmp_path
) -> None:
    from connectors.mailchimp.service import subscriber_hash

    before = _checkout_files()
    recipe = RECIPES / "virtuous-webhooks-to-mailchimp.yaml"
    result = invoke(
        "sandbox", "--service", "virtuous", "--service", "mailchimp", "--run", recipe,
        "--dir", tmp_path,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    url = re.search(
        r"--url (http://127\.0\.0\.1:\d+/hooks/virtuous-webhooks-to-mailchimp)\n", result.output
    )
    assert url is not None, result.output
    assert (
        f"registered webhook 1 (ContactCreate, ContactUpdate) delivering to {url[1]}"
        in result.output
    )
    assert "$ connector run" not in result.output  # served, not run
    assert "Virtuous fires ContactCreate" in result.output  # Hedy Lamarr's gift, imported
    travelled = result.output.split("through connector serve: ")[1]
    assert travelled.startswith("1 event(s) received, 1 synced, 0 waiting")
    member = subscriber_hash("hedy@example.org")
    assert re.search(
        rf"^  \d+  ContactCreate -> in mailchimp.members as {member}$", travelled, re.M
    )
    assert "outcomes (its webhooks and its poll): written 5" in travelled  # 4 polled, Hedy
    assert "mailchimp now holds: 9 members" in result.output  # 6, Ada, Grace and Hedy
    assert _checkout_files() == before


def test_a_service_subscribed_in_its_dashboard_gets_the_sandboxs_url_and_secret(
    invoke, tmp_path, monkeypatch
) -> None:
    monkeypatch.delenv("DONORBOX_WEBHOOK_SECRET", raising=False)
    recipe = RECIPES / "donorbox-webhooks-to-virtuous-gifts.yaml"
    result = invoke(
        "sandbox", "--service", "donorbox", "--service", "virtuous", "--run", recipe,
        "--dir", tmp_path,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "donorbox has no API for webhooks: the sandbox adds http://127.0.0.1:" in result.output
    assert "Donorbox fires donation.created" in result.output
    travelled = result.output.split("through connector serve: ")[1]
    assert travelled.startswith("1 event(s) received, 1 synced, 0 waiting")
    assert re.search(
        r"^  13  donation.created -> in virtuous.gift_transactions as txn/", travelled, re.M
    )
    assert "DONORBOX_WEBHOOK_SECRET" not in (tmp_path / "sandbox.env").read_text()
