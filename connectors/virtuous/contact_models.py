"""Pydantic models of the contacts the Virtuous connector sends, with Virtuous's field names and
casing (``firstName``/``lastName``, unlike the gift transaction's contact)."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from connectors.virtuous.models import Text, _Payload


class ContactTransaction(_Payload):
    """``POST /api/Contact/Transaction``: a contact to create or merge in the nightly import."""

    referenceSource: Text = None
    referenceId: Text = None
    contactType: str = "Household"
    name: Text = None
    title: Text = None
    firstName: Text = None
    middleName: Text = None
    lastName: Text = None
    suffix: Text = None
    birthMonth: int | None = None
    birthDay: int | None = None
    birthYear: int | None = None
    gender: Text = None
    emailType: Text = None
    email: Text = None
    phoneType: Text = None
    phone: Text = None
    address1: Text = None
    address2: Text = None
    city: Text = None
    state: Text = None
    postal: Text = None
    country: Text = None
    tags: Text = Field(default=None, description="semicolon-separated")
    originSegmentCode: Text = None
    emailLists: list[str] | None = None
    customFields: dict[str, str] | None = None

    @model_validator(mode="after")
    def _named(self) -> Self:
        if self.contactType in ("Organization", "Foundation"):
            if not self.name:
                msg = f"a {self.contactType} contact needs a name"
                raise ValueError(msg)
        elif not (self.firstName and self.lastName) and not self.name:
            msg = "needs firstName and lastName (or name)"
            raise ValueError(msg)
        return self


class ContactUpdate(_Payload):
    """Fields to change on an existing contact, found by reference, then by email."""

    referenceSource: Text = None
    referenceId: Text = None
    email: Text = None
    contactType: Text = None
    name: Text = None
    informalName: Text = None
    description: Text = None
    website: Text = None
    maritalStatus: Text = None
    firstName: Text = Field(default=None, description="of the primary individual")
    lastName: Text = Field(default=None, description="of the primary individual")
    middleName: Text = None
    customFields: dict[str, str] | None = None

    @model_validator(mode="after")
    def _findable(self) -> Self:
        if not ((self.referenceSource and self.referenceId) or self.email):
            msg = "needs referenceSource and referenceId, or email, to find the contact"
            raise ValueError(msg)
        return self
