"""Mailchimp: audience members as a source and a sink, through the mailchimp-marketing SDK."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from connectors.mailchimp.members_sink import MembersSink
from connectors.mailchimp.members_source import MembersSource
from connectors.mailchimp.transforms import email_owner, mailchimp_tag_names, primary_email
from core.hookspecs import hookimpl
from core.sink import Sink
from core.source import Source
from core.transforms import Transform


@hookimpl
def connector_register_sources() -> Iterable[type[Source]]:
    return [MembersSource]


@hookimpl
def connector_register_sinks() -> Iterable[type[Sink]]:
    return [MembersSink]


@hookimpl
def connector_register_transforms() -> Mapping[str, Transform]:
    return {
        "mailchimp_tag_names": mailchimp_tag_names,
        "primary_email": primary_email,
        "email_owner": email_owner,
    }
