from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..types import UNSET, Unset
from typing import cast

if TYPE_CHECKING:
  from ..models.key import Key





T = TypeVar("T", bound="Keys")



@_attrs_define
class Keys:
    """ 
        Attributes:
            keys (list[Key]):
            signing_kid (None | str | Unset): The key new tokens are signed with.
     """

    keys: list[Key]
    signing_kid: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        from ..models.key import Key # noqa: PLC0415
        keys = []
        for keys_item_data in self.keys:
            keys_item = keys_item_data.to_dict()
            keys.append(keys_item)



        signing_kid: None | str | Unset
        if isinstance(self.signing_kid, Unset):
            signing_kid = UNSET
        else:
            signing_kid = self.signing_kid


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "keys": keys,
        })
        if signing_kid is not UNSET:
            field_dict["signing_kid"] = signing_kid

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.key import Key # noqa: PLC0415
        d = dict(src_dict)
        keys = []
        _keys = d.pop("keys")
        for keys_item_data in (_keys):
            keys_item = Key.from_dict(keys_item_data)



            keys.append(keys_item)


        def _parse_signing_kid(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        signing_kid = _parse_signing_kid(d.pop("signing_kid", UNSET))


        keys = cls(
            keys=keys,
            signing_kid=signing_kid,
        )


        keys.additional_properties = d
        return keys

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
