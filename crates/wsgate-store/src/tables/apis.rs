//! APIs and business plans. An API's canonical version is stored beside the version as written
//! so the database itself enforces "one API per context and canonical version".

use wsgate_core::config::AuthMode;
use wsgate_core::model::{ApiRecord, Lifecycle, Plan};
use wsgate_core::version;

use super::{from_i64, from_json, read, read_one, to_i64, to_json, unknown, write};
use crate::schema::Rule;
use crate::sql::{Backend, Expect, Param, Row, Statement, Write};
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

/// Runs an API write; a broken rule is worded with the values involved. When the context and
/// canonical version are taken, the message names the existing API's version as written, so
/// "1.0.0 already exists" does not puzzle a user who sees only 1.0 in the list.
async fn write_api(db: &impl Backend, api: &ApiRecord, statement: Statement) -> Result<()> {
    let write = Write { statements: vec![statement], changes: vec![Change::Apis] };
    let failure = match db.write(write).await {
        Ok(()) => return Ok(()),
        Err(failure) => failure,
    };
    let existing = match failure.rule() {
        Some(Rule::ApiContextVersion) => existing_version(db, api).await,
        _ => None,
    };
    Err(failure.explain(|rule| match rule {
        Rule::ApiNameVersion => format!("an API named {} with version {} already exists", api.name, api.version),
        Rule::ApiContextVersion => match existing.filter(|version| *version != api.version) {
            Some(version) => format!(
                "an API with context {} and version {version} already exists ({} is the same version)",
                api.context, api.version
            ),
            None => format!("an API with context {} and version {} already exists", api.context, api.version),
        },
        Rule::ApiId => format!("an API with id {} already exists", api.id),
        other => format!("API {} breaks the rule {other:?}", api.name),
    }))
}

/// The version, as written, of the other API holding the context and canonical version; `None`
/// if that read fails too (the message then names the version asked for).
async fn existing_version(db: &impl Backend, api: &ApiRecord) -> Option<String> {
    const SQL: &str = "SELECT version FROM apis WHERE context = $1 AND canonical_version = $2 AND id <> $3";
    let params = vec![api.context.as_str().into(), version::canonical(&api.version).into(), api.id.as_str().into()];
    read_one(db, SQL, params, |row| row.text(0)).await.ok().flatten()
}

pub(super) async fn create_api(db: &impl Backend, api: &ApiRecord) -> Result<()> {
    const SQL: &str = concat!(
        "INSERT INTO apis (",
        api_columns!(),
        ", canonical_version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
    );
    write_api(db, api, Statement::new(SQL, api_params(api)?)).await
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
    write_api(db, api, Statement::new(SQL, api_params(api)?).expect(Expect::Touches("API"))).await
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
