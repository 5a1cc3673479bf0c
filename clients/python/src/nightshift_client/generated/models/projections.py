from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from typing import cast

if TYPE_CHECKING:
  from ..models.stored_projection import StoredProjection





T = TypeVar("T", bound="Projections")



@_attrs_define
class Projections:
    """ 
        Attributes:
            projections (list[StoredProjection]): Newest `as_of` first.
     """

    projections: list[StoredProjection]
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        from ..models.stored_projection import StoredProjection # noqa: PLC0415
        projections = []
        for projections_item_data in self.projections:
            projections_item = projections_item_data.to_dict()
            projections.append(projections_item)




        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "projections": projections,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.stored_projection import StoredProjection # noqa: PLC0415
        d = dict(src_dict)
        projections = []
        _projections = d.pop("projections")
        for projections_item_data in (_projections):
            projections_item = StoredProjection.from_dict(projections_item_data)



            projections.append(projections_item)


        projections = cls(
            projections=projections,
        )


        projections.additional_properties = d
        return projections

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
