use std::net::SocketAddr;

use erp_auth_service::config::Config as AuthConfig;
use erp_hrm_service::config::Config as HrmConfig;
use erp_kit::ShutdownHandle;
use erp_proto::erp::{
    auth::v1::{
        CreateTenantRequest, CreateUserRequest, IssueOperatorTokenRequest, LoginRequest, Plan,
        auth_service_client::AuthServiceClient,
    },
    common::v1::{Date, DateRange, Module},
    hrm::v1::{
        AllocateLeaveRequest, ApproverKind, CreateDepartmentRequest, CreateEmployeeRequest,
        CreateLeaveTypeRequest, EmploymentType, GetLeaveBalancesRequest,
        ListLeaveLedgerEntriesRequest, SubmitLeaveRequestRequest,
        hrm_service_client::HrmServiceClient,
    },
};
use erp_testkit::TestDatabase;
use tonic::{Request, metadata::MetadataValue, transport::Channel};

pub const PASSWORD: &str = "Employee-password-2026";
const ADMIN_PASSWORD: &str = "Admin-password-2026";
const SECRET: &str = "hrm-test-bootstrap";

struct Running {
    addr: SocketAddr,
    shutdown: ShutdownHandle,
    _database: TestDatabase,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.shutdown();
    }
}

/// Auth and HRM running for one test, with a tenant and its admin logged in.
pub struct Mesh {
    auth: Running,
    hrm: Running,
    pub hrm_db: sea_orm::DatabaseConnection,
    pub tenant_slug: String,
    pub admin: String,
}

pub fn bearer<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    let value: MetadataValue<_> = format!("Bearer {token}").parse().expect("header");
    request.metadata_mut().insert("authorization", value);
    request
}

pub fn date(year: i32, month: i32, day: i32) -> Option<Date> {
    Some(Date { year, month, day })
}

async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("url")
        .connect()
        .await
        .expect("connects")
}

pub async fn spawn_auth(
    configure: impl FnOnce(&mut AuthConfig),
) -> (SocketAddr, ShutdownHandle, TestDatabase) {
    let database = TestDatabase::postgres().await;
    let mut config = AuthConfig::default();
    config.server.grpc_port = 0;
    config.server.admin_port = 0;
    config.database = database.config();
    config.events.enabled = false;
    config.auth.bootstrap_secret = SECRET.to_owned().into();
    configure(&mut config);
    let application = erp_auth_service::Application::build(config)
        .await
        .expect("auth starts");
    let addr = application.local_addr();
    let shutdown = application.shutdown_handle();
    tokio::spawn(async move { application.run_until_stopped().await.expect("auth ran") });
    (addr, shutdown, database)
}

pub async fn spawn_hrm(
    auth: SocketAddr,
    configure: impl FnOnce(&mut HrmConfig),
) -> (
    SocketAddr,
    ShutdownHandle,
    TestDatabase,
    sea_orm::DatabaseConnection,
) {
    let database = TestDatabase::postgres().await;
    let mut config = HrmConfig::default();
    config.server.grpc_port = 0;
    config.server.admin_port = 0;
    config.database = database.config();
    config.events.enabled = false;
    config.upstreams.auth = format!("http://{auth}");
    config.auth.jwks_url = format!("http://{auth}");
    configure(&mut config);
    let db = erp_db::connect(&config.database).await.expect("hrm db");
    let application = erp_hrm_service::Application::build(config)
        .await
        .expect("hrm starts");
    let addr = application.local_addr();
    let shutdown = application.shutdown_handle();
    tokio::spawn(async move { application.run_until_stopped().await.expect("hrm ran") });
    (addr, shutdown, database, db)
}

impl Mesh {
    pub async fn start() -> Self {
        Self::start_with(|_| {}, |_| {}).await
    }

    pub async fn start_with(
        auth_config: impl FnOnce(&mut AuthConfig),
        hrm_config: impl FnOnce(&mut HrmConfig),
    ) -> Self {
        let (auth_addr, auth_shutdown, auth_db) = spawn_auth(auth_config).await;
        let (hrm_addr, hrm_shutdown, hrm_database, hrm_db) = spawn_hrm(auth_addr, hrm_config).await;
        let mut mesh = Self {
            auth: Running {
                addr: auth_addr,
                shutdown: auth_shutdown,
                _database: auth_db,
            },
            hrm: Running {
                addr: hrm_addr,
                shutdown: hrm_shutdown,
                _database: hrm_database,
            },
            hrm_db,
            tenant_slug: String::new(),
            admin: String::new(),
        };
        mesh.admin = mesh.tenant("acme").await;
        mesh.tenant_slug = "acme".to_owned();
        mesh
    }

    pub async fn auth(&self) -> AuthServiceClient<Channel> {
        AuthServiceClient::new(channel(self.auth.addr).await)
    }

    pub async fn hrm(&self) -> HrmServiceClient<Channel> {
        HrmServiceClient::new(channel(self.hrm.addr).await)
    }

    /// Creates another tenant; returns its admin's token.
    pub async fn tenant(&self, slug: &str) -> String {
        let mut auth = self.auth().await;
        let operator = auth
            .issue_operator_token(IssueOperatorTokenRequest {
                bootstrap_secret: SECRET.to_owned(),
            })
            .await
            .expect("operator")
            .into_inner()
            .access_token;
        auth.create_tenant(bearer(
            CreateTenantRequest {
                slug: slug.to_owned(),
                display_name: slug.to_owned(),
                plan: Some(Plan {
                    name: "all".to_owned(),
                    enabled_modules: vec![Module::Hrm as i32, Module::Crm as i32],
                    max_users: 0,
                }),
                admin_email: format!("admin@{slug}.example.com"),
                admin_password: ADMIN_PASSWORD.to_owned(),
                admin_display_name: String::new(),
            },
            &operator,
        ))
        .await
        .expect("tenant");
        self.login_in(slug, &format!("admin@{slug}.example.com"), ADMIN_PASSWORD)
            .await
            .expect("admin login")
    }

    pub async fn login_in(
        &self,
        slug: &str,
        email: &str,
        password: &str,
    ) -> Result<String, tonic::Status> {
        self.auth()
            .await
            .login(LoginRequest {
                tenant_slug: slug.to_owned(),
                email: email.to_owned(),
                password: password.to_owned(),
            })
            .await
            .map(|response| response.into_inner().tokens.expect("tokens").access_token)
    }

    pub async fn login(&self, email: &str) -> String {
        self.login_in(&self.tenant_slug, email, PASSWORD)
            .await
            .expect("login")
    }

    /// A login with `role` that is not an employee (e.g. an HR officer); returns a token.
    pub async fn user_with_role(&self, email: &str, role: &str) -> String {
        let mut auth = self.auth().await;
        let user = auth
            .create_user(bearer(
                CreateUserRequest {
                    email: email.to_owned(),
                    password: PASSWORD.to_owned(),
                    roles: vec![role.to_owned()],
                    ..Default::default()
                },
                &self.admin,
            ))
            .await
            .expect("user")
            .into_inner()
            .user
            .expect("user");
        drop(user);
        self.login(email).await
    }

    pub async fn department(&self, token: &str, code: &str, parent: &str) -> String {
        self.hrm()
            .await
            .create_department(bearer(
                CreateDepartmentRequest {
                    code: code.to_owned(),
                    name: format!("{code} department"),
                    parent_department_id: parent.to_owned(),
                    head_employee_id: String::new(),
                },
                token,
            ))
            .await
            .expect("department")
            .into_inner()
            .department
            .expect("department")
            .department_id
    }

    pub fn hire_request(
        number: &str,
        department: &str,
        manager: &str,
        login: bool,
    ) -> CreateEmployeeRequest {
        CreateEmployeeRequest {
            employee_id: number.to_owned(),
            first_name: "Emma".to_owned(),
            last_name: format!("Worker {number}"),
            email: format!("{}@acme.example.com", number.to_lowercase()),
            department_id: department.to_owned(),
            position: "Engineer".to_owned(),
            manager_id: manager.to_owned(),
            hire_date: date(2024, 1, 15),
            employment_type: EmploymentType::FullTime as i32,
            phone: String::new(),
            create_login: login,
            initial_password: if login {
                PASSWORD.to_owned()
            } else {
                String::new()
            },
        }
    }

    /// Hires with a login; returns (employee id, the employee's token).
    pub async fn hire(&self, number: &str, department: &str, manager: &str) -> (String, String) {
        let employee = self
            .hrm()
            .await
            .create_employee(bearer(
                Self::hire_request(number, department, manager, true),
                &self.admin,
            ))
            .await
            .expect("hired")
            .into_inner()
            .employee
            .expect("employee");
        assert!(!employee.user_id.is_empty(), "the login is linked");
        let token = self.login(&employee.email).await;
        (employee.id, token)
    }

    pub async fn leave_type(&self, code: &str, levels: &[ApproverKind]) -> String {
        self.hrm()
            .await
            .create_leave_type(bearer(
                CreateLeaveTypeRequest {
                    code: code.to_owned(),
                    name: format!("{code} leave"),
                    paid: true,
                    half_days_per_year: 50,
                    carry_forward_cap_half_days: 10,
                    approval_levels: levels.iter().map(|kind| *kind as i32).collect(),
                },
                &self.admin,
            ))
            .await
            .expect("leave type")
            .into_inner()
            .leave_type
            .expect("leave type")
            .leave_type_id
    }

    /// Grants days valid from 2026 on, far enough ahead that the tests' fixed 2026 dates
    /// stay covered and nothing lapses whenever the tests run.
    pub async fn allocate(&self, employee: &str, leave_type: &str, half_days: i32) {
        self.allocate_in(
            employee,
            leave_type,
            half_days,
            ((2026, 1, 1), (2099, 12, 31)),
        )
        .await;
    }

    /// Grants days valid in `period` (first and last day); the allocation's id.
    pub async fn allocate_in(
        &self,
        employee: &str,
        leave_type: &str,
        half_days: i32,
        (from, to): ((i32, i32, i32), (i32, i32, i32)),
    ) -> String {
        self.hrm()
            .await
            .allocate_leave(bearer(
                AllocateLeaveRequest {
                    employee_id: employee.to_owned(),
                    leave_type_id: leave_type.to_owned(),
                    period: Some(DateRange {
                        start_date: date(from.0, from.1, from.2),
                        end_date: date(to.0, to.1, to.2),
                    }),
                    half_days,
                    note: "entitlement".to_owned(),
                },
                &self.admin,
            ))
            .await
            .expect("allocated")
            .into_inner()
            .allocation
            .expect("allocation")
            .leave_allocation_id
    }

    /// Submits a leave request as the caller of `token`; the request's id.
    pub async fn submit_leave(&self, request: SubmitLeaveRequestRequest, token: &str) -> String {
        self.hrm()
            .await
            .submit_leave_request(bearer(request, token))
            .await
            .expect("submitted")
            .into_inner()
            .leave_request
            .expect("request")
            .leave_request_id
    }

    /// (balance, pending) of one leave type, checking the balance equals the ledger sum.
    pub async fn balance(&self, employee: &str, leave_type: &str) -> (i32, i32) {
        let mut hrm = self.hrm().await;
        let balances = hrm
            .get_leave_balances(bearer(
                GetLeaveBalancesRequest {
                    employee_id: employee.to_owned(),
                },
                &self.admin,
            ))
            .await
            .expect("balances")
            .into_inner()
            .balances;
        let balance = balances
            .iter()
            .find(|b| b.leave_type_id == leave_type)
            .expect("a balance");
        let ledger: i32 = hrm
            .list_leave_ledger_entries(bearer(
                ListLeaveLedgerEntriesRequest {
                    employee_id: employee.to_owned(),
                    leave_type_id: leave_type.to_owned(),
                    page: None,
                },
                &self.admin,
            ))
            .await
            .expect("ledger")
            .into_inner()
            .entries
            .iter()
            .map(|entry| entry.half_days_delta)
            .sum();
        assert_eq!(
            balance.balance_half_days, ledger,
            "the balance is the ledger's sum"
        );
        (balance.balance_half_days, balance.pending_half_days)
    }
}
