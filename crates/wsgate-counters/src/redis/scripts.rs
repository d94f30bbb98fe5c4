//! The Lua scripts the Redis backend runs. Each is one atomic step on the server and reads the
//! server's clock (`TIME`), so nodes whose clocks disagree still count the same windows.

use std::sync::LazyLock;

use redis::Script;

/// A token bucket in a hash (`tokens`, `at` in ms). `KEYS[1]`: the bucket; `ARGV`: capacity,
/// period in ms, tokens wanted (negative: tokens given back). Returns `{granted, wait_ms,
/// tokens_left}`: `wait_ms` is how long until one more token when fewer than wanted were
/// granted. The hash expires a period after its last use, when it would be full anyway.
pub static TAKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cap = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = cap
  at = now
end
if now > at then
  tokens = math.min(cap, tokens + (now - at) * cap / period)
  at = now
end
local granted = 0
if want < 0 then
  tokens = math.min(cap, tokens - want)
else
  granted = math.max(0, math.min(want, math.floor(tokens)))
  tokens = tokens - granted
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(at))
redis.call('PEXPIRE', KEYS[1], period + 60000)
local wait = 0
if granted < want then
  wait = math.ceil((1 - tokens) * period / cap)
end
return {granted, wait, math.floor(tokens)}
",
    )
});

/// Tokens left in a bucket now, without taking any. `KEYS[1]`: the bucket; `ARGV`: capacity,
/// period in ms.
pub static PEEK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cap = tonumber(ARGV[1])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then return cap end
if now > at then tokens = math.min(cap, tokens + (now - at) * cap / tonumber(ARGV[2])) end
return math.floor(tokens)
",
    )
});

/// A concurrent-connection cap as a sorted set of holders scored by their expiry. `KEYS[1]`:
/// the set; `ARGV`: cap, member, ttl in ms. Expired holders (dead nodes') are dropped first.
/// Returns 1 when the member got a place.
pub static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ttl * 2)
  return 1
end
return 0
",
    )
});

/// The heartbeat: pushes the expiry of this node's holders forward. `KEYS`: the sets;
/// `ARGV[1]`: ttl in ms, then one member per key. A holder that expired while Redis was away is
/// added back, so the count is whole again once Redis returns.
pub static REFRESH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + ttl, ARGV[i + 1])
  redis.call('PEXPIRE', key, ttl * 2)
end
return #KEYS
",
    )
});

/// Holders of a set that have not expired. `KEYS[1]`: the set.
pub static HOLDERS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
",
    )
});
