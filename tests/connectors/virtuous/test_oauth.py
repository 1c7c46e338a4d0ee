"""Signing in with a Virtuous user: the password grant, two-factor codes, saved tokens."""

from __future__ import annotations

from tests.connectors.virtuous.support import donations_csv, gifts_recipe, report, running

USER = {
    "email": "ops@example.org",
    "password": "correct horse 9!",
    "two_factor": True,
    "otp": "424242",
    "org": "org-1",
}


def _recipe(otp: str) -> str:
    return gifts_recipe().replace(
        '    api_key: "${VIRTUOUS_API_KEY}"\n',
        '    username: ops@example.org\n    password: "${VIRTUOUS_PASSWORD}"\n'
        f"    otp: '{otp}'\n",
    )


def test_two_factor_login_once_then_saved_tokens(
    monkeypatch, write_recipe, invoke, tmp_path
) -> None:
    with running(users=[USER]) as emulator:
        monkeypatch.setenv("VIRTUOUS_BASE_URL", emulator.url)
        monkeypatch.setenv("VIRTUOUS_PASSWORD", USER["password"])
        donations_csv(tmp_path / "donations.csv", 2)
        recipe = write_recipe(_recipe("424242"))
        assert report(invoke("run", recipe, "--json"))["outcomes"]["written"] == 2
        logins = emulator.requests("/Token")
        assert [r["status"] for r in logins] == [202, 200]
        donations_csv(tmp_path / "donations.csv", 3)
        assert report(invoke("run", recipe, "--json"))["outcomes"]["written"] == 1
        assert len(emulator.requests("/Token")) == 2  # the saved token was used
    database = (tmp_path / ".connector" / "state.db").read_bytes()
    assert USER["password"].encode() not in database


def test_a_wrong_two_factor_code_stops_the_run(monkeypatch, write_recipe, invoke, tmp_path) -> None:
    with running(users=[USER]) as emulator:
        monkeypatch.setenv("VIRTUOUS_BASE_URL", emulator.url)
        monkeypatch.setenv("VIRTUOUS_PASSWORD", USER["password"])
        donations_csv(tmp_path / "donations.csv", 1)
        result = invoke("run", write_recipe(_recipe("000000")))
    assert result.exit_code == 3
    assert "Virtuous" in result.stderr
    assert USER["password"] not in result.output
