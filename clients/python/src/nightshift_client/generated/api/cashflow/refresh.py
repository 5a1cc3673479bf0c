from http import HTTPStatus
from typing import Any, cast
from urllib.parse import quote

import httpx

from ...client import AuthenticatedClient, Client
from ...types import Response, UNSET
from ... import errors

from ...models.error_body import ErrorBody
from ...models.projection import Projection
from ...models.refresh_request import RefreshRequest
from ...models.refreshing import Refreshing
from ...types import UNSET, Unset
from typing import cast



def _get_kwargs(
    id: int,
    *,
    body: None | RefreshRequest | Unset = UNSET,
    wait: int | Unset = UNSET,

) -> dict[str, Any]:
    headers: dict[str, Any] = {}


    

    params: dict[str, Any] = {}

    params["wait"] = wait


    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}


    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/v1/users/{id}/cashflow/refresh".format(id=quote(str(id), safe=""),),
        "params": params,
    }

    
    if isinstance(body, RefreshRequest):
        _kwargs["json"] = body.to_dict()
    else:
        _kwargs["json"] = body

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs



def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> ErrorBody | Projection | Refreshing | None:
    if response.status_code == 200:
        response_200 = Projection.from_dict(response.json())



        return response_200

    if response.status_code == 202:
        response_202 = Refreshing.from_dict(response.json())



        return response_202

    if response.status_code == 400:
        response_400 = ErrorBody.from_dict(response.json())



        return response_400

    if response.status_code == 401:
        response_401 = ErrorBody.from_dict(response.json())



        return response_401

    if response.status_code == 403:
        response_403 = ErrorBody.from_dict(response.json())



        return response_403

    if response.status_code == 404:
        response_404 = ErrorBody.from_dict(response.json())



        return response_404

    if response.status_code == 409:
        response_409 = ErrorBody.from_dict(response.json())



        return response_409

    if response.status_code == 413:
        response_413 = ErrorBody.from_dict(response.json())



        return response_413

    if response.status_code == 422:
        response_422 = ErrorBody.from_dict(response.json())



        return response_422

    if response.status_code == 429:
        response_429 = ErrorBody.from_dict(response.json())



        return response_429

    if response.status_code == 503:
        response_503 = ErrorBody.from_dict(response.json())



        return response_503

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[ErrorBody | Projection | Refreshing]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    id: int,
    *,
    client: AuthenticatedClient,
    body: None | RefreshRequest | Unset = UNSET,
    wait: int | Unset = UNSET,

) -> Response[ErrorBody | Projection | Refreshing]:
    """ Project a user's balance now (scope `jobs:write`): queues `cashflow.project`, and with
    `?wait=` answers with the projection once it is stored.

    Args:
        id (int):
        wait (int | Unset):
        body (None | RefreshRequest | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorBody | Projection | Refreshing]
     """


    kwargs = _get_kwargs(
        id=id,
body=body,
wait=wait,

    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)

def sync(
    id: int,
    *,
    client: AuthenticatedClient,
    body: None | RefreshRequest | Unset = UNSET,
    wait: int | Unset = UNSET,

) -> ErrorBody | Projection | Refreshing | None:
    """ Project a user's balance now (scope `jobs:write`): queues `cashflow.project`, and with
    `?wait=` answers with the projection once it is stored.

    Args:
        id (int):
        wait (int | Unset):
        body (None | RefreshRequest | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorBody | Projection | Refreshing
     """


    return sync_detailed(
        id=id,
client=client,
body=body,
wait=wait,

    ).parsed

async def asyncio_detailed(
    id: int,
    *,
    client: AuthenticatedClient,
    body: None | RefreshRequest | Unset = UNSET,
    wait: int | Unset = UNSET,

) -> Response[ErrorBody | Projection | Refreshing]:
    """ Project a user's balance now (scope `jobs:write`): queues `cashflow.project`, and with
    `?wait=` answers with the projection once it is stored.

    Args:
        id (int):
        wait (int | Unset):
        body (None | RefreshRequest | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorBody | Projection | Refreshing]
     """


    kwargs = _get_kwargs(
        id=id,
body=body,
wait=wait,

    )

    response = await client.get_async_httpx_client().request(
        **kwargs
    )

    return _build_response(client=client, response=response)

async def asyncio(
    id: int,
    *,
    client: AuthenticatedClient,
    body: None | RefreshRequest | Unset = UNSET,
    wait: int | Unset = UNSET,

) -> ErrorBody | Projection | Refreshing | None:
    """ Project a user's balance now (scope `jobs:write`): queues `cashflow.project`, and with
    `?wait=` answers with the projection once it is stored.

    Args:
        id (int):
        wait (int | Unset):
        body (None | RefreshRequest | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorBody | Projection | Refreshing
     """


    return (await asyncio_detailed(
        id=id,
client=client,
body=body,
wait=wait,

    )).parsed
