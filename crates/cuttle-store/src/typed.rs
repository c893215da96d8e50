//! Typed access over the document store: resources in, resources out.

use cuttle_domain::Resource;

use crate::{Change, Document, DocumentPage, DocumentQuery, Store, StoreError};

/// Turns a resource into the document that stores it.
pub fn document_from_resource<T: Resource>(resource: &T) -> Result<Document, StoreError> {
    let body = serde_json::to_value(resource).map_err(|error| StoreError::Corrupt {
        kind: T::KIND,
        id: resource.id().to_owned(),
        message: error.to_string(),
    })?;
    let mut references: Vec<String> = resource
        .references()
        .into_iter()
        .map(|reference| reference.id)
        .collect();
    references.sort();
    references.dedup();
    Ok(Document {
        id: resource.id().to_owned(),
        kind: T::KIND,
        space_id: resource.space_id().map(str::to_owned),
        owner_id: resource.owner_id().map(str::to_owned),
        name: resource.name().to_owned(),
        sort_order: resource.sort_order(),
        references,
        body,
        version: 1,
    })
}

/// Reads a resource back from its document.
pub fn resource_from_document<T: Resource>(document: &Document) -> Result<T, StoreError> {
    serde_json::from_value(document.body.clone()).map_err(|error| StoreError::Corrupt {
        kind: T::KIND,
        id: document.id.clone(),
        message: error.to_string(),
    })
}

/// A page of typed resources.
#[derive(Debug, Clone)]
pub struct ResourcePage<T> {
    pub total: i64,
    pub items: Vec<T>,
}

impl dyn Store {
    /// Reads one resource by id; `None` when absent.
    pub async fn get_resource<T: Resource>(&self, id: &str) -> Result<Option<T>, StoreError> {
        match self.get_document(T::KIND, id).await? {
            Some(document) => Ok(Some(resource_from_document(&document)?)),
            None => Ok(None),
        }
    }

    /// Lists resources of one kind.
    pub async fn list_resources<T: Resource>(
        &self,
        query: &DocumentQuery,
    ) -> Result<ResourcePage<T>, StoreError> {
        let DocumentPage { total, documents } = self.list_documents(T::KIND, query).await?;
        let items = documents
            .iter()
            .map(resource_from_document)
            .collect::<Result<Vec<T>, StoreError>>()?;
        Ok(ResourcePage { total, items })
    }

    /// Finds a resource by exact name (ignoring case) within a space.
    pub async fn find_resource_by_name<T: Resource>(
        &self,
        space_id: Option<&str>,
        name: &str,
    ) -> Result<Option<T>, StoreError> {
        let query = DocumentQuery {
            space_id: space_id.map(str::to_owned),
            name: Some(name.to_owned()),
            take: 1,
            ..DocumentQuery::default()
        };
        Ok(self
            .list_resources::<T>(&query)
            .await?
            .items
            .into_iter()
            .next())
    }

    /// Inserts one resource.
    pub async fn insert_resource<T: Resource>(&self, resource: &T) -> Result<(), StoreError> {
        self.write(&[Change::Insert(document_from_resource(resource)?)])
            .await
    }

    /// Replaces one resource.
    pub async fn update_resource<T: Resource>(&self, resource: &T) -> Result<(), StoreError> {
        self.write(&[Change::Update(document_from_resource(resource)?)])
            .await
    }
}
