from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..types import UNSET, Unset
from typing import cast
import datetime






T = TypeVar("T", bound="EmailStatus")



@_attrs_define
class EmailStatus:
    """ 
        Attributes:
            attempts (int):
            created_at (datetime.datetime):
            idempotency_key (str):
            message_id (str):
            state (str): pending, sent or failed.
            template (str):
            to (str):
            last_error (None | str | Unset):
            sent_at (datetime.datetime | None | Unset):
            smtp_reply (None | str | Unset): The SMTP server's reply to the message.
     """

    attempts: int
    created_at: datetime.datetime
    idempotency_key: str
    message_id: str
    state: str
    template: str
    to: str
    last_error: None | str | Unset = UNSET
    sent_at: datetime.datetime | None | Unset = UNSET
    smtp_reply: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        attempts = self.attempts

        created_at = self.created_at.isoformat()

        idempotency_key = self.idempotency_key

        message_id = self.message_id

        state = self.state

        template = self.template

        to = self.to

        last_error: None | str | Unset
        if isinstance(self.last_error, Unset):
            last_error = UNSET
        else:
            last_error = self.last_error

        sent_at: None | str | Unset
        if isinstance(self.sent_at, Unset):
            sent_at = UNSET
        elif isinstance(self.sent_at, datetime.datetime):
            sent_at = self.sent_at.isoformat()
        else:
            sent_at = self.sent_at

        smtp_reply: None | str | Unset
        if isinstance(self.smtp_reply, Unset):
            smtp_reply = UNSET
        else:
            smtp_reply = self.smtp_reply


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "attempts": attempts,
            "created_at": created_at,
            "idempotency_key": idempotency_key,
            "message_id": message_id,
            "state": state,
            "template": template,
            "to": to,
        })
        if last_error is not UNSET:
            field_dict["last_error"] = last_error
        if sent_at is not UNSET:
            field_dict["sent_at"] = sent_at
        if smtp_reply is not UNSET:
            field_dict["smtp_reply"] = smtp_reply

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        attempts = d.pop("attempts")

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))




        idempotency_key = d.pop("idempotency_key")

        message_id = d.pop("message_id")

        state = d.pop("state")

        template = d.pop("template")

        to = d.pop("to")

        def _parse_last_error(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        last_error = _parse_last_error(d.pop("last_error", UNSET))


        def _parse_sent_at(data: object) -> datetime.datetime | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                sent_at_type_0 = datetime.datetime.fromisoformat(data)



                return sent_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None | Unset, data)

        sent_at = _parse_sent_at(d.pop("sent_at", UNSET))


        def _parse_smtp_reply(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        smtp_reply = _parse_smtp_reply(d.pop("smtp_reply", UNSET))


        email_status = cls(
            attempts=attempts,
            created_at=created_at,
            idempotency_key=idempotency_key,
            message_id=message_id,
            state=state,
            template=template,
            to=to,
            last_error=last_error,
            sent_at=sent_at,
            smtp_reply=smtp_reply,
        )


        email_status.additional_properties = d
        return email_status

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
