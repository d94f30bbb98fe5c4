//! APIs and business plans. An API's canonical version is stored beside the version as written
//! so the database itself enforces "one API per context and canonical version".

use wsgate_core::config::AuthMode;
use wsgate_core::limits::{Direction, Limits, OnExceed, Rate};
use wsgate_core::model::{ApiRecord, Lifecycle, Plan};
use wsgate_core::version;

use super::{from_i64, from_json, read, read_one, to_json, unknown, write};
use crate::schema::Rule;
use crate::sql::{Backend, Expect, Param, Row, Statement, Write};
use crate::{Change, Result};

/// The columns `decode_api` reads, in its order; writes add `canonical_version` as `$21`.
macro_rules! api_columns {
    () => {
        "id, name, context, version, endpoints, plans, auth, state, default_version, ca_file, \
         insecure_skip_verify, scopes, close_on_token_expiry, owner, created_at, updated_at, api_plan, client_plan, \
         endpoint_settings, allowed_origins"
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
        api_plan: row.opt_text(16)?,
        client_plan: row.opt_text(17)?,
        endpoint_settings: from_json(&row.text(18)?, "endpoint_settings")?,
        allowed_origins: from_json(&row.text(19)?, "allowed_origins")?,
    })
}

/// `$1`…`$21` of an insert or update.
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
        Param::OptText(api.api_plan.clone()),
        Param::OptText(api.client_plan.clone()),
        to_json(&api.endpoint_settings)?,
        to_json(&api.allowed_origins)?,
        version::canonical(&api.version).into(),
    ])
}

/// Runs an API write; a broken rule is worded with the values involved. When the context and
/// canonical version are taken, the message names the existing API's version as written, so
/// "1.0.0 already exists" does not puzzle a user who sees only 1.0 in the list.
async fn write_api(db: &impl Backend, api: &ApiRecord, statement: Statement) -> Result<()> {
    let write = Write { statements: vec![statement], changes: vec![Change::Apis], exclusive: false };
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
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)"
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
        close_on_token_expiry = $13, owner = $14, created_at = $15, updated_at = $16, api_plan = $17, \
        client_plan = $18, endpoint_settings = $19, allowed_origins = $20, canonical_version = $21 WHERE id = $1";
    write_api(db, api, Statement::new(SQL, api_params(api)?).expect(Expect::Touches("API"))).await
}

/// Subscriptions go with the API through the schema's `ON DELETE CASCADE`.
pub(super) async fn delete_api(db: &impl Backend, id: &str) -> Result<()> {
    const SQL: &str = "DELETE FROM apis WHERE id = $1";
    let statement = Statement::new(SQL, vec![id.into()]).expect(Expect::Touches("API"));
    write(db, vec![statement], &[Change::Apis, Change::Subscriptions], |rule| format!("deleting breaks {rule:?}")).await
}

/// The columns `decode_plan` reads, in its order.
macro_rules! plan_columns {
    () => {
        "name, description, messages, bytes, count_direction, connections, connection_rate, on_exceed"
    };
}

fn decode_plan(row: &Row) -> Result<Plan> {
    let rate = |index: usize, column: &str| -> Result<Option<Rate>> {
        row.opt_text(index)?.map(|text| text.parse().map_err(|_| unknown(column, &text))).transpose()
    };
    let count = row.text(4)?;
    let on_exceed = row.text(7)?;
    Ok(Plan {
        name: row.text(0)?,
        description: row.text(1)?,
        limits: Limits {
            messages: rate(2, "message rate")?,
            bytes: rate(3, "byte rate")?,
            count: Direction::parse(&count).ok_or_else(|| unknown("count direction", &count))?,
            connections: row.opt_int(5)?.map(|n| from_i64(n, "connections")).transpose()?,
            connection_rate: rate(6, "connection rate")?,
            on_exceed: OnExceed::parse(&on_exceed).ok_or_else(|| unknown("on_exceed", &on_exceed))?,
        },
    })
}

fn plan_params(plan: &Plan) -> Vec<Param> {
    let rate = |rate: Option<Rate>| Param::OptText(rate.map(|r| r.to_string()));
    let limits = &plan.limits;
    vec![
        plan.name.as_str().into(),
        plan.description.as_str().into(),
        rate(limits.messages),
        rate(limits.bytes),
        limits.count.as_str().into(),
        Param::OptInt(limits.connections.map(i64::from)),
        rate(limits.connection_rate),
        limits.on_exceed.as_str().into(),
    ]
}

pub(super) async fn list_plans(db: &impl Backend) -> Result<Vec<Plan>> {
    const SQL: &str = concat!("SELECT ", plan_columns!(), " FROM plans");
    let mut plans = read(db, SQL, vec![], decode_plan).await?;
    plans.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(plans)
}

pub(super) async fn plan(db: &impl Backend, name: &str) -> Result<Option<Plan>> {
    const SQL: &str = concat!("SELECT ", plan_columns!(), " FROM plans WHERE name = $1");
    read_one(db, SQL, vec![name.into()], decode_plan).await
}

const INSERT_PLAN: &str = concat!("INSERT INTO plans (", plan_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)");

pub(super) async fn put_plan(db: &impl Backend, plan: &Plan) -> Result<()> {
    const SQL: &str = concat!(
        "INSERT INTO plans (",
        plan_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (name) DO UPDATE SET \
         description = excluded.description, messages = excluded.messages, bytes = excluded.bytes, \
         count_direction = excluded.count_direction, connections = excluded.connections, \
         connection_rate = excluded.connection_rate, on_exceed = excluded.on_exceed"
    );
    let statement = Statement::new(SQL, plan_params(plan));
    write(db, vec![statement], &[Change::Plans], |rule| format!("plan {} breaks {rule:?}", plan.name)).await
}

/// Refused while anything names the plan. The caller checks first and names who uses it; these
/// guards make the check and the delete one transaction, so a plan cannot vanish under a
/// subscription made at the same moment. Plan names are identifiers (letters, digits, `-._@`),
/// so `"name"` in an API's JSON list of plans is found with LIKE once `_` is escaped.
pub(super) async fn delete_plan(db: &impl Backend, name: &str) -> Result<()> {
    const IN_LIST: &str = "SELECT 1 FROM apis WHERE plans LIKE $1 ESCAPE '\\'";
    const NAMED: &str = "SELECT 1 FROM apis WHERE api_plan = $1 OR client_plan = $1 \
        UNION ALL SELECT 1 FROM applications WHERE plan = $1 \
        UNION ALL SELECT 1 FROM subscriptions WHERE plan = $1 AND state <> 'REMOVED'";
    const DELETE: &str = "DELETE FROM plans WHERE name = $1";
    let pattern = format!("%\"{}\"%", name.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
    let statements = vec![
        Statement::new(IN_LIST, vec![pattern.into()]).expect(Expect::FindsNone("the plan is offered by an API")),
        Statement::new(NAMED, vec![name.into()])
            .expect(Expect::FindsNone("the plan is in use by an application or a subscription")),
        Statement::new(DELETE, vec![name.into()]).expect(Expect::Touches("plan")),
    ];
    write(db, statements, &[Change::Plans], |rule| format!("deleting plan {name} breaks {rule:?}")).await
}

/// Run by a backend inside the migration transaction that creates a new store.
pub(crate) fn seed_plans() -> Result<Vec<Statement>> {
    Ok(Plan::defaults().iter().map(|plan| Statement::new(INSERT_PLAN, plan_params(plan))).collect())
}
