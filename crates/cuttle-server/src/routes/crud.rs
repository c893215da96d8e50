//! The generic create/read/update/delete flow every configuration resource follows.
//!
//! A resource type plugs in through [`ManagedResource`]: its collection name, its permissions,
//! and hooks for what is special about it (defaults, derived ids, companion documents, delete
//! rules). Everything else is shared: space checks, validation, reference checks (the target
//! must exist, be of the right kind, and live in the same space), paging, links and errors.

use async_trait::async_trait;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cuttle_api::{ApiResource, Collection, Links, Resource as WireResource};
use cuttle_domain::{FieldError, ResourceKind, Space, parse_resource_id};
use cuttle_store::{Change, DocumentQuery, document_from_resource};

use crate::auth::{Caller, Permission};
use crate::error::ApiError;
use crate::extract::{ApiJson, ListParameters};
use crate::state::AppState;

/// A configuration resource served by the generic routes.
#[async_trait]
pub(crate) trait ManagedResource: ApiResource {
    /// Fills defaults that depend on stored data, before validation.
    async fn prepare_new(&mut self, _state: &AppState) -> Result<(), ApiError> {
        Ok(())
    }

    /// Keeps fields only the server may set from the stored version, on update.
    fn keep_server_fields(&mut self, _stored: &Self) {}

    /// Runs after the id is assigned: derives ids, and returns changes to other documents
    /// that must be written in the same transaction (after this one's own change).
    async fn complete_write(
        &mut self,
        _state: &AppState,
        _stored: Option<&Self>,
    ) -> Result<Vec<Change>, ApiError> {
        Ok(Vec::new())
    }

    /// Refuses deletes that the store alone cannot judge.
    fn check_delete(&self) -> Result<(), ApiError> {
        Ok(())
    }

    /// Removes what answers must never carry (sealed secrets).
    fn redact(&mut self) {}

    /// The change that deletes this resource.
    fn delete_change(&self) -> Change {
        Change::Delete {
            kind: Self::KIND,
            id: self.id().to_owned(),
        }
    }

    /// The URL of a resource of this kind.
    fn self_link(space_id: Option<&str>, id: &str) -> String {
        match space_id {
            Some(space_id) => format!("/api/{space_id}/{}/{id}", Self::COLLECTION),
            None => format!("/api/{}/{id}", Self::COLLECTION),
        }
    }
}

/// The routes of a space-scoped resource: `/api/{space}/{collection}[/{id}]`.
pub(crate) fn space_scoped_routes<T: ManagedResource>() -> axum::Router<AppState> {
    axum::Router::new()
        .route(
            &format!("/api/{{space_id}}/{}", T::COLLECTION),
            get(list_in_space::<T>).post(create_in_space::<T>),
        )
        .route(
            &format!("/api/{{space_id}}/{}/{{id}}", T::COLLECTION),
            get(get_in_space::<T>)
                .put(modify_in_space::<T>)
                .delete(delete_in_space::<T>),
        )
}

async fn list_in_space<T: ManagedResource>(
    State(state): State<AppState>,
    caller: Caller,
    Path(space_id): Path<String>,
    parameters: ListParameters,
) -> Result<Response, ApiError> {
    caller.require(Permission::ViewConfiguration)?;
    require_space(&state, &space_id).await?;
    let query = DocumentQuery {
        space_id: Some(space_id.clone()),
        ..document_query(&parameters)
    };
    let base_path = format!("/api/{space_id}/{}", T::COLLECTION);
    list_page::<T>(&state, &query, &parameters, &base_path).await
}

async fn get_in_space<T: ManagedResource>(
    State(state): State<AppState>,
    caller: Caller,
    Path((space_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    caller.require(Permission::ViewConfiguration)?;
    require_space(&state, &space_id).await?;
    let resource = load::<T>(&state, Some(&space_id), &id).await?;
    Ok(Json(with_links(resource)).into_response())
}

async fn create_in_space<T: ManagedResource>(
    State(state): State<AppState>,
    caller: Caller,
    Path(space_id): Path<String>,
    ApiJson(resource): ApiJson<T>,
) -> Result<Response, ApiError> {
    caller.require(Permission::EditConfiguration)?;
    require_space(&state, &space_id).await?;
    let created = create(&state, Some(&space_id), resource).await?;
    Ok((StatusCode::CREATED, Json(with_links(created))).into_response())
}

async fn modify_in_space<T: ManagedResource>(
    State(state): State<AppState>,
    caller: Caller,
    Path((space_id, id)): Path<(String, String)>,
    ApiJson(resource): ApiJson<T>,
) -> Result<Response, ApiError> {
    caller.require(Permission::EditConfiguration)?;
    require_space(&state, &space_id).await?;
    let modified = modify(&state, Some(&space_id), &id, resource).await?;
    Ok(Json(with_links(modified)).into_response())
}

async fn delete_in_space<T: ManagedResource>(
    State(state): State<AppState>,
    caller: Caller,
    Path((space_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    caller.require(Permission::EditConfiguration)?;
    require_space(&state, &space_id).await?;
    delete::<T>(&state, Some(&space_id), &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The store query for a list route's filters and paging.
pub(crate) fn document_query(parameters: &ListParameters) -> DocumentQuery {
    DocumentQuery {
        ids: parameters.ids.clone(),
        partial_name: parameters.partial_name.clone(),
        name: parameters.name.clone(),
        skip: parameters.skip,
        take: parameters.take,
        ..DocumentQuery::default()
    }
}

/// Answers a list route: the page of resources in Octopus's collection envelope.
pub(crate) async fn list_page<T: ManagedResource>(
    state: &AppState,
    query: &DocumentQuery,
    parameters: &ListParameters,
    base_path: &str,
) -> Result<Response, ApiError> {
    let page = state.store().list_resources::<T>(query).await?;
    let items: Vec<WireResource<T>> = page.items.into_iter().map(with_links).collect();
    Ok(Json(collection(
        T::KIND.type_name(),
        page.total,
        items,
        parameters,
        base_path,
    ))
    .into_response())
}

/// Wraps items in the paged envelope with Octopus's links.
pub(crate) fn collection<T>(
    item_type: &str,
    total: i64,
    items: Vec<T>,
    parameters: &ListParameters,
    base_path: &str,
) -> Collection<T> {
    let take = parameters.take;
    let skip = parameters.skip;
    let number_of_pages = if take == 0 {
        0
    } else {
        // Integer ceiling in i64: no overflow for any 32-bit take.
        (total + take - 1) / take
    };
    let last_page_number = (number_of_pages - 1).max(0);
    let mut links = Links::new();
    links.insert(
        "Self".to_owned(),
        format!("{base_path}?skip={skip}&take={take}"),
    );
    links.insert(
        "Template".to_owned(),
        format!("{base_path}{{?skip,take,ids,partialName}}"),
    );
    links.insert(
        "Page.All".to_owned(),
        format!("{base_path}?skip=0&take={}", i32::MAX),
    );
    links.insert(
        "Page.Current".to_owned(),
        format!("{base_path}?skip={skip}&take={take}"),
    );
    links.insert(
        "Page.Last".to_owned(),
        format!("{base_path}?skip={}&take={take}", last_page_number * take),
    );
    if take > 0 && skip + take < total {
        links.insert(
            "Page.Next".to_owned(),
            format!("{base_path}?skip={}&take={take}", skip + take),
        );
    }
    Collection {
        item_type: item_type.to_owned(),
        total_results: total,
        items_per_page: take,
        number_of_pages,
        last_page_number,
        items,
        links,
    }
}

/// The resource with its `Self` link.
pub(crate) fn with_links<T: ManagedResource>(mut resource: T) -> WireResource<T> {
    resource.redact();
    let links = Links::from([(
        "Self".to_owned(),
        T::self_link(resource.space_id(), resource.id()),
    )]);
    WireResource { resource, links }
}

/// 404 unless `space_id` names an existing space.
pub(crate) async fn require_space(state: &AppState, space_id: &str) -> Result<Space, ApiError> {
    let not_found = || ApiError::NotFound(format!("space {space_id} was not found"));
    match parse_resource_id(space_id) {
        Some((ResourceKind::Space, _)) => {}
        _ => return Err(not_found()),
    }
    let generation = state.store().change_generation();
    if let Some(space) = state.space_cache.get(space_id, generation) {
        return Ok(space);
    }
    let space = state
        .store()
        .get_resource::<Space>(space_id)
        .await?
        .ok_or_else(not_found)?;
    state
        .space_cache
        .put(space_id.to_owned(), generation, space.clone());
    Ok(space)
}

/// Loads a resource of `T` in the space, or 404.
pub(crate) async fn load<T: ManagedResource>(
    state: &AppState,
    space_id: Option<&str>,
    id: &str,
) -> Result<T, ApiError> {
    let not_found = || ApiError::NotFound(format!("{} {id} was not found", T::KIND));
    let resource = state
        .store()
        .get_resource::<T>(id)
        .await?
        .ok_or_else(not_found)?;
    if resource.space_id() != space_id {
        return Err(not_found());
    }
    Ok(resource)
}

/// Validates `resource` and checks that every reference exists in the same space.
async fn validate<T: ManagedResource>(state: &AppState, resource: &mut T) -> Result<(), ApiError> {
    let mut errors = resource.normalize_and_validate();
    for reference in resource.references() {
        let field = reference.field.clone();
        let problem = match state
            .store()
            .get_document(reference.kind, &reference.id)
            .await?
        {
            Some(document) if document.space_id.as_deref() == resource.space_id() => None,
            Some(_) => Some(format!(
                "{} {} belongs to another space",
                reference.kind, reference.id
            )),
            None => Some(format!(
                "{} '{}' was not found",
                reference.kind, reference.id
            )),
        };
        if let Some(message) = problem {
            errors.push(FieldError::new(field, message));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(errors))
    }
}

/// Creates a resource: defaults, validation, a fresh id, then one atomic write.
pub(crate) async fn create<T: ManagedResource>(
    state: &AppState,
    space_id: Option<&str>,
    mut resource: T,
) -> Result<T, ApiError> {
    if let Some(space_id) = space_id {
        resource.set_space_id(space_id);
    }
    resource.set_id(String::new());
    resource.prepare_new(state).await?;
    validate(state, &mut resource).await?;
    resource.set_id(state.store().allocate_id(T::KIND).await?);
    let companions = resource.complete_write(state, None).await?;
    let mut changes = vec![Change::Insert(document_from_resource(&resource)?)];
    changes.extend(companions);
    state.store().write(&changes).await?;
    Ok(resource)
}

/// Replaces a resource: the path's id and space win over the body's.
pub(crate) async fn modify<T: ManagedResource>(
    state: &AppState,
    space_id: Option<&str>,
    id: &str,
    mut resource: T,
) -> Result<T, ApiError> {
    let stored = load::<T>(state, space_id, id).await?;
    resource.set_id(stored.id().to_owned());
    if let Some(space_id) = space_id {
        resource.set_space_id(space_id);
    }
    resource.keep_server_fields(&stored);
    validate(state, &mut resource).await?;
    let companions = resource.complete_write(state, Some(&stored)).await?;
    let mut changes = vec![Change::Update(document_from_resource(&resource)?)];
    changes.extend(companions);
    state.store().write(&changes).await?;
    Ok(resource)
}

/// Deletes a resource, refusing while others still use it.
pub(crate) async fn delete<T: ManagedResource>(
    state: &AppState,
    space_id: Option<&str>,
    id: &str,
) -> Result<(), ApiError> {
    let stored = load::<T>(state, space_id, id).await?;
    stored.check_delete()?;
    state.store().write(&[stored.delete_change()]).await?;
    Ok(())
}

/// A fresh GUID for ids inside documents (phases, channel rules).
pub(crate) fn new_guid() -> String {
    uuid::Uuid::new_v4().to_string()
}
