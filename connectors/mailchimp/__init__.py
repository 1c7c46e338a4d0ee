"""Mailchimp: audience members as a source and a sink, through the mailchimp-marketing SDK.

The source, sink and transforms are registered by name and imported when a recipe uses them; the
source and sink import the SDK only when they reach Mailchimp
(:func:`connectors.mailchimp.service.lists_api`), so ``validate`` never loads it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from core.hookspecs import hookimpl
from core.registry import Lazy


@hookimpl
def connector_register_sources() -> Iterable[Lazy]:
    return [
        Lazy("mailchimp.members", "connectors.mailchimp.members_source:MembersSource"),
        Lazy("mailchimp.webhook", "connectors.mailchimp.webhook:MailchimpWebhook"),
    ]


@hookimpl
def connector_register_sinks() -> Iterable[Lazy]:
    return [Lazy("mailchimp.members", "connectors.mailchimp.members_sink:MembersSink")]


@hookimpl
def connector_register_transforms() -> Mapping[str, Lazy]:
    names = ("mailchimp_tag_names", "primary_email", "email_owner")
    return {name: Lazy(name, f"connectors.mailchimp.transforms:{name}") for name in names}


@hookimpl
def connector_register_emulators() -> Iterable[Lazy]:
    return [Lazy("mailchimp", "connectors.mailchimp.emulator.sandbox:MailchimpSandbox")]
