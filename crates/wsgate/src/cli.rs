//! The command line's shape (clap). PRODUCT.md's command list is a contract: scripts and docs
//! rely on these names and flags.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "wsgate", version, about = "WebSocket API gateway")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log lines as text (colours only on a terminal) or JSON objects [default: the config's
    /// observability.log_format, else text].
    #[arg(long, global = true, value_name = "text|json", env = "WSGATE_LOG_FORMAT", value_parser = ["text", "json"])]
    pub log_format: Option<String>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the gateway and its control plane. APIs may also be declared in the config file.
    Serve {
        /// TOML config file (see config/wsgate.example.toml). SIGHUP re-reads it: its [[apis]]
        /// apply to new handshakes at once.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Also re-read the config file whenever its content changes (checked every second).
        #[arg(long, requires = "config")]
        watch_config: bool,
        #[command(flatten)]
        common: ServerArgs,
    },
    /// Run `serve` with a built-in echo upstream, the EchoWebSocket API published, a demo
    /// application subscribed, and print what to try.
    Demo {
        #[command(flatten)]
        common: ServerArgs,
    },
    /// Run a WebSocket echo server (a demo, test and benchmark upstream).
    Echo {
        /// Address to listen on, e.g. 127.0.0.1:7070.
        #[arg(long)]
        listen: SocketAddr,
        /// Serve wss:// with this PEM certificate chain (with --tls-key).
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// PEM private key for --tls-cert.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// Create, list, show and move APIs through their lifecycle.
    Api {
        #[command(subcommand)]
        command: ApiCommand,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Create and list your applications.
    App {
        #[command(subcommand)]
        command: AppCommand,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Subscribe an application to an API with a business plan.
    Subscribe {
        /// Application name.
        #[arg(long)]
        app: String,
        /// API as NAME:VERSION.
        #[arg(long)]
        api: String,
        /// Business plan the API offers, e.g. Gold.
        #[arg(long)]
        plan: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Subscriptions: list them; block, unblock and grant scopes (publishers); their usage of
    /// their plan's limits, and moving them to another plan.
    Subscription {
        #[command(subcommand)]
        command: SubscriptionCommand,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Generate (or regenerate) an application's client id and secret; the secret is shown once.
    Keys {
        /// Application name.
        #[arg(long)]
        app: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Print an access token for an application, and nothing else (for `$(wsgate token …)`).
    Token {
        /// Application name.
        #[arg(long)]
        app: String,
        /// Space-separated scopes to ask for.
        #[arg(long)]
        scope: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Create, list, show, change and delete business plans (throttling tiers).
    Plan {
        #[command(subcommand)]
        command: PlanCommand,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List the cluster's nodes: state (up, gone, stopped), open connections, version, last
    /// heartbeat (admins).
    Nodes {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Revoke one access token, or every token an application holds so far; the gateway closes
    /// their live connections.
    #[command(group = clap::ArgGroup::new("what").required(true).args(["token", "app"]))]
    Revoke {
        /// The access token to revoke.
        #[arg(long)]
        token: Option<String>,
        /// Revoke every token issued to this application so far.
        #[arg(long)]
        app: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// The token signing keys (admins): list them, or rotate away from one now.
    SigningKey {
        #[command(subcommand)]
        command: SigningKeyCommand,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Subcommand)]
pub enum SigningKeyCommand {
    /// Every key: kid, algorithm, created, signs until, retires at (never private material).
    List,
    /// Make a new key sign from now on; the old one stays published until its tokens expire.
    /// Asking again for the same kid (on any node) makes no second key.
    Rotate {
        /// The key to rotate away from [default: the one signing now].
        #[arg(long)]
        kid: Option<String>,
    },
}

/// The limits of a plan, as flags (`create` and `update`). On `update`, a flag left out keeps
/// the plan's value and `none` removes a limit.
#[derive(Args, Default)]
pub struct PlanFlags {
    /// What the plan is for, shown to subscribers.
    #[arg(long)]
    pub description: Option<String>,
    /// Messages per period, N/PERIOD with PERIOD s, min, h or day (e.g. 50/s).
    #[arg(long, value_name = "N/PERIOD")]
    pub messages: Option<String>,
    /// Payload bytes per period, N/PERIOD (e.g. 1048576/min).
    #[arg(long, value_name = "N/PERIOD")]
    pub bytes: Option<String>,
    /// Which messages --messages and --bytes count: from the client (in), to it (out) or both.
    #[arg(long, value_parser = ["in", "out", "both"])]
    pub count: Option<String>,
    /// Connections open at once, per subscription.
    #[arg(long, value_name = "N")]
    pub connections: Option<String>,
    /// New connections per period, N/PERIOD (e.g. 10/min).
    #[arg(long, value_name = "N/PERIOD")]
    pub connection_rate: Option<String>,
    /// What reaching --messages or --bytes does: throttle (wait, lose nothing) or close (1008).
    #[arg(long, value_parser = ["throttle", "close"])]
    pub on_exceed: Option<String>,
}

#[derive(Subcommand)]
pub enum PlanCommand {
    /// Create a business plan (admin).
    Create {
        /// Plan name: letters, digits, '-', '.', '_' or '@'.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        flags: PlanFlags,
    },
    /// List the plans and their limits.
    List,
    /// Show one plan as JSON.
    Show {
        /// Plan name, e.g. Gold.
        name: String,
    },
    /// Change a plan's limits (admin); live connections follow within a second.
    Update {
        /// Plan name, e.g. Gold.
        name: String,
        #[command(flatten)]
        flags: PlanFlags,
    },
    /// Delete a plan nothing uses any more (admin).
    Delete {
        /// Plan name.
        name: String,
    },
}

#[derive(Subcommand)]
pub enum ApiCommand {
    /// Create a WebSocket API (CREATED, or PUBLISHED with --publish).
    Create {
        /// API name, e.g. EchoWebSocket.
        #[arg(long)]
        name: String,
        /// URL path prefix, e.g. /echowebsocket.
        #[arg(long)]
        context: String,
        /// API version, e.g. 1.0 (1.0 and 1.0.0 name the same version).
        #[arg(long)]
        version: String,
        /// ws:// or wss:// upstream; repeat for several.
        #[arg(long = "endpoint", required = true)]
        endpoints: Vec<String>,
        /// Business plans subscribers may choose, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "Gold,Silver")]
        plans: Vec<String>,
        /// oauth2 (access tokens, the default) or none (keyless).
        #[arg(long, default_value = "oauth2", value_parser = ["oauth2", "none"])]
        auth: String,
        /// Scopes the API knows, comma-separated: a token needs them all to connect, and a
        /// publisher grants them per subscription (`wsgate subscription grant`).
        #[arg(long, value_delimiter = ',')]
        scopes: Vec<String>,
        /// Publish at once ("create & publish"; needs the publisher role too).
        #[arg(long)]
        publish: bool,
        /// A plan whose limits all connections to the API share (protects the backend).
        #[arg(long)]
        api_plan: Option<String>,
        /// A plan whose limits each client address gets on its own (for keyless APIs).
        #[arg(long)]
        client_plan: Option<String>,
    },
    /// List APIs.
    List,
    /// Show one API as JSON.
    Show {
        /// The API as NAME:VERSION, e.g. EchoWebSocket:1.0.
        api: String,
    },
    /// Move an API to PUBLISHED.
    Publish {
        /// The API as NAME:VERSION, e.g. EchoWebSocket:1.0.
        api: String,
    },
    /// Move an API to DEPRECATED.
    Deprecate {
        /// The API as NAME:VERSION, e.g. EchoWebSocket:1.0.
        api: String,
    },
    /// Move an API to RETIRED.
    Retire {
        /// The API as NAME:VERSION, e.g. EchoWebSocket:1.0.
        api: String,
    },
    /// Move an API to BLOCKED.
    Block {
        /// The API as NAME:VERSION, e.g. EchoWebSocket:1.0.
        api: String,
    },
    /// Delete an API and its subscriptions.
    Delete {
        /// The API as NAME:VERSION, e.g. EchoWebSocket:1.0.
        api: String,
    },
    /// Change an API's endpoints, endpoint settings (timeouts, sizes, keepalive, retries, load
    /// balancing, circuit breaker, probe) and allowed origins; what is not given stays.
    Update {
        /// The API as NAME:VERSION, e.g. EchoWebSocket:1.0.
        api: String,
        /// ws:// or wss:// upstream, repeat for several: replaces the API's endpoints.
        #[arg(long = "endpoint")]
        endpoints: Vec<String>,
        #[command(flatten)]
        settings: Box<EndpointFlags>,
    },
    /// Each endpoint's state as the gateway sees it: up, suspended, half-open or down, live
    /// connections, failures in a row, the last failure.
    Endpoints {
        /// The API as NAME:VERSION, e.g. EchoWebSocket:1.0.
        api: String,
    },
}

/// An API's endpoint settings and allowed origins, as flags of `api update`. Durations are a
/// whole number and a unit (250ms, 10s, 5m, 1h, 7d); `default` gives a setting back to the
/// gateway's default.
#[derive(Args, Default)]
pub struct EndpointFlags {
    /// A JSON file of endpoint settings, as the REST API's endpoint_settings: replaces them
    /// all (the flags below then change it further).
    #[arg(long, value_name = "FILE.json")]
    pub endpoint_settings: Option<PathBuf>,
    /// TCP connect to one endpoint.
    #[arg(long, value_name = "DURATION|default")]
    pub connect_timeout: Option<String>,
    /// TLS and the endpoint's answer to the upgrade.
    #[arg(long, value_name = "DURATION|default")]
    pub upstream_handshake_timeout: Option<String>,
    /// No frame either way for this long closes the connection (1001).
    #[arg(long, value_name = "DURATION|default")]
    pub idle_timeout: Option<String>,
    /// How long a side may take to answer a close frame.
    #[arg(long, value_name = "DURATION|default")]
    pub close_timeout: Option<String>,
    /// The longest a connection may live; then both sides get 1001.
    #[arg(long, value_name = "DURATION|default")]
    pub max_lifetime: Option<String>,
    /// A ping to each quiet side this often (keepalive).
    #[arg(long, value_name = "DURATION|default")]
    pub ping_interval: Option<String>,
    /// How long a pinged side may stay silent before it is closed.
    #[arg(long, value_name = "DURATION|default")]
    pub ping_timeout: Option<String>,
    /// Largest frame payload in bytes (1009 beyond).
    #[arg(long, value_name = "BYTES|default")]
    pub max_frame_size: Option<String>,
    /// Largest message in bytes, all fragments together (1009 beyond).
    #[arg(long, value_name = "BYTES|default")]
    pub max_message_size: Option<String>,
    /// Further endpoints tried when connecting to one fails (default 2, at most 16).
    #[arg(long, value_name = "N|default")]
    pub retries: Option<String>,
    /// round_robin, least_connections, hash_application or hash_client_address (sticky).
    #[arg(long, value_name = "HOW")]
    pub load_balancing: Option<String>,
    /// One weight per endpoint, comma-separated (e.g. 3,1), or none for equal weights.
    #[arg(long, value_name = "W,W,...|none")]
    pub weights: Option<String>,
    /// The passive circuit breaker: on (the default) or off.
    #[arg(long, value_name = "on|off")]
    pub breaker: Option<String>,
    /// Failed connects in a row that suspend an endpoint (0: only the ratio counts).
    #[arg(long, value_name = "N")]
    pub breaker_failures: Option<String>,
    /// Or this percentage of failures over --breaker-min-attempts in --breaker-window.
    #[arg(long, value_name = "PERCENT")]
    pub breaker_failure_percent: Option<String>,
    /// Attempts in the window before the percentage counts.
    #[arg(long, value_name = "N")]
    pub breaker_min_attempts: Option<String>,
    /// The window the failure percentage is counted over.
    #[arg(long, value_name = "DURATION")]
    pub breaker_window: Option<String>,
    /// How long a suspended endpoint is skipped before a trial connection.
    #[arg(long, value_name = "DURATION")]
    pub breaker_cool_down: Option<String>,
    /// Each failed trial multiplies the cool-down by this (1-10).
    #[arg(long, value_name = "N")]
    pub breaker_progression_factor: Option<String>,
    /// The longest cool-down.
    #[arg(long, value_name = "DURATION")]
    pub breaker_max_cool_down: Option<String>,
    /// The active probe: off, tcp, or websocket:/PATH (an upgrade to PATH that must succeed).
    #[arg(long, value_name = "off|tcp|websocket:/PATH")]
    pub probe: Option<String>,
    /// How often the probe runs (at least 100ms).
    #[arg(long, value_name = "DURATION")]
    pub probe_interval: Option<String>,
    /// A probe taking longer fails.
    #[arg(long, value_name = "DURATION")]
    pub probe_timeout: Option<String>,
    /// An origin whose web pages may connect (scheme://host[:port]); repeat for several:
    /// replaces the list.
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    pub allowed_origins: Vec<String>,
    /// Let pages of any origin connect (empties the list).
    #[arg(long)]
    pub any_origin: bool,
}

#[derive(Subcommand)]
pub enum SubscriptionCommand {
    /// List the subscriptions you may see (publishers: all), with their ids.
    List {
        /// Only those to this API, as NAME:VERSION.
        #[arg(long)]
        api: Option<String>,
    },
    /// Block a subscription: its tokens stop working, and only a publisher can lift it.
    Block {
        /// Subscription id (see `subscription list`).
        id: String,
    },
    /// Lift a block.
    Unblock {
        /// Subscription id (see `subscription list`).
        id: String,
    },
    /// Grant a subscription some of its API's scopes (replacing what it had; none to revoke all).
    Grant {
        /// Subscription id (see `subscription list`).
        id: String,
        /// Scopes the API declares, comma-separated.
        #[arg(long, value_delimiter = ',', num_args = 0..)]
        scopes: Vec<String>,
    },
    /// A subscription's limits and how much of them is used now.
    Usage {
        /// Subscription id.
        id: String,
    },
    /// Move a subscription to another plan its API offers.
    Plan {
        /// Subscription id.
        id: String,
        /// The new plan, e.g. Silver.
        plan: String,
    },
}

#[derive(Subcommand)]
pub enum AppCommand {
    /// Create an application.
    Create {
        /// Application name, e.g. MyApp.
        #[arg(long)]
        name: String,
        /// What the application is for, shown in the developer portal.
        #[arg(long, default_value = "")]
        description: String,
        /// A plan all of the application's connections share, across APIs.
        #[arg(long)]
        plan: Option<String>,
    },
    /// List your applications.
    List,
}

/// Flags of the commands that run a server.
#[derive(Args, Clone)]
pub struct ServerArgs {
    /// Directory for the store and generated certificates [default: $WSGATE_DATA_DIR, else
    /// ~/.local/share/wsgate].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Plain ws:// listener address, or off (overrides gateway.ws_listen).
    #[arg(long, value_name = "IP:PORT|off", value_parser = listen_address)]
    pub ws_listen: Option<String>,
    /// TLS wss:// listener address, or off (overrides gateway.wss_listen).
    #[arg(long, value_name = "IP:PORT|off", value_parser = listen_address)]
    pub wss_listen: Option<String>,
    /// Control plane HTTPS listener address, or off (overrides control.listen).
    #[arg(long, value_name = "IP:PORT|off", value_parser = listen_address)]
    pub control_listen: Option<String>,
}

/// A listener address as the config file takes it: `IP:PORT`, or `off`.
fn listen_address(text: &str) -> Result<String, String> {
    match text {
        "off" => Ok(text.to_string()),
        _ => text
            .parse::<SocketAddr>()
            .map(|addr| addr.to_string())
            .map_err(|_| format!("\"{text}\" is not IP:PORT (e.g. 127.0.0.1:9099) or off")),
    }
}

/// Flags of the commands that talk to a control plane.
#[derive(Args)]
pub struct ClientArgs {
    /// Control plane URL.
    #[arg(long, env = "WSGATE_SERVER", default_value = "https://localhost:9443", global = true)]
    pub server: String,
    /// User to sign in as.
    #[arg(long, env = "WSGATE_USER", global = true)]
    pub user: Option<String>,
    /// That user's password (better in the environment than on the command line).
    #[arg(long, env = "WSGATE_PASSWORD", global = true, hide_env_values = true)]
    pub password: Option<String>,
    /// PEM CA bundle to trust for --server [default: the certificate the server generated in
    /// --data-dir].
    #[arg(long, global = true)]
    pub ca: Option<PathBuf>,
    /// The server's data directory, where its generated certificate is.
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// `--help` explains every flag and argument of every command: a blank help line leaves a
    /// newcomer guessing what `--version` of `api create` means.
    #[test]
    fn every_flag_and_argument_has_a_help_line() {
        fn walk(command: &clap::Command, path: &str, blank: &mut Vec<String>) {
            let path = format!("{path} {}", command.get_name());
            if command.get_about().is_none() && !command.is_hide_set() {
                blank.push(format!("{path} (the command itself)"));
            }
            for arg in command.get_arguments() {
                // clap's own --help and --version explain themselves.
                let generated = matches!(
                    arg.get_action(),
                    clap::ArgAction::Help
                        | clap::ArgAction::HelpShort
                        | clap::ArgAction::HelpLong
                        | clap::ArgAction::Version
                );
                if !generated && arg.get_help().is_none() {
                    blank.push(format!("{path} {}", arg.get_id()));
                }
            }
            for sub in command.get_subcommands().filter(|sub| sub.get_name() != "help") {
                walk(sub, &path, blank);
            }
        }
        let mut blank = Vec::new();
        walk(&Cli::command(), "", &mut blank);
        assert!(blank.is_empty(), "without a help line: {blank:#?}");
    }

    #[test]
    fn listeners_take_an_address_or_off() {
        assert_eq!(super::listen_address("off").as_deref(), Ok("off"));
        assert_eq!(super::listen_address("127.0.0.1:9099").as_deref(), Ok("127.0.0.1:9099"));
        assert!(super::listen_address("9099").is_err());
    }
}
