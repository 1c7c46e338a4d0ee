"""``connector webhooks register|list|remove RECIPE``: a webhook recipe's subscriptions on its
service, through the service's API (the source's ``subscribe``, ``subscriptions``,
``unsubscribe``).

``register`` needs the secret the service will sign with (or put in the URL) before that secret
exists anywhere: when the variable the recipe's ``secret:`` names (``${VIRTUOUS_WEBHOOK_SECRET}``)
is not set, a new secret is made, registered, and printed with the line to add to ``.env``. When
it is set, the subscription uses it, so several subscriptions can share one secret.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from core.cli import Session, pass_session, recipe_argument, reports_errors, state_option
from core.errors import MissingSecretError, RecipeValidationError

if TYPE_CHECKING:
    from core.recipe import Recipe
    from core.webhooks import Subscription, WebhookSource

_VARIABLE = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}$")


@click.group()
def webhooks() -> None:
    """A webhook recipe's subscriptions on its service: register, list, remove."""


@webhooks.command("register")
@recipe_argument
@click.option(
    "--url",
    required=True,
    help="where the service delivers: connector serve's public https:// URL for this recipe,"
    " ending in /hooks/<recipe name>",
)
@state_option
@pass_session
@reports_errors
def register(session: Session, recipe_path: Path, url: str, state_path: str | None) -> None:
    """Subscribe RECIPE's events on its service, delivered to URL; prints the secret to store."""
    _refuse_a_secret_the_check_cannot_see(session, recipe_path)
    registered = register_webhook(session, recipe_path, url, state_path)
    click.echo(registered.line)
    route = f"/hooks/{registered.recipe.name}"
    if not url.split("?")[0].rstrip("/").endswith(route):
        click.echo(f"note: connector serve takes this recipe's deliveries at {route}", err=True)
    if registered.new_secret:
        env_file = registered.recipe.base_dir / ".env"
        click.echo(f"its secret is new: add this line to {env_file}, then start")
        click.echo(f"connector serve {recipe_path}:\n\n{registered.variable}={registered.secret}\n")
    else:
        click.echo(f"it uses the secret already set in {registered.variable}")


def _refuse_a_secret_the_check_cannot_see(session: Session, recipe_path: Path) -> None:
    """A service that checks a new URL before it subscribes (Mailchimp's GET, its
    ``validation_methods``) is answered by ``connector serve``, which knows only the secret it
    was started with: a secret made now could not pass, so it must be set first."""
    from core.env import environment
    from core.webhooks import WebhookSource

    checked = session.recipe(recipe_path, placeholders=True)
    source = checked.source_class
    if not issubclass(source, WebhookSource) or not source.validation_methods:
        return
    variable = _secret_variable(recipe_path)
    if environment(recipe_path.parent).get(variable):
        return
    methods = "/".join(sorted(source.validation_methods))
    msg = (
        f"{source.name}: the service checks the URL with a {methods} request before it"
        f" subscribes, and only connector serve started with the secret can answer: set"
        f" {variable} to a new secret in {checked.base_dir / '.env'}, start `connector serve"
        f" {recipe_path}`, then register"
    )
    raise MissingSecretError(msg, where=checked.located.where(("source", "with", "secret")))


@dataclass(frozen=True)
class Registered:
    """A subscription just made, and the secret connector serve needs for it."""

    recipe: Recipe
    subscription: Subscription
    url: str
    #: the variable the recipe's ``secret:`` names, and the value to give it
    variable: str
    secret: str
    #: whether that value is not the one already set (made now, or the service's own)
    new_secret: bool

    @property
    def line(self) -> str:
        events = ", ".join(self.subscription.events) or "every event"
        return f"registered webhook {self.subscription.id} ({events}) delivering to {self.url}"


def register_webhook(
    session: Session, recipe_path: Path, url: str, state_path: str | None
) -> Registered:
    """Subscribe the recipe's events on its service, delivered to ``url`` (what ``connector
    webhooks register`` does, and ``connector sandbox`` for the webhook recipes it runs)."""
    from core.http import check_url

    recipe, variable, known, made = webhook_recipe(session, recipe_path)
    check_url(url, "the webhook URL")
    with _source(session, recipe, state_path) as source:
        subscription = source.subscribe(url)
    # Some services make the secret themselves (Stripe's whsec_): theirs is the one to store.
    secret = subscription.secret or known
    return Registered(recipe, subscription, url, variable, secret, made or secret != known)


@webhooks.command("list")
@recipe_argument
@state_option
@pass_session
@reports_errors
def list_subscriptions(session: Session, recipe_path: Path, state_path: str | None) -> None:
    """List the subscriptions RECIPE's service has for its credential."""
    recipe, *_ = webhook_recipe(session, recipe_path)
    with _source(session, recipe, state_path) as source:
        found = source.subscriptions()
    if not found:
        click.echo(f"no webhooks for {recipe.name} on {recipe.source_class.name}")
    for subscription in found:
        events = ", ".join(subscription.events) or "every event"
        click.echo(f"{subscription.id}  {subscription.url}  ({events})")


@webhooks.command("remove")
@recipe_argument
@click.argument("subscription_id", metavar="ID")
@state_option
@pass_session
@reports_errors
def remove(
    session: Session, recipe_path: Path, subscription_id: str, state_path: str | None
) -> None:
    """Delete the subscription ID (as `connector webhooks list` shows it) from the service."""
    recipe, *_ = webhook_recipe(session, recipe_path)
    with _source(session, recipe, state_path) as source:
        source.unsubscribe(subscription_id)
    click.echo(f"removed webhook {subscription_id}")


def _secret_variable(recipe_path: Path) -> str:
    """The variable the recipe's ``source: with: secret:`` names."""
    from core.yaml_marks import load_located_file

    located = load_located_file(recipe_path)
    data = located.data if isinstance(located.data, dict) else {}
    source = data.get("source") if isinstance(data.get("source"), dict) else {}
    given = (source.get("with") or {}).get("secret") if isinstance(source, dict) else None
    match = _VARIABLE.match(given) if isinstance(given, str) else None
    if match is None:
        msg = (
            "source.with.secret must name an environment variable, like secret:"
            ' "${WEBHOOK_SECRET}", so the secret lives in .env and not in the recipe'
        )
        where = located.where(("source", "with", "secret") if given else ("source",))
        raise RecipeValidationError(msg, where=where)
    return match.group(1)


def _secret(recipe_path: Path) -> tuple[str, str, bool]:
    """The secret variable's name, its value, and whether the value was just made."""
    from core.env import environment
    from core.http.redact import register_secret

    variable = _secret_variable(recipe_path)
    current = environment(recipe_path.parent).get(variable)
    if current:
        return variable, current, False
    made = secrets.token_urlsafe(32)
    register_secret(made)  # printed once, on purpose; masked in any error or log line
    return variable, made, True


def webhook_recipe(session: Session, recipe_path: Path) -> tuple[Recipe, str, str, bool]:
    """The recipe, loaded with its secret variable set (to a new secret when it was not), the
    variable's name, the secret, and whether it was just made."""
    from core.env import environment
    from core.recipe import load_recipe
    from core.webhooks import WebhookSource

    checked = session.recipe(recipe_path, placeholders=True)
    if not issubclass(checked.source_class, WebhookSource):
        msg = (
            f"source {checked.source_class.name} is polled and has no webhooks; use a webhook"
            " source (virtuous.webhook, mailchimp.webhook...)"
        )
        raise RecipeValidationError(msg, where=checked.located.where(("source", "use")))
    variable, secret, made = _secret(recipe_path)
    env = {**environment(recipe_path.parent), **({variable: secret} if made else {})}
    return load_recipe(recipe_path, session.registry, env=env), variable, secret, made


@contextmanager
def _source(session: Session, recipe: Recipe, state_path: str | None) -> Iterator[WebhookSource]:
    """The recipe's webhook source, with its state and HTTP clients, closed afterwards."""
    from core.context import Context
    from core.webhooks import WebhookSource

    with session.state(recipe, state_path) as store:
        context = Context(recipe.name, recipe.base_dir, store)
        source = recipe.source_class(recipe.source_settings, context)
        assert isinstance(source, WebhookSource)  # checked by webhook_recipe
        try:
            yield source
        finally:
            source.close()
            context.close()
