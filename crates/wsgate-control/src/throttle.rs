//! Brute-force defence for everything that checks a secret: sign-in (REST and portals) and
//! OAuth2 client authentication. Failed attempts are counted under three keys, and each key
//! that has failed more than its free allowance is locked for an exponentially growing time:
//!
//! | key                     | free | first lock | longest lock | stops                               |
//! |-------------------------|------|------------|--------------|-------------------------------------|
//! | account + address       | 5    | 1 s        | 15 min       | guessing one account from one place |
//! | client address          | 100  | 1 s        | 1 min        | spraying many accounts from one place |
//! | account (any address)   | 20   | 1 s        | 1 min        | guessing one account from many places |
//!
//! A locked key answers 429 with `Retry-After` at once, without hashing anything, so a locked
//! attacker costs almost nothing. Nothing locks for good: after the lock a correct secret
//! works, a success clears the account's keys, and a key with no failure for a day is
//! forgotten. The account-wide lock is short on purpose: it is the only one an attacker
//! elsewhere can set off against a user, and it can hold that user out for a minute at most;
//! the address lock is short and generous for the same reason (everyone behind one NAT or
//! proxy shares an address).
//!
//! Memory is bounded: each table keeps at most [`CAPACITY`] keys; when full, forgotten keys go
//! first, then the one whose last failure is oldest. Keys are cut to 128 bytes, and IPv6
//! addresses count by their /64, which one subscriber usually holds whole.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keys kept per table.
pub const CAPACITY: usize = 10_000;
/// A key without a failure for this long starts over.
const FORGET_AFTER: Duration = Duration::from_secs(24 * 3600);
const LONGEST_KEY: usize = 128;

/// The failures one kind of key may have, and how long it is then locked.
#[derive(Debug, Clone, Copy)]
struct Policy {
    free: u32,
    first_lock: Duration,
    longest_lock: Duration,
}

const PAIR: Policy = Policy { free: 5, first_lock: Duration::from_secs(1), longest_lock: Duration::from_secs(900) };
const ADDRESS: Policy = Policy { free: 100, first_lock: Duration::from_secs(1), longest_lock: Duration::from_secs(60) };
const ACCOUNT: Policy = Policy { free: 20, first_lock: Duration::from_secs(1), longest_lock: Duration::from_secs(60) };

/// What checks a secret: a user signing in, or an OAuth2 client authenticating. Their names
/// are counted apart, so a user name and a client id never share a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    User,
    Client,
}

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Kind::User => "user:",
            Kind::Client => "client:",
        }
    }
}

/// Still locked: try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locked(pub Duration);

impl Locked {
    /// Whole seconds for `Retry-After`, at least 1.
    pub fn retry_after_secs(self) -> u64 {
        self.0.as_secs() + u64::from(self.0.subsec_nanos() > 0)
    }
}

#[derive(Debug, Default)]
pub struct Throttle {
    pairs: Mutex<Table>,
    addresses: Mutex<Table>,
    accounts: Mutex<Table>,
}

impl Throttle {
    /// Whether an attempt for `name` from `address` may be checked now.
    pub fn check(&self, kind: Kind, name: &str, address: IpAddr) -> Result<(), Locked> {
        let now = Instant::now();
        let (pair, address, account) = keys(kind, name, address);
        [(&self.pairs, &pair), (&self.addresses, &address), (&self.accounts, &account)]
            .into_iter()
            .filter_map(|(table, key)| lock(table).locked(key, now))
            .max()
            .map_or(Ok(()), |left| Err(Locked(left)))
    }

    /// Records a failed attempt.
    pub fn failed(&self, kind: Kind, name: &str, address: IpAddr) {
        let now = Instant::now();
        let (pair, address, account) = keys(kind, name, address);
        lock(&self.pairs).fail(pair, PAIR, now);
        lock(&self.addresses).fail(address, ADDRESS, now);
        lock(&self.accounts).fail(account, ACCOUNT, now);
    }

    /// Records a success: the account's keys start over. The address keeps its count, or an
    /// attacker holding one good account could wipe their address's record between guesses.
    pub fn succeeded(&self, kind: Kind, name: &str, address: IpAddr) {
        let (pair, _, account) = keys(kind, name, address);
        lock(&self.pairs).entries.remove(&pair);
        lock(&self.accounts).entries.remove(&account);
    }
}

fn lock(table: &Mutex<Table>) -> std::sync::MutexGuard<'_, Table> {
    table.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The (account + address, address, account) keys of an attempt.
fn keys(kind: Kind, name: &str, address: IpAddr) -> (String, String, String) {
    let mut account = format!("{}{name}", kind.prefix());
    if account.len() > LONGEST_KEY {
        let mut end = LONGEST_KEY;
        while !account.is_char_boundary(end) {
            end -= 1;
        }
        account.truncate(end);
    }
    let address = network(address);
    (format!("{account} {address}"), address, account)
}

/// An IPv4 address as it is; an IPv6 address by its /64 (an IPv4-mapped one as IPv4).
fn network(address: IpAddr) -> String {
    match address {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[derive(Debug, Default)]
struct Table {
    entries: HashMap<String, Entry>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure: Instant,
    locked_until: Option<Instant>,
}

impl Table {
    /// How long `key` stays locked, if it is.
    fn locked(&self, key: &str, now: Instant) -> Option<Duration> {
        let until = self.entries.get(key)?.locked_until?;
        (until > now).then(|| until - now)
    }

    fn fail(&mut self, key: String, policy: Policy, now: Instant) {
        if !self.entries.contains_key(&key) && self.entries.len() >= CAPACITY {
            self.make_room(now);
        }
        let entry = self.entries.entry(key).or_insert(Entry { failures: 0, last_failure: now, locked_until: None });
        if now.duration_since(entry.last_failure) > FORGET_AFTER {
            *entry = Entry { failures: 0, last_failure: now, locked_until: None };
        }
        entry.failures = entry.failures.saturating_add(1);
        entry.last_failure = now;
        if let Some(over) = entry.failures.checked_sub(policy.free + 1) {
            let lock = policy.first_lock.saturating_mul(1u32 << over.min(20)).min(policy.longest_lock);
            entry.locked_until = Some(now + lock);
        }
    }

    /// Drops forgotten keys; if none was, the key whose last failure is oldest.
    fn make_room(&mut self, now: Instant) {
        self.entries.retain(|_, entry| now.duration_since(entry.last_failure) <= FORGET_AFTER);
        if self.entries.len() < CAPACITY {
            return;
        }
        let oldest = self.entries.iter().min_by_key(|(_, entry)| entry.last_failure).map(|(key, _)| key.clone());
        if let Some(oldest) = oldest {
            self.entries.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    const HOME: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const ELSEWHERE: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));

    #[test]
    fn five_failures_are_free_then_locks_double_up_to_the_longest() {
        let mut table = Table::default();
        let now = Instant::now();
        for _ in 0..5 {
            table.fail("k".into(), PAIR, now);
        }
        assert_eq!(table.locked("k", now), None);
        let mut locks = Vec::new();
        for _ in 0..14 {
            table.fail("k".into(), PAIR, now);
            locks.push(table.locked("k", now).expect("locked").as_secs());
        }
        assert_eq!(&locks[..5], &[1, 2, 4, 8, 16]);
        assert_eq!(locks.last(), Some(&900), "capped at 15 minutes, never for good");
        assert_eq!(table.locked("k", now + Duration::from_secs(901)), None, "the lock runs out");
    }

    #[test]
    fn a_success_clears_the_account_but_not_the_address() {
        let throttle = Throttle::default();
        for _ in 0..6 {
            throttle.failed(Kind::User, "alice", HOME);
        }
        assert!(throttle.check(Kind::User, "alice", HOME).is_err());
        // Another place is not locked out of alice by this address's failures.
        assert!(throttle.check(Kind::User, "alice", ELSEWHERE).is_ok());
        // The real alice signing in elsewhere does not unlock the guesser at HOME...
        throttle.succeeded(Kind::User, "alice", ELSEWHERE);
        assert!(throttle.check(Kind::User, "alice", HOME).is_err());
        // ...but a correct password from HOME (once its lock ran out) starts alice over there.
        throttle.succeeded(Kind::User, "alice", HOME);
        assert!(throttle.check(Kind::User, "alice", HOME).is_ok());
        assert_eq!(lock(&throttle.addresses).entries.get("192.0.2.1").map(|e| e.failures), Some(6));
        // A client id is not a user name.
        for _ in 0..6 {
            throttle.failed(Kind::Client, "alice", HOME);
        }
        assert!(throttle.check(Kind::Client, "alice", HOME).is_err());
        assert!(throttle.check(Kind::User, "alice", HOME).is_ok());
    }

    #[test]
    fn tables_stay_bounded_whatever_the_names() {
        let mut table = Table::default();
        let now = Instant::now();
        for i in 0..CAPACITY + 500 {
            table.fail(format!("name-{i}"), ADDRESS, now + Duration::from_millis(i as u64));
        }
        assert_eq!(table.entries.len(), CAPACITY);
        assert!(table.entries.contains_key(&format!("name-{}", CAPACITY + 499)), "the newest is kept");
        assert!(!table.entries.contains_key("name-0"), "the oldest made room");
        let (_, _, account) = keys(Kind::User, &"é".repeat(500), HOME);
        assert!(account.len() <= LONGEST_KEY);
    }

    #[test]
    fn ipv6_counts_by_its_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().expect("ip");
        assert_eq!(network(a), network(b));
        assert_eq!(network("::ffff:192.0.2.1".parse().expect("ip")), "192.0.2.1");
    }
}
