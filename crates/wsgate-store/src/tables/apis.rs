//! APIs and business plans. An API's canonical version is stored beside the version as written
//! so the database itself enforces "one API per context and canonical version".

use wsgate_core::config::AuthMode;
use wsgate_core::model::{ApiRecord, Lifecycle, Plan};
use wsgate_core::version;

use super::{from_i64, from_json, read, read_one, to_i64, to_json, unknown, write};
use crate::schema::Rule;
use crate::sql::{Backend, Expect, Param, Row, Statement};
use crate::{Change, Result};

/// The columns `decode_api` reads, in its order; writes add `canonical_version` as `$17`.
macro_rules! api_columns {
    () => {
        "id, name, context, version, endpoints, plans, auth, state, default_version, ca_file, \
         insecure_skip_verify, scopes, close_on_token_expiry, owner, created_at, updated_at"
    };
}

fn auth_name(auth: AuthMode) -> &'static str {
    match auth {
        AuthMode::Oauth2 => "oauth2",
        AuthMode::None => "none",
    }
}

fn parse_auth(text: &str) -> Result<AuthMode> {
    match text {
        "oauth2" => Ok(AuthMode::Oauth2),
        "none" => Ok(AuthMode::None),
        other => Err(unknown("auth mode", other)),
    }
}

fn decode_api(row: &Row) -> Result<ApiRecord> {
    let state = row.text(7)?;
    Ok(ApiRecord {
        id: row.text(0)?,
        name: row.text(1)?,
        context: row.text(2)?,
        version: row.text(3)?,
        endpoints: from_json(&row.text(4)?, "endpoints")?,
        plans: from_json(&row.text(5)?, "plans")?,
        auth: parse_auth(&row.text(6)?)?,
        state: Lifecycle::parse(&state).ok_or_else(|| unknown("lifecycle state", &state))?,
        default_version: row.bool(8)?,
        ca_file: row.opt_text(9)?,
        insecure_skip_verify: row.bool(10)?,
        scopes: from_json(&row.text(11)?, "scopes")?,
        close_on_token_expiry: row.bool(12)?,
        owner: row.text(13)?,
        created_at: row.int(14)?,
        updated_at: row.int(15)?,
    })
}

/// `$1`…`$17` of an insert or update.
fn api_params(api: &ApiRecord) -> Result<Vec<Param>> {
    Ok(vec![
        api.id.as_str().into(),
        api.name.as_str().into(),
        api.context.as_str().into(),
        api.version.as_str().into(),
        to_json(&api.endpoints)?,
        to_json(&api.plans)?,
        auth_name(api.auth).into(),
        api.state.as_str().into(),
        api.default_version.into(),
        Param::OptText(api.ca_file.clone()),
        api.insecure_skip_verify.into(),
        to_json(&api.scopes)?,
        api.close_on_token_expiry.into(),
        api.owner.as_str().into(),
        api.created_at.into(),
        api.updated_at.into(),
        version::canonical(&api.version).into(),
    ])
}

fn explain_api(api: &ApiRecord, rule: Rule) -> String {
    match rule {
        Rule::ApiNameVersion => format!("an API named {} with version {} already exists", api.name, api.version),
        Rule::ApiContextVersion if version::canonical(&api.version) != api.version => format!(
            "an API with context {} and version {} already exists (versions that differ only by trailing .0 \
             parts, like 1.0 and 1.0.0, are the same)",
            api.context, api.version
        ),
        Rule::ApiContextVersion => {
            format!("an API with context {} and version {} already exists", api.context, api.version)
        }
        Rule::ApiId => format!("an API with id {} already exists", api.id),
        other => format!("API {} breaks the rule {other:?}", api.name),
    }
}

pub(super) async fn create_api(db: &impl Backend, api: &ApiRecord) -> Result<()> {
    const SQL: &str = concat!(
        "INSERT INTO apis (",
        api_columns!(),
        ", canonical_version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
    );
    let statement = Statement::new(SQL, api_params(api)?);
    write(db, vec![statement], &[Change::Apis], |rule| explain_api(api, rule)).await
}

pub(super) async fn api(db: &impl Backend, id: &str) -> Result<Option<ApiRecord>> {
    const SQL: &str = concat!("SELECT ", api_columns!(), " FROM apis WHERE id = $1");
    read_one(db, SQL, vec![id.into()], decode_api).await
}

pub(super) async fn list_apis(db: &impl Backend) -> Result<Vec<ApiRecord>> {
    const SQL: &str = concat!("SELECT ", api_columns!(), " FROM apis");
    let mut apis = read(db, SQL, vec![], decode_api).await?;
    apis.sort_by(|a, b| (&a.name, &a.version, &a.id).cmp(&(&b.name, &b.version, &b.id)));
    Ok(apis)
}

pub(super) async fn update_api(db: &impl Backend, api: &ApiRecord) -> Result<()> {
    const SQL: &str = "UPDATE apis SET name = $2, context = $3, version = $4, endpoints = $5, plans = $6, \
        auth = $7, state = $8, default_version = $9, ca_file = $10, insecure_skip_verify = $11, scopes = $12, \
        close_on_token_expiry = $13, owner = $14, created_at = $15, updated_at = $16, canonical_version = $17 \
        WHERE id = $1";
    let statement = Statement::new(SQL, api_params(api)?).expect(Expect::Touches("API"));
    write(db, vec![statement], &[Change::Apis], |rule| explain_api(api, rule)).await
}

/// Subscriptions go with the API through the schema's `ON DELETE CASCADE`.
pub(super) async fn delete_api(db: &impl Backend, id: &str) -> Result<()> {
    const SQL: &str = "DELETE FROM apis WHERE id = $1";
    let statement = Statement::new(SQL, vec![id.into()]).expect(Expect::Touches("API"));
    write(db, vec![statement], &[Change::Apis, Change::Subscriptions], |rule| format!("deleting breaks {rule:?}")).await
}

const PLAN_COLUMNS_SELECT: &str = "SELECT name, description, messages_per_minute, max_connections FROM plans";

pub(super) async fn list_plans(db: &impl Backend) -> Result<Vec<Plan>> {
    let mut plans = read(db, PLAN_COLUMNS_SELECT, vec![], |row| {
        Ok(Plan {
            name: row.text(0)?,
            description: row.text(1)?,
            messages_per_minute: row.opt_int(2)?.map(|n| from_i64(n, "messages_per_minute")).transpose()?,
            max_connections: row.opt_int(3)?.map(|n| from_i64(n, "max_connections")).transpose()?,
        })
    })
    .await?;
    plans.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(plans)
}

fn plan_params(plan: &Plan) -> Result<Vec<Param>> {
    Ok(vec![
        plan.name.as_str().into(),
        plan.description.as_str().into(),
        Param::OptInt(plan.messages_per_minute.map(|n| to_i64(n, "messages_per_minute")).transpose()?),
        Param::OptInt(plan.max_connections.map(i64::from)),
    ])
}

pub(super) async fn put_plan(db: &impl Backend, plan: &Plan) -> Result<()> {
    const SQL: &str = "INSERT INTO plans (name, description, messages_per_minute, max_connections) \
        VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO UPDATE SET description = excluded.description, \
        messages_per_minute = excluded.messages_per_minute, max_connections = excluded.max_connections";
    let statement = Statement::new(SQL, plan_params(plan)?);
    write(db, vec![statement], &[Change::Plans], |rule| format!("plan {} breaks {rule:?}", plan.name)).await
}

/// Run by a backend inside its migration transaction: `COUNT_PLANS` and, when it is 0 (a new
/// store — plans are never deleted), the default plans' inserts.
pub(crate) const COUNT_PLANS: &str = "SELECT COUNT(*) FROM plans";

pub(crate) fn seed_plans() -> Result<Vec<Statement>> {
    const SQL: &str = "INSERT INTO plans (name, description, messages_per_minute, max_connections) \
        VALUES ($1, $2, $3, $4)";
    Plan::defaults().iter().map(|plan| Ok(Statement::new(SQL, plan_params(plan)?))).collect()
}
