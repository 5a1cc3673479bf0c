//! The opening every `/v1/users/{id}/…` route shares, as one extractor: the route's scope, the
//! user id from the path, the token's confinement, and that the user exists, in that order.
use std::marker::PhantomData;

use axum::{
    extract::{FromRequestParts, Path},
    http::request::Parts,
};
use nightshift_common::auth::Scope;

use crate::{AppState, auth::Caller, error::ApiError};

/// The scope a user route needs, as a type, so the extractor can check it.
pub trait RouteScope {
    const SCOPE: Scope;
}

macro_rules! scopes {
    ($($name:ident),*) => {$(
        pub struct $name;
        impl RouteScope for $name {
            const SCOPE: Scope = Scope::$name;
        }
    )*};
}
scopes!(
    JobsRead,
    JobsWrite,
    RemindersRead,
    RemindersWrite,
    FinanceRead,
    FinanceWrite
);

/// The caller and the user of a `/v1/users/{id}/…` route, once the caller may use the route
/// (`S`) and act on that user, and the user exists. A user-confined token naming another user
/// gets the same 404 as a user that does not exist: it learns nothing about who does.
pub struct UserRoute<S> {
    pub caller: Caller,
    pub user: i64,
    scope: PhantomData<S>,
}

/// The caller and the user of a route that may create the user (`PUT …/finance`): as
/// [`UserRoute`], but the user need not exist yet.
pub struct UserTarget<S> {
    pub caller: Caller,
    pub user: i64,
    scope: PhantomData<S>,
}

impl<S: RouteScope + Send> FromRequestParts<AppState> for UserTarget<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require(S::SCOPE)?;
        let Path(params) = Path::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::invalid("id", "must be a positive integer user id"))?;
        let raw = params.iter().find(|(k, _)| k == "id").map_or("", |(_, v)| v.as_str());
        let user = raw
            .parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .ok_or_else(|| ApiError::invalid("id", "must be a positive integer user id"))?;
        if !caller.may_act_on(user) {
            return Err(ApiError::NotFound("user"));
        }
        // A confined token outlives its user's deletion: the user it was made for is gone, and
        // a user made again under the id is another one.
        if caller.user().is_some() {
            let gone: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM deleted_users WHERE id = $1 AND deleted_at >= to_timestamp($2))",
            )
            .bind(user)
            .bind(caller.0.iat as f64)
            .fetch_one(&state.db)
            .await?;
            if gone {
                return Err(ApiError::NotFound("user"));
            }
        }
        Ok(UserTarget {
            caller,
            user,
            scope: PhantomData,
        })
    }
}

impl<S: RouteScope + Send> FromRequestParts<AppState> for UserRoute<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let UserTarget { caller, user, .. } = UserTarget::<S>::from_request_parts(parts, state).await?;
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)")
            .bind(user)
            .fetch_one(&state.db)
            .await?;
        if !exists {
            return Err(ApiError::NotFound("user"));
        }
        Ok(UserRoute {
            caller,
            user,
            scope: PhantomData,
        })
    }
}
