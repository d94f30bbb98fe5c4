//! APIs and business plans.

use wsgate_core::config::AuthMode;
use wsgate_core::limits::{Direction, Limits, OnExceed, Period, Rate};
use wsgate_core::model::{Lifecycle, Plan};

use super::{Db, NOW, api, application, conflict, not_found, subscription};

pub async fn apis_are_created_read_listed_updated_and_deleted(db: Db) {
    assert_eq!(db.api("a1").await.expect("read"), None);
    let mut echo = api("a1", "Echo", "/echowebsocket", "1.0");
    echo.ca_file = Some("/etc/wsgate/ca.pem".into());
    echo.scopes = vec!["echo:read".into(), "echo:write".into()];
    echo.default_version = true;
    let echo2 = api("a2", "Echo", "/echowebsocket", "2.0");
    let chat = api("a3", "Chat", "/chat", "v1");
    for api in [&echo2, &chat, &echo] {
        db.create_api(api).await.expect("create");
    }
    assert_eq!(db.api("a1").await.expect("read"), Some(echo.clone()));
    let order: Vec<String> = db.list_apis().await.expect("list").into_iter().map(|a| a.id).collect();
    assert_eq!(order, ["a3", "a1", "a2"], "by name, then version");

    let mut changed = echo.clone();
    changed.state = Lifecycle::Published;
    changed.auth = AuthMode::None;
    changed.endpoints = vec![];
    changed.plans = vec!["Bronze".into()];
    changed.ca_file = None;
    changed.insecure_skip_verify = true;
    changed.scopes = vec![];
    changed.close_on_token_expiry = false;
    changed.version = "1.1".into();
    changed.updated_at = NOW + 10;
    changed.allowed_origins = vec!["https://app.example.com".into()];
    changed.endpoint_settings.connect_timeout = Some(std::time::Duration::from_millis(750));
    changed.endpoint_settings.load_balancing = wsgate_core::upstream::Balancing::HashApplication;
    changed.endpoint_settings.breaker.cool_down = std::time::Duration::from_secs(3);
    changed.endpoint_settings.probe = Some(wsgate_core::upstream::ProbeSettings::default());
    db.update_api(&changed).await.expect("update");
    assert_eq!(db.api("a1").await.expect("read"), Some(changed.clone()), "every field replaced");

    assert_eq!(not_found(db.update_api(&api("nope", "X", "/x", "1")).await), "API");
    db.delete_api("a1").await.expect("delete");
    assert_eq!(db.api("a1").await.expect("read"), None);
    assert_eq!(not_found(db.delete_api("a1").await), "API");
    assert_eq!(db.list_apis().await.expect("list").len(), 2);
}

pub async fn api_name_and_version_are_unique(db: Db) {
    db.create_api(&api("a1", "Echo", "/echo", "1.0")).await.expect("create");
    let message = conflict(db.create_api(&api("a2", "Echo", "/other", "1.0")).await);
    assert_eq!(message, "an API named Echo with version 1.0 already exists");
    let message = conflict(db.create_api(&api("a1", "Other", "/other", "1.0")).await);
    assert_eq!(message, "an API with id a1 already exists");
    db.create_api(&api("a3", "Echo", "/other", "2.0")).await.expect("another version of the name");
    assert_eq!(db.list_apis().await.expect("list").len(), 2);
}

pub async fn api_context_and_canonical_version_are_unique(db: Db) {
    db.create_api(&api("a1", "Echo", "/echowebsocket", "1.0")).await.expect("create");
    let message = conflict(db.create_api(&api("a2", "Echo2", "/echowebsocket", "1.0")).await);
    assert_eq!(message, "an API with context /echowebsocket and version 1.0 already exists");
    let message = conflict(db.create_api(&api("a2", "Echo2", "/echowebsocket", "1.0.0")).await);
    assert_eq!(
        message,
        "an API with context /echowebsocket and version 1.0 already exists (1.0.0 is the same version)"
    );
    let message = conflict(db.create_api(&api("a2", "Echo2", "/echowebsocket", "1")).await);
    assert_eq!(message, "an API with context /echowebsocket and version 1.0 already exists (1 is the same version)");
    db.create_api(&api("a2", "Echo2", "/echowebsocket", "1.0.1")).await.expect("a different version");
    db.create_api(&api("a3", "Echo3", "/echowebsocket/v", "1.0")).await.expect("a different context");
    db.create_api(&api("a4", "Echo4", "/echowebsocket", "v1.0")).await.expect("not numeric, not the same");
}

pub async fn api_updates_obey_the_same_rules(db: Db) {
    db.create_api(&api("a1", "Echo", "/echo", "1.0")).await.expect("create");
    db.create_api(&api("a2", "Chat", "/chat", "1.0")).await.expect("create");
    let mut chat = api("a2", "Echo", "/chat", "1.0");
    assert_eq!(conflict(db.update_api(&chat).await), "an API named Echo with version 1.0 already exists");
    chat = api("a2", "Chat", "/echo", "1.0.0");
    let message = conflict(db.update_api(&chat).await);
    assert_eq!(message, "an API with context /echo and version 1.0 already exists (1.0.0 is the same version)");
    assert_eq!(db.api("a2").await.expect("read").map(|a| a.context), Some("/chat".into()), "unchanged");
    // An API may keep its own name, context and version.
    let mut echo = api("a1", "Echo", "/echo", "1.0.0");
    echo.state = Lifecycle::Published;
    db.update_api(&echo).await.expect("update in place");
}

pub async fn plans_start_with_the_defaults_and_can_be_put(db: Db) {
    let mut defaults = Plan::defaults();
    defaults.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(db.list_plans().await.expect("list"), defaults);

    let silver = Plan {
        name: "Silver".into(),
        description: "cheaper".into(),
        limits: Limits { messages: Some(Rate::new(u64::from(u32::MAX) + 1, Period::Day)), ..Limits::default() },
    };
    db.put_plan(&silver).await.expect("replace");
    let free = Plan {
        name: "Free".into(),
        description: "for trying".into(),
        limits: Limits {
            messages: Some(Rate::new(10, Period::Second)),
            bytes: Some(Rate::new(4096, Period::Minute)),
            count: Direction::In,
            connections: Some(1),
            connection_rate: Some(Rate::new(3, Period::Hour)),
            on_exceed: OnExceed::Close,
        },
    };
    db.put_plan(&free).await.expect("create");
    let plans = db.list_plans().await.expect("list");
    let names: Vec<&str> = plans.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["Bronze", "Free", "Gold", "Silver", "Unlimited"]);
    assert_eq!(plans.iter().find(|p| p.name == "Silver"), Some(&silver));
    assert_eq!(plans.iter().find(|p| p.name == "Free"), Some(&free));
}

/// A plan named by an API (offered, API-wide or per client), an application or a live
/// subscription stays; once nothing names it, it goes.
pub async fn plans_in_use_cannot_be_deleted(db: Db) {
    let free = Plan { name: "Free_1".into(), description: String::new(), limits: Limits::default() };
    let other = Plan { name: "FreeX1".into(), ..free.clone() };
    db.put_plan(&free).await.expect("create");
    db.put_plan(&other).await.expect("create");
    let mut echo = api("a1", "Echo", "/echo", "1");
    echo.plans = vec!["Free_1".into()];
    db.create_api(&echo).await.expect("create api");
    conflict(db.delete_plan("Free_1").await);
    // `_` is not a wildcard: a plan whose name differs there is not "offered".
    db.delete_plan("FreeX1").await.expect("FreeX1 is not offered");
    echo.plans = vec!["Gold".into()];
    echo.api_plan = Some("Free_1".into());
    db.update_api(&echo).await.expect("update api");
    conflict(db.delete_plan("Free_1").await);
    echo.api_plan = None;
    echo.client_plan = Some("Free_1".into());
    db.update_api(&echo).await.expect("update api");
    conflict(db.delete_plan("Free_1").await);
    echo.client_plan = None;
    db.update_api(&echo).await.expect("update api");
    db.create_application(&application("p1", "alice", "App")).await.expect("create app");
    db.set_application_plan("p1", Some("Free_1")).await.expect("set app plan");
    conflict(db.delete_plan("Free_1").await);
    db.set_application_plan("p1", None).await.expect("clear app plan");
    let mut sub = subscription("s1", "p1", "a1", NOW);
    sub.plan = "Free_1".into();
    db.create_subscription(&sub).await.expect("subscribe");
    conflict(db.delete_plan("Free_1").await);
    db.set_subscription_state("s1", wsgate_core::model::SubscriptionState::Removed).await.expect("remove");
    db.delete_plan("Free_1").await.expect("nothing names it any more");
    assert_eq!(db.plan("Free_1").await.expect("read"), None);
    not_found(db.delete_plan("Free_1").await);
}
