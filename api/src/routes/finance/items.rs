//! One route set for each kind of finance item (accounts, recurring items, one-off
//! transactions): list, create, read, replace, delete. The handlers are generic over
//! [`Item`]; `item_routes!` gives each kind its documented paths. Every write queues a
//! projection refresh.
use axum::{
    Json,
    body::Bytes,
    extract::{Path, State, rejection::BytesRejection},
    http::StatusCode,
};
use sqlx::PgPool;

use super::{
    model::{Account, Item, RecurringItem, Scheduled},
    queue_refresh,
};
use crate::{
    AppState,
    error::ApiError,
    openapi::Errors,
    routes::user::{FinanceRead, FinanceWrite, UserRoute},
};

/// A user's items of one kind, in their listing order.
pub(super) async fn all<T: Item>(db: &PgPool, user: i64) -> Result<Vec<T>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {} FROM {} WHERE user_id = $1 ORDER BY {}",
        T::COLUMNS,
        T::TABLE,
        T::ORDER
    ))
    .bind(user)
    .fetch_all(db)
    .await
}

fn item_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::invalid("item_id", "must be a positive integer id"))
}

async fn one<T: Item>(db: &PgPool, user: i64, id: i64) -> Result<T, ApiError> {
    sqlx::query_as(&format!(
        "SELECT {} FROM {} WHERE user_id = $1 AND id = $2",
        T::COLUMNS,
        T::TABLE
    ))
    .bind(user)
    .bind(id)
    .fetch_optional(db)
    .await?
    .ok_or(ApiError::NotFound(T::WHAT))
}

async fn list<T: Item>(state: AppState, user: i64) -> Result<Json<Vec<T>>, ApiError> {
    Ok(Json(all(&state.db, user).await?))
}

async fn create<T: Item>(
    state: AppState,
    route: UserRoute<FinanceWrite>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<T>), ApiError> {
    let mut item: T = super::super::body::json(body, false)?;
    if item.id().is_some() {
        return Err(ApiError::invalid("id", "is assigned by the server"));
    }
    item.check("")?;
    let mut tx = state.db.begin().await?;
    // The user's row lock makes the count and the insert one step against other creates.
    sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR UPDATE")
        .bind(route.user)
        .execute(&mut *tx)
        .await?;
    let count: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {} WHERE user_id = $1", T::TABLE))
        .bind(route.user)
        .fetch_one(&mut *tx)
        .await?;
    if count >= T::MAX as i64 {
        return Err(ApiError::Conflict(format!(
            "a user has at most {} {}s; delete one first",
            T::MAX,
            T::WHAT
        )));
    }
    let id = T::insert(&mut tx, route.user, std::slice::from_ref(&item)).await?;
    tx.commit().await?;
    item.set_id(id.first().copied());
    queue_refresh(&state, &route.caller, route.user).await?;
    Ok((StatusCode::CREATED, Json(item)))
}

async fn get<T: Item>(state: AppState, user: i64, raw: &str) -> Result<Json<T>, ApiError> {
    Ok(Json(one(&state.db, user, item_id(raw)?).await?))
}

async fn replace<T: Item>(
    state: AppState,
    route: UserRoute<FinanceWrite>,
    raw: &str,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<T>, ApiError> {
    let id = item_id(raw)?;
    let mut item: T = super::super::body::json(body, false)?;
    if item.id().is_some_and(|given| given != id) {
        return Err(ApiError::invalid("id", "differs from the id in the path"));
    }
    item.check("")?;
    item.set_id(Some(id));
    let mut tx = state.db.begin().await?;
    let gone = sqlx::query(&format!("DELETE FROM {} WHERE user_id = $1 AND id = $2", T::TABLE))
        .bind(route.user)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if gone == 0 {
        return Err(ApiError::NotFound(T::WHAT));
    }
    T::insert(&mut tx, route.user, std::slice::from_ref(&item)).await?;
    tx.commit().await?;
    queue_refresh(&state, &route.caller, route.user).await?;
    Ok(Json(item))
}

async fn delete<T: Item>(state: AppState, route: UserRoute<FinanceWrite>, raw: &str) -> Result<StatusCode, ApiError> {
    let id = item_id(raw)?;
    let gone = sqlx::query(&format!("DELETE FROM {} WHERE user_id = $1 AND id = $2", T::TABLE))
        .bind(route.user)
        .bind(id)
        .execute(&state.db)
        .await?
        .rows_affected();
    if gone == 0 {
        return Err(ApiError::NotFound(T::WHAT));
    }
    queue_refresh(&state, &route.caller, route.user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The five documented handlers of one item kind, in a module named after it.
macro_rules! item_routes {
    ($module:ident, $T:ty, $list:literal, $one:literal, $noun:literal) => {
        pub mod $module {
            use super::*;

            #[doc = concat!("The user's ", $noun, "s (scope `finance:read`).")]
            #[utoipa::path(
                                get, path = $list, tag = "finance",
                                params(("id" = i64, Path, minimum = 1, description = "The user id")),
                                responses((status = 200, description = "Listed", body = Vec<$T>), Errors),
                                security(("bearer" = ["finance:read"]))
                            )]
            pub async fn list(
                State(state): State<AppState>,
                UserRoute { user, .. }: UserRoute<FinanceRead>,
            ) -> Result<Json<Vec<$T>>, ApiError> {
                super::list(state, user).await
            }

            #[doc = concat!("Add a ", $noun, " (scope `finance:write`); queues a projection refresh.")]
            #[utoipa::path(
                                post, path = $list, tag = "finance",
                                params(("id" = i64, Path, minimum = 1, description = "The user id")),
                                request_body = $T,
                                responses((status = 201, description = "Created, with its id", body = $T), Errors),
                                security(("bearer" = ["finance:write"]))
                            )]
            pub async fn create(
                State(state): State<AppState>,
                route: UserRoute<FinanceWrite>,
                body: Result<Bytes, BytesRejection>,
            ) -> Result<(StatusCode, Json<$T>), ApiError> {
                super::create(state, route, body).await
            }

            #[doc = concat!("One ", $noun, " (scope `finance:read`).")]
            #[utoipa::path(
                                get, path = $one, tag = "finance",
                                params(("id" = i64, Path, minimum = 1, description = "The user id"),
                                       ("item_id" = i64, Path, minimum = 1, description = "The item id")),
                                responses((status = 200, description = "Found", body = $T), Errors),
                                security(("bearer" = ["finance:read"]))
                            )]
            pub async fn get(
                State(state): State<AppState>,
                UserRoute { user, .. }: UserRoute<FinanceRead>,
                Path((_, raw)): Path<(String, String)>,
            ) -> Result<Json<$T>, ApiError> {
                super::get(state, user, &raw).await
            }

            #[doc = concat!("Replace a ", $noun, " (scope `finance:write`); queues a projection refresh.")]
            #[utoipa::path(
                                put, path = $one, tag = "finance",
                                params(("id" = i64, Path, minimum = 1, description = "The user id"),
                                       ("item_id" = i64, Path, minimum = 1, description = "The item id")),
                                request_body = $T,
                                responses((status = 200, description = "Replaced", body = $T), Errors),
                                security(("bearer" = ["finance:write"]))
                            )]
            pub async fn replace(
                State(state): State<AppState>,
                route: UserRoute<FinanceWrite>,
                Path((_, raw)): Path<(String, String)>,
                body: Result<Bytes, BytesRejection>,
            ) -> Result<Json<$T>, ApiError> {
                super::replace(state, route, &raw, body).await
            }

            #[doc = concat!("Delete a ", $noun, " (scope `finance:write`); queues a projection refresh.")]
            #[utoipa::path(
                                delete, path = $one, tag = "finance",
                                params(("id" = i64, Path, minimum = 1, description = "The user id"),
                                       ("item_id" = i64, Path, minimum = 1, description = "The item id")),
                                responses((status = 204, description = "Deleted"), Errors),
                                security(("bearer" = ["finance:write"]))
                            )]
            pub async fn delete(
                State(state): State<AppState>,
                route: UserRoute<FinanceWrite>,
                Path((_, raw)): Path<(String, String)>,
            ) -> Result<StatusCode, ApiError> {
                super::delete::<$T>(state, route, &raw).await
            }
        }
    };
}

item_routes!(
    accounts,
    Account,
    "/v1/users/{id}/accounts",
    "/v1/users/{id}/accounts/{item_id}",
    "account"
);
item_routes!(
    recurring,
    RecurringItem,
    "/v1/users/{id}/recurring",
    "/v1/users/{id}/recurring/{item_id}",
    "recurring item"
);
item_routes!(
    scheduled,
    Scheduled,
    "/v1/users/{id}/scheduled",
    "/v1/users/{id}/scheduled/{item_id}",
    "one-off transaction"
);
