//! Applications, their subscriptions and their client credentials. Deleting an application
//! takes its subscriptions and credentials with it (the schema's `ON DELETE CASCADE`).

use wsgate_core::model::{Application, ClientCredentials, ExternalClient, Subscription, SubscriptionState};

use super::{from_json, read, read_one, to_json, unknown, write};
use crate::schema::Rule;
use crate::sql::{Backend, Expect, Param, Row, Statement};
use crate::{Change, Result, SubscriptionFilter};

const APPLICATION_EXISTS: &str = "SELECT 1 FROM applications WHERE id = $1";
const PLAN_EXISTS: &str = "SELECT 1 FROM plans WHERE name = $1";

/// The columns `decode_application` reads, in its order.
macro_rules! application_columns {
    () => {
        "id, name, owner, description, created_at, plan, external_clients"
    };
}

fn decode_application(row: &Row) -> Result<Application> {
    Ok(Application {
        id: row.text(0)?,
        name: row.text(1)?,
        owner: row.text(2)?,
        description: row.text(3)?,
        created_at: row.int(4)?,
        plan: row.opt_text(5)?,
        external_clients: from_json(&row.text(6)?, "external clients")?,
    })
}

pub(super) async fn create_application(db: &impl Backend, app: &Application) -> Result<()> {
    const SQL: &str =
        concat!("INSERT INTO applications (", application_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7)");
    let params = vec![
        app.id.as_str().into(),
        app.name.as_str().into(),
        app.owner.as_str().into(),
        app.description.as_str().into(),
        app.created_at.into(),
        Param::OptText(app.plan.clone()),
        to_json(&app.external_clients)?,
    ];
    write(db, vec![Statement::new(SQL, params)], &[Change::Applications], |rule| match rule {
        Rule::ApplicationId => format!("an application with id {} already exists", app.id),
        _ => format!("{} already has an application named {}", app.owner, app.name),
    })
    .await
}

pub(super) async fn application(db: &impl Backend, id: &str) -> Result<Option<Application>> {
    const SQL: &str = concat!("SELECT ", application_columns!(), " FROM applications WHERE id = $1");
    read_one(db, SQL, vec![id.into()], decode_application).await
}

/// An absent owner matches all; the `CAST` gives PostgreSQL the parameter's type, which
/// `IS NULL` alone does not.
pub(super) async fn list_applications(db: &impl Backend, owner: Option<&str>) -> Result<Vec<Application>> {
    const SQL: &str =
        concat!("SELECT ", application_columns!(), " FROM applications WHERE (CAST($1 AS TEXT) IS NULL OR owner = $1)");
    let mut apps = read(db, SQL, vec![Param::OptText(owner.map(Into::into))], decode_application).await?;
    apps.sort_by(|a, b| (&a.name, &a.owner, &a.id).cmp(&(&b.name, &b.owner, &b.id)));
    Ok(apps)
}

pub(super) async fn set_external_clients(db: &impl Backend, id: &str, clients: &[ExternalClient]) -> Result<()> {
    const SQL: &str = "UPDATE applications SET external_clients = $2 WHERE id = $1";
    let statement = Statement::new(SQL, vec![id.into(), to_json(clients)?]).expect(Expect::Touches("application"));
    write(db, vec![statement], &[Change::Applications], |rule| format!("registering clients breaks {rule:?}")).await
}

/// Checked against the plans table in the same transaction, so the plan cannot be deleted
/// between the check and the write.
pub(super) async fn set_application_plan(db: &impl Backend, id: &str, plan: Option<&str>) -> Result<()> {
    const SQL: &str = "UPDATE applications SET plan = $2 WHERE id = $1";
    let mut statements = Vec::new();
    if let Some(plan) = plan {
        statements.push(Statement::new(PLAN_EXISTS, vec![plan.into()]).expect(Expect::Finds("plan")));
    }
    statements.push(
        Statement::new(SQL, vec![id.into(), Param::OptText(plan.map(Into::into))])
            .expect(Expect::Touches("application")),
    );
    write(db, statements, &[Change::Applications], |rule| format!("the application breaks the rule {rule:?}")).await
}

pub(super) async fn delete_application(db: &impl Backend, id: &str) -> Result<()> {
    const SQL: &str = "DELETE FROM applications WHERE id = $1";
    let statement = Statement::new(SQL, vec![id.into()]).expect(Expect::Touches("application"));
    let changes = [Change::Applications, Change::Subscriptions, Change::Credentials];
    write(db, vec![statement], &changes, |rule| format!("deleting breaks {rule:?}")).await
}

/// The columns `decode_subscription` reads, in its order.
macro_rules! subscription_columns {
    () => {
        "id, application_id, api_id, plan, state, created_at, granted_scopes"
    };
}

fn decode_subscription(row: &Row) -> Result<Subscription> {
    let state = row.text(4)?;
    Ok(Subscription {
        id: row.text(0)?,
        application_id: row.text(1)?,
        api_id: row.text(2)?,
        plan: row.text(3)?,
        state: SubscriptionState::parse(&state).ok_or_else(|| unknown("subscription state", &state))?,
        created_at: row.int(5)?,
        granted_scopes: from_json(&row.text(6)?, "granted scopes")?,
    })
}

fn explain_subscription(application_id: &str, api_id: &str, rule: Rule) -> String {
    match rule {
        Rule::LiveSubscription => {
            format!("application {application_id} is already subscribed to API {api_id}")
        }
        other => format!("the subscription breaks the rule {other:?}"),
    }
}

/// Both ends are checked first so the error says which one is missing.
pub(super) async fn create_subscription(db: &impl Backend, subscription: &Subscription) -> Result<()> {
    const API_EXISTS: &str = "SELECT 1 FROM apis WHERE id = $1";
    const SQL: &str =
        concat!("INSERT INTO subscriptions (", subscription_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7)");
    let Subscription { id, application_id, api_id, plan, state, created_at, granted_scopes } = subscription;
    let statements = vec![
        Statement::new(APPLICATION_EXISTS, vec![application_id.as_str().into()]).expect(Expect::Finds("application")),
        Statement::new(API_EXISTS, vec![api_id.as_str().into()]).expect(Expect::Finds("API")),
        Statement::new(
            SQL,
            vec![
                id.as_str().into(),
                application_id.as_str().into(),
                api_id.as_str().into(),
                plan.as_str().into(),
                state.as_str().into(),
                (*created_at).into(),
                to_json(granted_scopes)?,
            ],
        ),
    ];
    write(db, statements, &[Change::Subscriptions], |rule| match rule {
        Rule::SubscriptionId => format!("a subscription with id {id} already exists"),
        other => explain_subscription(application_id, api_id, other),
    })
    .await
}

pub(super) async fn subscription(db: &impl Backend, id: &str) -> Result<Option<Subscription>> {
    const SQL: &str = concat!("SELECT ", subscription_columns!(), " FROM subscriptions WHERE id = $1");
    read_one(db, SQL, vec![id.into()], decode_subscription).await
}

pub(super) async fn list_subscriptions(db: &impl Backend, filter: SubscriptionFilter<'_>) -> Result<Vec<Subscription>> {
    const SQL: &str = concat!(
        "SELECT ",
        subscription_columns!(),
        " FROM subscriptions WHERE (CAST($1 AS TEXT) IS NULL OR application_id = $1) \
         AND (CAST($2 AS TEXT) IS NULL OR api_id = $2)"
    );
    let params =
        vec![Param::OptText(filter.application_id.map(Into::into)), Param::OptText(filter.api_id.map(Into::into))];
    let mut subscriptions = read(db, SQL, params, decode_subscription).await?;
    subscriptions.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    Ok(subscriptions)
}

/// Reactivating a REMOVED subscription breaks the live-subscription rule when the application
/// has subscribed to the API again since; the error says so.
pub(super) async fn set_subscription_state(db: &impl Backend, id: &str, state: SubscriptionState) -> Result<()> {
    const SQL: &str = "UPDATE subscriptions SET state = $2 WHERE id = $1";
    let statement = Statement::new(SQL, vec![id.into(), state.as_str().into()]).expect(Expect::Touches("subscription"));
    write(db, vec![statement], &[Change::Subscriptions], |rule| match rule {
        Rule::LiveSubscription => {
            format!(
                "subscription {id} cannot become {}: its application has another subscription to this API",
                state.as_str()
            )
        }
        other => format!("the subscription breaks the rule {other:?}"),
    })
    .await
}

pub(super) async fn set_subscription_scopes(db: &impl Backend, id: &str, scopes: &[String]) -> Result<()> {
    const SQL: &str = "UPDATE subscriptions SET granted_scopes = $2 WHERE id = $1";
    let statement = Statement::new(SQL, vec![id.into(), to_json(scopes)?]).expect(Expect::Touches("subscription"));
    write(db, vec![statement], &[Change::Subscriptions], |rule| format!("granting scopes breaks {rule:?}")).await
}

pub(super) async fn set_subscription_plan(db: &impl Backend, id: &str, plan: &str) -> Result<()> {
    const SQL: &str = "UPDATE subscriptions SET plan = $2 WHERE id = $1";
    let statements = vec![
        Statement::new(PLAN_EXISTS, vec![plan.into()]).expect(Expect::Finds("plan")),
        Statement::new(SQL, vec![id.into(), plan.into()]).expect(Expect::Touches("subscription")),
    ];
    write(db, statements, &[Change::Subscriptions], |rule| format!("the subscription breaks the rule {rule:?}")).await
}

/// The columns `decode_credentials` reads, in its order.
macro_rules! credentials_columns {
    () => {
        "application_id, client_id, secret_hash, created_at"
    };
}

fn decode_credentials(row: &Row) -> Result<ClientCredentials> {
    Ok(ClientCredentials {
        application_id: row.text(0)?,
        client_id: row.text(1)?,
        secret_hash: row.text(2)?,
        created_at: row.int(3)?,
    })
}

/// One row per application: regenerating replaces the pair, so the old client id stops working
/// in the same transaction that makes the new one valid.
pub(super) async fn put_credentials(db: &impl Backend, credentials: &ClientCredentials) -> Result<()> {
    const SQL: &str = concat!(
        "INSERT INTO credentials (",
        credentials_columns!(),
        ") VALUES ($1, $2, $3, $4) ON CONFLICT (application_id) DO UPDATE SET client_id = excluded.client_id, \
         secret_hash = excluded.secret_hash, created_at = excluded.created_at"
    );
    let ClientCredentials { application_id, client_id, secret_hash, created_at } = credentials;
    let statements = vec![
        Statement::new(APPLICATION_EXISTS, vec![application_id.as_str().into()]).expect(Expect::Finds("application")),
        Statement::new(
            SQL,
            vec![
                application_id.as_str().into(),
                client_id.as_str().into(),
                secret_hash.as_str().into(),
                (*created_at).into(),
            ],
        ),
    ];
    write(db, statements, &[Change::Credentials], |_| {
        format!("client id {client_id} is already used by another application")
    })
    .await
}

pub(super) async fn credentials_by_client_id(db: &impl Backend, client_id: &str) -> Result<Option<ClientCredentials>> {
    const SQL: &str = concat!("SELECT ", credentials_columns!(), " FROM credentials WHERE client_id = $1");
    read_one(db, SQL, vec![client_id.into()], decode_credentials).await
}

pub(super) async fn credentials_for_application(
    db: &impl Backend,
    application_id: &str,
) -> Result<Option<ClientCredentials>> {
    const SQL: &str = concat!("SELECT ", credentials_columns!(), " FROM credentials WHERE application_id = $1");
    read_one(db, SQL, vec![application_id.into()], decode_credentials).await
}

/// Ordered by client id.
pub(super) async fn list_credentials(db: &impl Backend) -> Result<Vec<ClientCredentials>> {
    const SQL: &str = concat!("SELECT ", credentials_columns!(), " FROM credentials");
    let mut all = read(db, SQL, vec![], decode_credentials).await?;
    all.sort_by(|a, b| a.client_id.cmp(&b.client_id));
    Ok(all)
}
