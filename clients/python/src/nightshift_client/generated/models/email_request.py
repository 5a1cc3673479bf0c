from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.email_request_template import EmailRequestTemplate
from ..types import UNSET, Unset
from typing import cast

if TYPE_CHECKING:
  from ..models.email_request_vars_type_0 import EmailRequestVarsType0





T = TypeVar("T", bound="EmailRequest")



@_attrs_define
class EmailRequest:
    """ 
        Attributes:
            template (EmailRequestTemplate): The template; each names the variables it needs.
            idempotency_key (None | str | Unset): A second request with the same key returns the first message instead of a
                new one.
            to (None | str | Unset): The recipient's address. A token confined to a user sends only to that user's address
                on file: it may leave `to` out, and another address is a 404.
            vars_ (EmailRequestVarsType0 | None | Unset): The template's variables; a missing one is a 422 naming it.
     """

    template: EmailRequestTemplate
    idempotency_key: None | str | Unset = UNSET
    to: None | str | Unset = UNSET
    vars_: EmailRequestVarsType0 | None | Unset = UNSET





    def to_dict(self) -> dict[str, Any]:
        from ..models.email_request_vars_type_0 import EmailRequestVarsType0 # noqa: PLC0415
        template = self.template.value

        idempotency_key: None | str | Unset
        if isinstance(self.idempotency_key, Unset):
            idempotency_key = UNSET
        else:
            idempotency_key = self.idempotency_key

        to: None | str | Unset
        if isinstance(self.to, Unset):
            to = UNSET
        else:
            to = self.to

        vars_: dict[str, Any] | None | Unset
        if isinstance(self.vars_, Unset):
            vars_ = UNSET
        elif isinstance(self.vars_, EmailRequestVarsType0):
            vars_ = self.vars_.to_dict()
        else:
            vars_ = self.vars_


        field_dict: dict[str, Any] = {}

        field_dict.update({
            "template": template,
        })
        if idempotency_key is not UNSET:
            field_dict["idempotency_key"] = idempotency_key
        if to is not UNSET:
            field_dict["to"] = to
        if vars_ is not UNSET:
            field_dict["vars"] = vars_

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.email_request_vars_type_0 import EmailRequestVarsType0 # noqa: PLC0415
        d = dict(src_dict)
        template = EmailRequestTemplate(d.pop("template"))




        def _parse_idempotency_key(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        idempotency_key = _parse_idempotency_key(d.pop("idempotency_key", UNSET))


        def _parse_to(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        to = _parse_to(d.pop("to", UNSET))


        def _parse_vars_(data: object) -> EmailRequestVarsType0 | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                vars_type_0 = EmailRequestVarsType0.from_dict(data)



                return vars_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(EmailRequestVarsType0 | None | Unset, data)

        vars_ = _parse_vars_(d.pop("vars", UNSET))


        email_request = cls(
            template=template,
            idempotency_key=idempotency_key,
            to=to,
            vars_=vars_,
        )

        return email_request

