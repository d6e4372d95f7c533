//! The Lua scripts: each multi-step operation runs atomically in one round trip
//! (`EVALSHA`, loaded on first use). Requires Redis >= 7.0 (`XAUTOCLAIM` that drops
//! deleted entries, exclusive `XRANGE` bounds).

use ::redis::Script;
use std::sync::LazyLock;

/// Reclaims entries idle at least the visibility timeout (or released), with their
/// delivery counts.
///
/// KEYS: jobs. ARGV: group, consumer, min idle ms, count.
/// Returns `{{id, {field, value, ...}, delivery_count}, ...}`.
pub(crate) static RECLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local want = tonumber(ARGV[4])
local out = {}
local cursor = '0-0'
for _ = 1, 8 do
  local r = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], cursor,
    'COUNT', want - #out)
  cursor = r[1]
  for _, e in ipairs(r[2]) do
    if type(e) == 'table' and type(e[2]) == 'table' then
      local p = redis.call('XPENDING', KEYS[1], ARGV[1], e[1], e[1], 1)
      local n = 0
      if p[1] then n = p[1][4] end
      out[#out + 1] = {e[1], e[2], n}
    end
  end
  if cursor == '0-0' or #out >= want then break end
end
return out
",
    )
});

/// Resets the idle time of a pending entry, if it is still the same delivery (same
/// delivery count): `IDLE 0` extends it, a huge `IDLE` releases it (the next
/// `XAUTOCLAIM` anywhere takes it). `JUSTID` leaves the delivery count alone.
///
/// A released entry (idle at least the threshold) is no longer current either.
///
/// KEYS: jobs. ARGV: group, id, delivery count, idle ms, released threshold ms. Returns
/// 1, or 0 when stale.
pub(crate) static SET_IDLE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if not p[1] or tonumber(p[1][4]) ~= tonumber(ARGV[3]) then return 0 end
if tonumber(p[1][3]) >= tonumber(ARGV[5]) then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], p[1][2], 0, ARGV[2], 'IDLE', ARGV[4], 'JUSTID')
return 1
",
    )
});

/// Moves an entry to the dead-letter stream (its fields plus reason, delivery count and
/// original id), then acks and deletes it. No-op (but ack) when it is gone.
///
/// KEYS: jobs, dead. ARGV: group, id, reason, delivery count, max dead letters.
/// Returns 1, or 0 when the entry was gone.
pub(crate) static DEAD_LETTER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local e = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
if not e[1] then return 0 end
local args = {'XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*'}
for _, v in ipairs(e[1][2]) do args[#args + 1] = v end
for _, v in ipairs({'reason', ARGV[3], 'delivery_count', ARGV[4], 'entry', ARGV[2]}) do
  args[#args + 1] = v
end
redis.call(unpack(args))
redis.call('XDEL', KEYS[1], ARGV[2])
return 1
",
    )
});

/// Queue gauges: stream length, pending count (0 without the group), dead letters.
///
/// KEYS: jobs, dead. ARGV: group. Returns `{len, pending, dead}`.
pub(crate) static STATS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local pending = 0
local p = redis.pcall('XPENDING', KEYS[1], ARGV[1])
if type(p) == 'table' and not p.err then pending = p[1] end
return {redis.call('XLEN', KEYS[1]), pending, redis.call('XLEN', KEYS[2])}
",
    )
});

/// Appends a token-stream entry with id `{seq}-0`, unless `seq` is not above the last
/// entry's or the last entry is an `End` (returns 0), or the stream is full (returns
/// -1). Sets the default TTL when the key has none, and announces the entry on the
/// channel named like the key.
///
/// KEYS: stream. ARGV: seq, entry JSON, max entries, default TTL ms. Returns 1 when
/// stored.
pub(crate) static APPEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local seq = tonumber(ARGV[1])
local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local last = top[1]
if last then
  if tonumber(string.match(last[1], '^(%d+)')) >= seq then return 0 end
  local f = last[2]
  for i = 1, #f, 2 do
    if f[i] == 'e' and string.sub(f[i + 1], 1, 6) == '{"End"' then return 0 end
  end
  if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[3]) then return -1 end
end
redis.call('XADD', KEYS[1], ARGV[1] .. '-0', 'e', ARGV[2])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
redis.call('PUBLISH', KEYS[1], ARGV[2])
return 1
"#,
    )
});
