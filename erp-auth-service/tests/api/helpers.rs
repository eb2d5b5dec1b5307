use std::{net::SocketAddr, sync::Arc};

use erp_auth_service::{Application, app::Auth, config::Config};
use erp_kit::ShutdownHandle;
use erp_proto::erp::{
    auth::v1::{
        CreateTenantRequest, CreateUserRequest, IssueOperatorTokenRequest, LoginRequest,
        LoginResponse, Plan, auth_service_client::AuthServiceClient,
    },
    common::v1::Module,
};
use erp_testkit::TestDatabase;
use tonic::{Request, metadata::MetadataValue, transport::Channel};

pub const BOOTSTRAP_SECRET: &str = "test-bootstrap-secret";
pub const ADMIN_PASSWORD: &str = "Admin-password-2026";
pub const USER_PASSWORD: &str = "User-password-2026";

/// The service running for one test.
pub struct TestApp {
    pub addr: SocketAddr,
    pub auth: Arc<Auth>,
    /// The database, dropped with the first app on it (replicas share it).
    _database: Option<TestDatabase>,
    database_config: erp_db::DatabaseConfig,
    shutdown: ShutdownHandle,
    _task: tokio::task::JoinHandle<()>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.shutdown();
    }
}

/// The config tests start from: port 0, the database, events off, a known secret.
pub fn test_config(database: &TestDatabase) -> Config {
    config_on(database.config())
}

fn config_on(database: erp_db::DatabaseConfig) -> Config {
    let mut config = Config::default();
    config.server.grpc_port = 0;
    config.server.admin_port = 0;
    config.database = database;
    config.events.enabled = false;
    config.auth.bootstrap_secret = BOOTSTRAP_SECRET.to_owned().into();
    config
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    let database = TestDatabase::postgres().await;
    spawn_on(database, configure).await
}

pub async fn spawn_on(database: TestDatabase, configure: impl FnOnce(&mut Config)) -> TestApp {
    let mut config = test_config(&database);
    configure(&mut config);
    let mut app = start(config).await;
    app._database = Some(database);
    app
}

async fn start(config: Config) -> TestApp {
    let database_config = config.database.clone();
    let application = Application::build(config)
        .await
        .expect("the service starts");
    let addr = application.local_addr();
    let auth = application.auth();
    let shutdown = application.shutdown_handle();
    let task = tokio::spawn(async move {
        application
            .run_until_stopped()
            .await
            .expect("the service ran cleanly");
    });
    TestApp {
        addr,
        auth,
        _database: None,
        database_config,
        shutdown,
        _task: task,
    }
}

pub fn bearer<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    let value: MetadataValue<_> = format!("Bearer {token}").parse().expect("header");
    request.metadata_mut().insert("authorization", value);
    request
}

/// A tenant with its admin logged in.
pub struct Tenant {
    pub id: String,
    pub admin_email: String,
    pub admin_token: String,
}

impl TestApp {
    /// Another replica on this app's database, configured by `configure`.
    pub async fn replica(&self, configure: impl FnOnce(&mut Config)) -> TestApp {
        let mut config = config_on(self.database_config.clone());
        configure(&mut config);
        start(config).await
    }

    pub async fn client(&self) -> AuthServiceClient<Channel> {
        let channel = Channel::from_shared(format!("http://{}", self.addr))
            .expect("url")
            .connect()
            .await
            .expect("connects");
        AuthServiceClient::new(channel)
    }

    pub async fn operator_token(&self) -> String {
        self.client()
            .await
            .issue_operator_token(IssueOperatorTokenRequest {
                bootstrap_secret: BOOTSTRAP_SECRET.to_owned(),
            })
            .await
            .expect("operator token")
            .into_inner()
            .access_token
    }

    /// Creates a tenant (all modules, `max_users`, 0 = unlimited) and logs its admin in.
    pub async fn tenant(&self, slug: &str, max_users: i32) -> Tenant {
        let operator = self.operator_token().await;
        let mut client = self.client().await;
        let admin_email = format!("admin@{slug}.example.com");
        let created = client
            .create_tenant(bearer(
                CreateTenantRequest {
                    slug: slug.to_owned(),
                    display_name: format!("{slug} Ltd"),
                    plan: Some(Plan {
                        name: "business".to_owned(),
                        enabled_modules: vec![
                            Module::Hrm as i32,
                            Module::Crm as i32,
                            Module::Finance as i32,
                        ],
                        max_users,
                    }),
                    admin_email: admin_email.clone(),
                    admin_password: ADMIN_PASSWORD.to_owned(),
                    admin_display_name: "Tenant Admin".to_owned(),
                },
                &operator,
            ))
            .await
            .expect("tenant created")
            .into_inner();
        let admin_login = self
            .login(slug, &admin_email, ADMIN_PASSWORD)
            .await
            .expect("admin logs in");
        Tenant {
            id: created.tenant.expect("tenant").tenant_id,
            admin_email,
            admin_token: admin_login.tokens.expect("tokens").access_token,
        }
    }

    pub async fn login(
        &self,
        slug: &str,
        email: &str,
        password: &str,
    ) -> Result<LoginResponse, tonic::Status> {
        self.client()
            .await
            .login(LoginRequest {
                tenant_slug: slug.to_owned(),
                email: email.to_owned(),
                password: password.to_owned(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    /// Creates a user with `roles` in the tenant; returns its id.
    pub async fn user(&self, tenant: &Tenant, email: &str, roles: &[&str]) -> String {
        self.client()
            .await
            .create_user(bearer(
                CreateUserRequest {
                    email: email.to_owned(),
                    password: USER_PASSWORD.to_owned(),
                    display_name: email.to_owned(),
                    roles: roles.iter().map(|r| (*r).to_owned()).collect(),
                    employee_id: String::new(),
                },
                &tenant.admin_token,
            ))
            .await
            .expect("user created")
            .into_inner()
            .user
            .expect("user")
            .user_id
    }
}

/// Decodes a JWT's claims without verifying (tests inspect what the service issued).
pub fn claims_of(token: &str) -> serde_json::Value {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("json")
}
