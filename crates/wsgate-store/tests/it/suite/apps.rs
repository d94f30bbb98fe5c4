//! Applications, subscriptions, credentials, and what deleting takes with it.

use wsgate_core::model::{ExternalClient, SubscriptionState};
use wsgate_store::SubscriptionFilter;

use super::{Db, NOW, api, application, conflict, credentials, not_found, subscription};

pub async fn applications_are_per_owner(db: Db) {
    assert_eq!(db.application("p1").await.expect("read"), None);
    let bob_mobile = application("p1", "bob", "mobile");
    let bob_web = application("p2", "bob", "Web");
    let carol_mobile = application("p3", "carol", "mobile");
    for app in [&bob_mobile, &bob_web, &carol_mobile] {
        db.create_application(app).await.expect("create");
    }
    assert_eq!(db.application("p1").await.expect("read"), Some(bob_mobile.clone()));
    assert_eq!(db.list_applications(Some("bob")).await.expect("list"), vec![bob_web.clone(), bob_mobile.clone()]);
    assert_eq!(db.list_applications(Some("dave")).await.expect("list"), vec![]);
    assert_eq!(db.list_applications(None).await.expect("list").len(), 3);

    let message = conflict(db.create_application(&application("p4", "bob", "mobile")).await);
    assert_eq!(message, "bob already has an application named mobile");
    let message = conflict(db.create_application(&application("p1", "dave", "other")).await);
    assert_eq!(message, "an application with id p1 already exists");

    db.delete_application("p1").await.expect("delete");
    assert_eq!(db.application("p1").await.expect("read"), None);
    assert_eq!(not_found(db.delete_application("p1").await), "application");
    db.create_application(&application("p5", "bob", "mobile")).await.expect("the name is free again");
}

/// Two applications, two APIs.
async fn catalogue(db: &Db) {
    db.create_api(&api("a1", "Echo", "/echo", "1.0")).await.expect("create api");
    db.create_api(&api("a2", "Chat", "/chat", "1.0")).await.expect("create api");
    db.create_application(&application("p1", "bob", "mobile")).await.expect("create app");
    db.create_application(&application("p2", "bob", "web")).await.expect("create app");
}

pub async fn subscriptions_are_created_filtered_and_moved(db: Db) {
    catalogue(&db).await;
    let s1 = subscription("s1", "p1", "a1", NOW + 3);
    let s2 = subscription("s2", "p1", "a2", NOW + 1);
    let s3 = subscription("s3", "p2", "a1", NOW + 2);
    for sub in [&s1, &s2, &s3] {
        db.create_subscription(sub).await.expect("create");
    }
    assert_eq!(db.subscription("s1").await.expect("read"), Some(s1.clone()));
    assert_eq!(db.subscription("s9").await.expect("read"), None);

    let ids = |subs: Vec<wsgate_core::model::Subscription>| subs.into_iter().map(|s| s.id).collect::<Vec<_>>();
    let all = db.list_subscriptions(SubscriptionFilter::default()).await.expect("list");
    assert_eq!(ids(all), ["s2", "s3", "s1"], "by creation time");
    let of_p1 = SubscriptionFilter { application_id: Some("p1"), api_id: None };
    assert_eq!(ids(db.list_subscriptions(of_p1).await.expect("list")), ["s2", "s1"]);
    let to_a1 = SubscriptionFilter { application_id: None, api_id: Some("a1") };
    assert_eq!(ids(db.list_subscriptions(to_a1).await.expect("list")), ["s3", "s1"]);
    let both = SubscriptionFilter { application_id: Some("p2"), api_id: Some("a1") };
    assert_eq!(ids(db.list_subscriptions(both).await.expect("list")), ["s3"]);
    let none = SubscriptionFilter { application_id: Some("p2"), api_id: Some("a2") };
    assert_eq!(ids(db.list_subscriptions(none).await.expect("list")), Vec::<String>::new());

    db.set_subscription_state("s1", SubscriptionState::Blocked).await.expect("block");
    assert_eq!(db.subscription("s1").await.expect("read").map(|s| s.state), Some(SubscriptionState::Blocked));
    db.set_subscription_state("s1", SubscriptionState::Active).await.expect("unblock");
    assert_eq!(not_found(db.set_subscription_state("s9", SubscriptionState::Active).await), "subscription");
}

pub async fn one_live_subscription_per_application_and_api(db: Db) {
    catalogue(&db).await;
    db.create_subscription(&subscription("s1", "p1", "a1", NOW)).await.expect("create");
    let message = conflict(db.create_subscription(&subscription("s2", "p1", "a1", NOW)).await);
    assert_eq!(message, "application p1 is already subscribed to API a1");
    db.set_subscription_state("s1", SubscriptionState::Blocked).await.expect("block");
    conflict(db.create_subscription(&subscription("s2", "p1", "a1", NOW)).await);
    let message = conflict(db.create_subscription(&subscription("s1", "p2", "a2", NOW)).await);
    assert_eq!(message, "a subscription with id s1 already exists");

    // A removed subscription is history: the application may subscribe again…
    db.set_subscription_state("s1", SubscriptionState::Removed).await.expect("remove");
    db.create_subscription(&subscription("s2", "p1", "a1", NOW + 1)).await.expect("subscribe again");
    // …but the removed one cannot come back while the new one lives.
    let message = conflict(db.set_subscription_state("s1", SubscriptionState::Active).await);
    assert!(message.starts_with("subscription s1 cannot become ACTIVE"), "{message}");
    assert_eq!(db.subscription("s1").await.expect("read").map(|s| s.state), Some(SubscriptionState::Removed));
    db.set_subscription_state("s2", SubscriptionState::Removed).await.expect("remove");
    db.set_subscription_state("s1", SubscriptionState::Active).await.expect("now it can");
}

pub async fn subscriptions_need_an_application_and_an_api(db: Db) {
    catalogue(&db).await;
    assert_eq!(not_found(db.create_subscription(&subscription("s1", "p9", "a1", NOW)).await), "application");
    assert_eq!(not_found(db.create_subscription(&subscription("s1", "p1", "a9", NOW)).await), "API");
    assert_eq!(db.list_subscriptions(SubscriptionFilter::default()).await.expect("list"), vec![]);
}

pub async fn credentials_are_put_replaced_and_found(db: Db) {
    db.create_application(&application("p1", "bob", "mobile")).await.expect("create app");
    assert_eq!(db.credentials_for_application("p1").await.expect("read"), None);
    assert_eq!(db.list_credentials().await.expect("list"), vec![]);
    let first = credentials("p1", "client-1");
    db.put_credentials(&first).await.expect("put");
    assert_eq!(db.credentials_by_client_id("client-1").await.expect("read"), Some(first.clone()));
    assert_eq!(db.credentials_for_application("p1").await.expect("read"), Some(first));

    let regenerated = wsgate_core::model::ClientCredentials { created_at: NOW + 5, ..credentials("p1", "client-2") };
    db.put_credentials(&regenerated).await.expect("regenerate");
    assert_eq!(db.credentials_by_client_id("client-1").await.expect("read"), None, "the old pair is gone");
    assert_eq!(db.credentials_by_client_id("client-2").await.expect("read"), Some(regenerated.clone()));
    assert_eq!(db.credentials_for_application("p1").await.expect("read"), Some(regenerated));

    assert_eq!(not_found(db.put_credentials(&credentials("p9", "client-9")).await), "application");
}

pub async fn client_ids_are_unique(db: Db) {
    db.create_application(&application("p1", "bob", "mobile")).await.expect("create app");
    db.create_application(&application("p2", "carol", "web")).await.expect("create app");
    db.put_credentials(&credentials("p1", "client-1")).await.expect("put");
    let message = conflict(db.put_credentials(&credentials("p2", "client-1")).await);
    assert_eq!(message, "client id client-1 is already used by another application");
    assert_eq!(db.credentials_for_application("p2").await.expect("read"), None);
    db.put_credentials(&credentials("p1", "client-1")).await.expect("an application may keep its own id");
    db.put_credentials(&credentials("p2", "client-0")).await.expect("put");
    let all = db.list_credentials().await.expect("list");
    assert_eq!(all, vec![credentials("p2", "client-0"), credentials("p1", "client-1")], "by client id");
}

pub async fn deleting_an_api_deletes_its_subscriptions(db: Db) {
    catalogue(&db).await;
    db.create_subscription(&subscription("s1", "p1", "a1", NOW)).await.expect("create");
    db.create_subscription(&subscription("s2", "p2", "a1", NOW)).await.expect("create");
    db.create_subscription(&subscription("s3", "p1", "a2", NOW)).await.expect("create");
    db.delete_api("a1").await.expect("delete");
    let left = db.list_subscriptions(SubscriptionFilter::default()).await.expect("list");
    assert_eq!(left.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), ["s3"]);
    assert_eq!(db.subscription("s1").await.expect("read"), None);
    assert_eq!(db.list_applications(None).await.expect("list").len(), 2, "applications stay");
}

pub async fn deleting_an_application_deletes_its_subscriptions_and_credentials(db: Db) {
    catalogue(&db).await;
    db.create_subscription(&subscription("s1", "p1", "a1", NOW)).await.expect("create");
    db.create_subscription(&subscription("s2", "p1", "a2", NOW)).await.expect("create");
    db.create_subscription(&subscription("s3", "p2", "a1", NOW)).await.expect("create");
    db.put_credentials(&credentials("p1", "client-1")).await.expect("put");
    db.put_credentials(&credentials("p2", "client-2")).await.expect("put");
    db.delete_application("p1").await.expect("delete");
    let left = db.list_subscriptions(SubscriptionFilter::default()).await.expect("list");
    assert_eq!(left.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), ["s3"]);
    assert_eq!(db.credentials_by_client_id("client-1").await.expect("read"), None);
    assert_eq!(db.credentials_for_application("p1").await.expect("read"), None);
    assert!(db.credentials_by_client_id("client-2").await.expect("read").is_some(), "others stay");
    assert_eq!(db.list_apis().await.expect("list").len(), 2, "APIs stay");
    // The client id of a deleted application may be given out again.
    db.create_application(&application("p3", "bob", "mobile")).await.expect("create app");
    db.put_credentials(&credentials("p3", "client-1")).await.expect("reuse");
}

pub async fn granted_scopes_and_external_clients_are_stored(db: Db) {
    catalogue(&db).await;
    let mut granted = subscription("s1", "p1", "a1", NOW);
    granted.granted_scopes = vec!["chat".into()];
    db.create_subscription(&granted).await.expect("create");
    assert_eq!(db.subscription("s1").await.expect("read"), Some(granted.clone()));
    db.set_subscription_scopes("s1", &["chat".into(), "admin".into()]).await.expect("grant");
    let read = db.subscription("s1").await.expect("read").expect("found");
    assert_eq!(read.granted_scopes, ["chat", "admin"]);
    assert_eq!(not_found(db.set_subscription_scopes("s9", &[]).await), "subscription");

    let partner = ExternalClient { issuer: "https://idp.example".into(), client_id: "partner-1".into() };
    db.set_external_clients("p1", std::slice::from_ref(&partner)).await.expect("register");
    let app = db.application("p1").await.expect("read").expect("found");
    assert_eq!(app.external_clients, [partner]);
    assert_eq!(
        db.list_applications(None).await.expect("list").iter().filter(|a| !a.external_clients.is_empty()).count(),
        1
    );
    db.set_external_clients("p1", &[]).await.expect("unregister");
    assert!(db.application("p1").await.expect("read").expect("found").external_clients.is_empty());
    assert_eq!(not_found(db.set_external_clients("p9", &[]).await), "application");
}

pub async fn subscriptions_and_applications_change_plans(db: Db) {
    db.create_api(&api("a1", "Echo", "/echo", "1")).await.expect("create api");
    db.create_application(&application("p1", "alice", "App")).await.expect("create app");
    db.create_subscription(&subscription("s1", "p1", "a1", NOW)).await.expect("subscribe");
    db.set_subscription_plan("s1", "Silver").await.expect("move to Silver");
    assert_eq!(db.subscription("s1").await.expect("read").map(|s| s.plan), Some("Silver".into()));
    not_found(db.set_subscription_plan("s1", "Platinum").await);
    not_found(db.set_subscription_plan("nope", "Silver").await);
    db.set_application_plan("p1", Some("Bronze")).await.expect("set");
    assert_eq!(db.application("p1").await.expect("read").and_then(|a| a.plan), Some("Bronze".into()));
    not_found(db.set_application_plan("p1", Some("Platinum")).await);
    not_found(db.set_application_plan("nope", None).await);
}
