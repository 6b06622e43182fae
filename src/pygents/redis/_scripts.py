"""The Lua scripts: each one step Redis runs atomically."""

from __future__ import annotations

__all__ = ["CLAIM", "RELEASE", "RENEW", "SAVE"]

# KEYS: checkpoint hash, index set, lease ('' for none), stream, dead stream
# ARGV: agent, seq, data, saved_at, worker id, group, n acks, ack ids..., dead-letter fields...
# Returns -1 when the lease is not the worker's (nothing written), else 1 if the checkpoint
# was stored, 0 if a newer one was there. The acknowledged entries (turns now held in the
# checkpoint) are removed from the stream in the same step, and a dead letter is appended.
SAVE = """
if KEYS[3] ~= '' and redis.call('GET', KEYS[3]) ~= ARGV[5] then
  return -1
end
local stored = redis.call('HGET', KEYS[1], 'seq')
local saved = 0
if (not stored) or tonumber(stored) < tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'seq', ARGV[2], 'data', ARGV[3], 'saved_at', ARGV[4])
  redis.call('SADD', KEYS[2], ARGV[1])
  saved = 1
end
local n = tonumber(ARGV[7])
if n > 0 then
  local ids = {}
  for i = 8, 7 + n do ids[#ids + 1] = ARGV[i] end
  redis.call('XACK', KEYS[4], ARGV[6], unpack(ids))
  redis.call('XDEL', KEYS[4], unpack(ids))
end
if #ARGV > 7 + n then
  local fields = {}
  for i = 8 + n, #ARGV do fields[#fields + 1] = ARGV[i] end
  redis.call('XADD', KEYS[5], '*', unpack(fields))
end
return saved
"""

# KEYS: the leases to renew. ARGV: worker id, ttl ms. Returns the indexes (1-based) lost.
RENEW = """
local lost = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
  else
    lost[#lost + 1] = i
  end
end
return lost
"""

# KEYS: lease, owner. ARGV: worker id. Deletes both when the lease is the worker's.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
  return 1
end
return 0
"""

# KEYS: lease, stream. ARGV: worker id, group, most entries per other consumer.
# Returns -1 when the lease is not the worker's (nothing claimed). Else it moves to the worker
# the entries of the agent's stream that other consumers of the group read and never
# acknowledged (a worker that read them as it lost or gave up the agent), and returns them
# ({id, fields} each, per consumer in id order). The worker's own entries are left alone.
# When nothing is pending under another consumer, it costs a GET and an XPENDING summary.
CLAIM = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
local claimed = {}
local summary = redis.call('XPENDING', KEYS[2], ARGV[2])
if summary[1] == 0 then
  return claimed
end
for _, consumer in ipairs(summary[4]) do
  if consumer[1] ~= ARGV[1] then
    local ids = {}
    local pending = redis.call('XPENDING', KEYS[2], ARGV[2], '-', '+', ARGV[3], consumer[1])
    for _, entry in ipairs(pending) do ids[#ids + 1] = entry[1] end
    if #ids > 0 then
      for _, entry in ipairs(redis.call('XCLAIM', KEYS[2], ARGV[2], ARGV[1], 0, unpack(ids))) do
        if type(entry) == 'table' then claimed[#claimed + 1] = entry end
      end
    end
  end
end
return claimed
"""
