//! The publisher and the developer portal, driven by a real browser: headless Chromium runs
//! the seed journey (`tests/e2e/portal.mjs`, playwright-core) against the real `wsgate serve`
//! binary, and the stock wscat then calls the API with the token the browser copied from the
//! page. Chromium, node and playwright-core come from `scripts/test`; without them the test
//! fails and says so.
//!
//! Reading order: `browser` (finding the tools, running the script, reading its answer), then
//! the tests: `journey` (the seed journey), `plans` (a plan changed in the portal reaching a
//! live connection), `newcomer` (browsing without an account, required fields, a publisher's
//! plan change, the console's real reason for a failed connection), `analytics` (the
//! publisher's and the developer's charts after real traffic), `endpoints` (the publisher's
//! Endpoints tab: endpoint state and settings), `nodes` (the admin's Nodes page; 403 for a
//! publisher).

pub(crate) mod browser;

mod journey;
mod newcomer;
mod plans;
mod analytics;
mod endpoints;
mod nodes;
