//! First start: the default space and its defaults, the admin user and the first API key.
//!
//! Each step checks for what it would create, so a start that died half-way is completed by
//! the next one, and two nodes starting at once on one PostgreSQL database create one of each.

use cuttle_domain::{Lifecycle, MachinePolicy, ProjectGroup, Resource, Space, User, WorkerPool};
use cuttle_pki::Identity;
use cuttle_secrets::MasterKey;
use cuttle_store::{ApiKeyRecord, Change, Store, StoreError, document_from_resource};
use rand::Rng;

use crate::auth::{generate_api_key, hash_api_key, hash_password};

pub const DEFAULT_SPACE_NAME: &str = "Default";
pub const DEFAULT_LIFECYCLE_NAME: &str = "Default Lifecycle";
pub const DEFAULT_PROJECT_GROUP_NAME: &str = "Default Project Group";
pub const DEFAULT_WORKER_POOL_NAME: &str = "Default Worker Pool";
pub const DEFAULT_MACHINE_POLICY_NAME: &str = "Default Machine Policy";
pub const ADMIN_USERNAME: &str = "admin";

/// The smallest number of characters after `API-` in `CUTTLE_BOOTSTRAP_API_KEY`.
pub const MIN_BOOTSTRAP_API_KEY_BODY_CHARS: usize = 30;

const INSTALLATION_ID_SETTING: &str = "installation-id";
const BOOTSTRAPPED_SETTING: &str = "bootstrapped";

/// Credentials chosen by the operator instead of random ones.
#[derive(Debug, Clone, Default)]
pub struct BootstrapOptions {
    pub api_key: Option<String>,
    pub admin_password: Option<String>,
}

/// What the first start made; shown to the operator once.
#[derive(Debug, Clone)]
pub struct FirstStartCredentials {
    pub username: String,
    /// The generated password; `None` when the operator chose it.
    pub generated_password: Option<String>,
    /// The generated API key; `None` when the operator chose it.
    pub generated_api_key: Option<String>,
}

#[derive(Debug, Clone)]
pub struct BootstrapOutcome {
    pub installation_id: String,
    /// `Some` only on the start that created the admin's credentials.
    pub first_start: Option<FirstStartCredentials>,
}

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error(
        "CUTTLE_BOOTSTRAP_API_KEY must be API- followed by at least {MIN_BOOTSTRAP_API_KEY_BODY_CHARS} upper-case letters and digits"
    )]
    InvalidApiKey,
    #[error("CUTTLE_BOOTSTRAP_ADMIN_PASSWORD must not be empty")]
    EmptyPassword,
    #[error("could not hash the admin password: {0}")]
    PasswordHash(String),
    #[error(
        "this server's master key is not the one the database's secrets were sealed with; every node must use the same key (set CUTTLE_MASTER_KEY, or copy master.key from the first node's data directory)"
    )]
    MasterKeyMismatch,
    #[error("could not prepare the server's certificate: {0}")]
    ServerIdentity(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

const SERVER_IDENTITY_SETTING: &str = "server-identity";

/// The server's certificate and key, shared by every node: kept in the database with the key
/// sealed under the master key, so agents pin one thumbprint whichever node they reach.
pub async fn load_or_create_server_identity(
    store: &dyn Store,
    key: &MasterKey,
) -> Result<Identity, BootstrapError> {
    #[derive(serde::Serialize, serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct StoredIdentity {
        certificate_pem: String,
        sealed_private_key_pem: String,
    }
    let (generated, private_key_pem) = Identity::generate_with_private_key_pem("cuttle-server")
        .map_err(|error| BootstrapError::ServerIdentity(error.to_string()))?;
    let candidate = serde_json::to_string(&StoredIdentity {
        certificate_pem: generated.certificate_pem().to_owned(),
        sealed_private_key_pem: key.seal(&private_key_pem),
    })
    .map_err(|error| BootstrapError::ServerIdentity(error.to_string()))?;
    // The first node to get here stores its identity; every node then uses the stored one.
    let stored = store
        .put_setting_if_absent(SERVER_IDENTITY_SETTING, &candidate)
        .await?;
    let stored: StoredIdentity = serde_json::from_str(&stored).map_err(|error| {
        BootstrapError::ServerIdentity(format!("the stored identity is unreadable: {error}"))
    })?;
    let private_key_pem = key
        .open(&stored.sealed_private_key_pem)
        .map_err(|_| BootstrapError::MasterKeyMismatch)?;
    Identity::from_pem(&stored.certificate_pem, &private_key_pem)
        .map_err(|error| BootstrapError::ServerIdentity(error.to_string()))
}

const MASTER_KEY_CHECK_SETTING: &str = "master-key-check";
const MASTER_KEY_CHECK_TEXT: &str = "cuttle master key check";

/// Refuses to start with a master key other than the one the database was set up with, which
/// would leave every stored secret unreadable. The first start records a sealed check value.
pub async fn check_master_key(store: &dyn Store, key: &MasterKey) -> Result<(), BootstrapError> {
    let stored = store
        .put_setting_if_absent(MASTER_KEY_CHECK_SETTING, &key.seal(MASTER_KEY_CHECK_TEXT))
        .await?;
    match key.open(&stored) {
        Ok(text) if text.as_str() == MASTER_KEY_CHECK_TEXT => Ok(()),
        _ => Err(BootstrapError::MasterKeyMismatch),
    }
}

/// Makes sure the installation has its id, default space and admin; idempotent.
pub async fn bootstrap(
    store: &dyn Store,
    options: &BootstrapOptions,
) -> Result<BootstrapOutcome, BootstrapError> {
    if let Some(api_key) = &options.api_key {
        let body_long_enough = api_key
            .strip_prefix("API-")
            .is_some_and(|body| body.len() >= MIN_BOOTSTRAP_API_KEY_BODY_CHARS);
        if !body_long_enough || !crate::auth::is_well_formed_api_key(api_key) {
            return Err(BootstrapError::InvalidApiKey);
        }
    }
    if options.admin_password.as_deref().is_some_and(str::is_empty) {
        return Err(BootstrapError::EmptyPassword);
    }

    let installation_id = store
        .put_setting_if_absent(INSTALLATION_ID_SETTING, &uuid::Uuid::new_v4().to_string())
        .await?;
    if store.get_setting(BOOTSTRAPPED_SETTING).await?.is_some() {
        return Ok(BootstrapOutcome {
            installation_id,
            first_start: None,
        });
    }

    ensure_default_space(store).await?;
    let (admin, generated_password) = ensure_admin(store, options).await?;
    let generated_api_key = ensure_first_api_key(store, &admin, options).await?;
    store
        .put_setting_if_absent(BOOTSTRAPPED_SETTING, "true")
        .await?;

    let first_start = (generated_password.is_some()
        || generated_api_key.is_some()
        || options.api_key.is_some()
        || options.admin_password.is_some())
    .then(|| FirstStartCredentials {
        username: admin.username.clone(),
        generated_password,
        generated_api_key,
    });
    Ok(BootstrapOutcome {
        installation_id,
        first_start,
    })
}

async fn ensure_default_space(store: &dyn Store) -> Result<(), StoreError> {
    if store
        .find_resource_by_name::<Space>(None, DEFAULT_SPACE_NAME)
        .await?
        .is_some()
    {
        return Ok(());
    }
    let mut space = Space {
        name: DEFAULT_SPACE_NAME.to_owned(),
        is_default: true,
        ..Space::default()
    };
    let _ = space.normalize_and_validate();
    space.id = store.allocate_id(Space::KIND).await?;
    let mut changes = vec![Change::Insert(document_from_resource(&space)?)];
    changes.extend(default_space_contents(store, &space.id).await?);
    ignore_name_taken(store.write(&changes).await)
}

/// A node that lost a first-start race finds the winner's documents: that is success.
fn ignore_name_taken(result: Result<(), StoreError>) -> Result<(), StoreError> {
    match result {
        Err(StoreError::NameTaken { .. }) => Ok(()),
        other => other,
    }
}

/// The documents every new space starts with: a lifecycle, a project group, a worker pool.
pub(crate) async fn default_space_contents(
    store: &dyn Store,
    space_id: &str,
) -> Result<Vec<Change>, StoreError> {
    let lifecycle = Lifecycle {
        id: store.allocate_id(Lifecycle::KIND).await?,
        space_id: space_id.to_owned(),
        name: DEFAULT_LIFECYCLE_NAME.to_owned(),
        slug: "default-lifecycle".to_owned(),
        description: Some(
            "The lifecycle used when no other is chosen: with no phases, every environment is a phase of its own, in environment order.".to_owned(),
        ),
        ..Lifecycle::default()
    };
    let project_group = ProjectGroup {
        id: store.allocate_id(ProjectGroup::KIND).await?,
        space_id: space_id.to_owned(),
        name: DEFAULT_PROJECT_GROUP_NAME.to_owned(),
        slug: "default-project-group".to_owned(),
        ..ProjectGroup::default()
    };
    let worker_pool = WorkerPool {
        id: store.allocate_id(WorkerPool::KIND).await?,
        space_id: space_id.to_owned(),
        name: DEFAULT_WORKER_POOL_NAME.to_owned(),
        slug: "default-worker-pool".to_owned(),
        is_default: true,
        sort_order: 1,
        ..WorkerPool::default()
    };
    let machine_policy = MachinePolicy {
        id: store.allocate_id(MachinePolicy::KIND).await?,
        space_id: space_id.to_owned(),
        name: DEFAULT_MACHINE_POLICY_NAME.to_owned(),
        description: Some("Checks every target's connection every hour.".to_owned()),
        is_default: true,
        ..MachinePolicy::default()
    };
    Ok(vec![
        Change::Insert(document_from_resource(&lifecycle)?),
        Change::Insert(document_from_resource(&project_group)?),
        Change::Insert(document_from_resource(&worker_pool)?),
        Change::Insert(document_from_resource(&machine_policy)?),
    ])
}

async fn ensure_admin(
    store: &dyn Store,
    options: &BootstrapOptions,
) -> Result<(User, Option<String>), BootstrapError> {
    if let Some(admin) = store
        .find_resource_by_name::<User>(None, ADMIN_USERNAME)
        .await?
    {
        return Ok((admin, None));
    }
    let (password, generated_password) = match &options.admin_password {
        Some(password) => (password.clone(), None),
        None => {
            let password = generate_password();
            (password.clone(), Some(password))
        }
    };
    let password_hash = hash_password(&password)
        .map_err(|error| BootstrapError::PasswordHash(error.to_string()))?;
    let admin = User {
        id: store.allocate_id(User::KIND).await?,
        username: ADMIN_USERNAME.to_owned(),
        display_name: "Administrator".to_owned(),
        email_address: None,
        is_active: true,
        is_service: false,
        is_administrator: true,
        password_hash: Some(password_hash),
    };
    match store.insert_resource(&admin).await {
        Ok(()) => Ok((admin, generated_password)),
        Err(StoreError::NameTaken { .. }) => {
            let winner = store
                .find_resource_by_name::<User>(None, ADMIN_USERNAME)
                .await?
                .ok_or(StoreError::NotFound {
                    kind: User::KIND,
                    id: ADMIN_USERNAME.to_owned(),
                })?;
            Ok((winner, None))
        }
        Err(error) => Err(error.into()),
    }
}

async fn ensure_first_api_key(
    store: &dyn Store,
    admin: &User,
    options: &BootstrapOptions,
) -> Result<Option<String>, BootstrapError> {
    if !store.list_api_keys(&admin.id).await?.is_empty() {
        return Ok(None);
    }
    let (api_key, generated) = match &options.api_key {
        Some(api_key) => (api_key.clone(), None),
        None => {
            let api_key = generate_api_key();
            (api_key.clone(), Some(api_key))
        }
    };
    store
        .insert_api_key(&ApiKeyRecord {
            id: store
                .allocate_id(cuttle_domain::ResourceKind::ApiKey)
                .await?,
            user_id: admin.id.clone(),
            purpose: "Created on first start".to_owned(),
            key_hash: hash_api_key(&api_key),
            created: chrono::Utc::now(),
            expires: None,
        })
        .await?;
    Ok(generated)
}

/// A random 20-character password of letters and digits (about 119 bits).
fn generate_password() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rngs::OsRng;
    (0..20)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}
