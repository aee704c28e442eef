"""The Lua scripts that change dispatch state. Each runs atomically in Redis, so a transition, its
log entry, its notifications, its aggregate counts and (for a false-alarm closure) its suppression
mask happen together or not at all, and running one twice (a redelivered event, a repeated tap on a
phone, a retry after a lost reply) changes nothing the second time.

Shared prelude: `bump(order_key, rows, metrics)` adds 1 to each metric of the order's slots in the
order's buckets, in the aggregate layout the order was created with (see aggregates.py: `rows`
maps a layout to its row width; an order of a layout missing from `rows` is not counted, and a
metric beyond its layout's row is skipped); `note(log_key, at, kind, detail)` appends to the log.
Layout numbers (rows, metric indices, duration edges) come from Python in ARGV, never from here.
An order's buckets are in its field `agg_buckets` (`buckets` for layout 1): a dispatcher still
running the layout-1 code finds no `buckets` on a newer order and counts nothing, rather than
writing rows of the old width into the new layout's keys.
Scripts reach the keys named in the order hash (its buckets): firewatch needs a single Redis node.
"""

from __future__ import annotations

PRELUDE = r"""
local function bump(okey, rows, metrics)
  local h = redis.call('HMGET', okey, 'slots', 'agg_layout', 'agg_buckets', 'buckets')
  local slots, layout, buckets = h[1], h[2], h[3]
  if not layout then layout, buckets = '1', h[4] end  -- created before layouts were recorded
  local row = rows[layout]
  if not slots or not buckets or not row then return end
  local args = {'OVERFLOW', 'SAT'}
  for s in string.gmatch(slots, '[^,]+') do
    for _, m in ipairs(metrics) do
      if m < row then
        table.insert(args, 'INCRBY'); table.insert(args, 'u32')
        table.insert(args, '#' .. (tonumber(s) * row + m)); table.insert(args, 1)
      end
    end
  end
  if #args == 2 then return end
  for b in string.gmatch(buckets, '[^,]+') do redis.call('BITFIELD', b, unpack(args)) end
end

local function note(logkey, at, kind, detail)
  redis.call('XADD', logkey, '*', 'at', at, 'kind', kind, 'detail', detail)
end

local function tell(streams, maxlen, fields)
  for _, s in ipairs(streams) do
    redis.call('XADD', s, 'MAXLEN', '~', maxlen, '*', unpack(fields))
  end
end

local function bin(edges, seconds)
  local b = 0
  for i, e in ipairs(edges) do if seconds >= e then b = i - 1 end end
  return b
end
"""

# ARGV[1]: a JSON array of orders to create, each {k: [incident key, order key, log key,
# orders-by-created zset, sla zset, team open set ('' if none), slots hash, layouts set],
# f: [name, value, ...] (the order hash, with id, created_at, sla_deadline, responder among them),
# m: {scopes, layout, buckets (that layout's keys), rows, bumps (metric offsets to count: issued,
# dispatched, the detection-to-dispatch bin), streams, targets, maxlen, message}}.
# One call creates a whole batch: with `appendfsync always` Redis syncs the append-only file once
# per call instead of once per few orders. Returns 1 (created) or 0 (existed already) per order.
CREATE = (
    PRELUDE
    + r"""
local function create(k, f, meta)
  if redis.call('EXISTS', k[1]) == 1 then return 0 end
  local o = {}
  for i = 1, #f, 2 do o[f[i]] = f[i + 1] end
  redis.call('SET', k[1], o.id)
  redis.call('HSET', k[2], unpack(f))
  local slots = {}
  for i, scope in ipairs(meta.scopes) do
    local s = redis.call('HGET', k[7], scope)
    if not s then
      s = redis.call('HLEN', k[7])
      redis.call('HSET', k[7], scope, s)
    end
    slots[i] = s
  end
  redis.call('HSET', k[2], 'slots', table.concat(slots, ','), 'agg_layout', meta.layout,
             'agg_buckets', table.concat(meta.buckets, ','))
  redis.call('SADD', k[8], meta.layout)
  redis.call('ZADD', k[4], o.created_at, o.id)
  redis.call('ZADD', k[5], o.sla_deadline, o.id)
  if k[6] ~= '' then redis.call('SADD', k[6], o.id) end
  bump(k[2], meta.rows, meta.bumps)
  note(k[3], o.created_at, 'created', 'dispatched to ' .. o.responder)
  tell(meta.streams, meta.maxlen, meta.message)
  if #meta.streams > 1 then
    note(k[3], o.created_at, 'notified', table.concat(meta.targets, ' '))
  end
  return 1
end

local out = {}
for i, item in ipairs(cjson.decode(ARGV[1])) do out[i] = create(item.k, item.f, item.m) end
return out
"""
)

# KEYS: order key, log key, sla zset, team open set ('' if none), masks hash, masks version.
# ARGV: action, at (epoch s), resolution, cause, note, meta JSON {rows, metrics, edges},
# mask name and Mask JSON ('' and '' unless a close makes a suppression mask).
# A close with a mask writes the close, the mask (fw:masks), a new masks version and the order's
# field `mask` (the mask's name) at once. The same close repeated makes the mask only when the
# order has no `mask` field yet (a close by the old two-step code whose mask was lost), so a mask
# removed with `masks remove` stays removed.
# Returns {status, state, detail}: status ok | noop | invalid | missing.
TRANSITION = (
    PRELUDE
    + r"""
local okey, action, at = KEYS[1], ARGV[1], tonumber(ARGV[2])
local state = redis.call('HGET', okey, 'state')
if not state then return {'missing', '', 'no such order'} end
local meta = cjson.decode(ARGV[6])
local m, rows = meta.metrics, meta.rows
local mask_name, mask = ARGV[7], ARGV[8]

local function put_mask(detail)
  redis.call('HSET', KEYS[5], mask_name, mask)
  redis.call('INCR', KEYS[6])
  redis.call('HSET', okey, 'mask', mask_name)
  note(KEYS[2], ARGV[2], 'mask', 'suppression mask ' .. mask_name .. detail)
end

local created = tonumber(redis.call('HGET', okey, 'created_at'))
if action == 'ack' or action == 'arrive' then
  if state == 'closed' then
    return {'invalid', state, 'the order is closed; it cannot be ' ..
            (action == 'ack' and 'acknowledged' or 'reached')}
  end
  local bumps = {}
  if state == 'pending' then
    redis.call('HSET', okey, 'state', 'acknowledged', 'acked_at', ARGV[2], 'sla_deadline', '')
    redis.call('ZREM', KEYS[3], redis.call('HGET', okey, 'id'))
    table.insert(bumps, m.acknowledged)
    table.insert(bumps, m.to_ack + bin(meta.edges, at - created))
    note(KEYS[2], ARGV[2], 'ack', action == 'ack' and 'acknowledged' or 'acknowledged on arrival')
    state = 'acknowledged'
  elseif action == 'ack' then
    return {'noop', state, 'already acknowledged'}
  end
  if action == 'arrive' then
    if state == 'on_scene' then return {'noop', state, 'already on scene'} end
    redis.call('HSET', okey, 'state', 'on_scene', 'on_scene_at', ARGV[2])
    table.insert(bumps, m.on_scene)
    table.insert(bumps, m.to_scene + bin(meta.edges, at - created))
    note(KEYS[2], ARGV[2], 'arrive', 'on scene')
    state = 'on_scene'
  end
  bump(okey, rows, bumps)
  return {'ok', state, ''}
end
if action == 'close' then
  if state == 'closed' then
    local was = redis.call('HGET', okey, 'resolution')
    if was ~= ARGV[3] then
      return {'invalid', state, 'already closed as ' .. was .. ', not ' .. ARGV[3]}
    end
    local same = 'already closed as ' .. was
    if mask_name == '' or redis.call('HEXISTS', okey, 'mask') == 1
       or redis.call('HGET', okey, 'cause') ~= ARGV[4] then
      return {'noop', state, same}
    end
    if redis.call('HEXISTS', KEYS[5], mask_name) == 1 then
      redis.call('HSET', okey, 'mask', mask_name)  -- made by the old code, never recorded
      return {'noop', state, same}
    end
    put_mask(' (made by a repeated close: the first close had not made it)')
    return {'ok', state, ''}
  end
  redis.call('HSET', okey, 'state', 'closed', 'closed_at', ARGV[2], 'resolution', ARGV[3],
             'cause', ARGV[4], 'note', ARGV[5], 'sla_deadline', '')
  redis.call('ZREM', KEYS[3], redis.call('HGET', okey, 'id'))
  if KEYS[4] ~= '' then redis.call('SREM', KEYS[4], redis.call('HGET', okey, 'id')) end
  bump(okey, rows, {m.closed, m[ARGV[3]], m.to_close + bin(meta.edges, at - created)})
  local detail = ARGV[3]
  if ARGV[4] ~= '' then detail = detail .. ' (' .. ARGV[4] .. ')' end
  if ARGV[5] ~= '' then detail = detail .. ': ' .. ARGV[5] end
  note(KEYS[2], ARGV[2], 'close', detail)
  if mask_name ~= '' then put_mask('') end
  return {'ok', 'closed', ''}
end
return {'invalid', state, 'unknown action ' .. action}
"""
)

# KEYS: order key, log key, sla zset. ARGV: now, next deadline, meta JSON {rows, metrics,
# maxlen, prefix}. Escalates a pending order past its deadline one level up its chain (the top
# level is told again), notifies the new responder, and sets the next deadline.
# Returns the new responder, or false when there was nothing to do.
# Several dispatchers may run it for the same order at the same time: the deadline is checked
# and moved past `now` in this one atomic step, so only the first run escalates; the others find
# the order not due (tests/linkage/test_several_dispatchers.py).
ESCALATE = (
    PRELUDE
    + r"""
local okey = KEYS[1]
local id = redis.call('HGET', okey, 'id')
if not id or redis.call('HGET', okey, 'state') ~= 'pending' then return false end
local due = redis.call('ZSCORE', KEYS[3], id)
if not due or tonumber(due) > tonumber(ARGV[1]) then return false end
local meta = cjson.decode(ARGV[3])
local chain = cjson.decode(redis.call('HGET', okey, 'chain'))
local level = math.min(tonumber(redis.call('HGET', okey, 'level')) + 1, #chain - 1)
local target = chain[level + 1]
local n = redis.call('HINCRBY', okey, 'escalations', 1)
redis.call('HSET', okey, 'level', level, 'responder', target, 'sla_deadline', ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[2], id)
local metrics = {meta.metrics.escalations}
if n == 1 then table.insert(metrics, meta.metrics.escalated) end
bump(okey, meta.rows, metrics)
tell({meta.prefix .. target}, meta.maxlen, {'kind', 'escalation', 'order', id,
     'severity', redis.call('HGET', okey, 'severity'),
     'grid_id', redis.call('HGET', okey, 'grid_id'), 'at', ARGV[1],
     'text', 'unanswered for too long: escalated to you (' .. n .. ')'})
note(KEYS[2], ARGV[1], 'escalated', 'to ' .. target .. ' (escalation ' .. n .. ')')
return target
"""
)

# KEYS: order key, log key. ARGV: kind (severity | incident_closed), at, severity, rank,
# meta JSON {rows, metrics, ranks, streams, maxlen, message, targets}.
# Severity: raises the order's severity when `rank` is higher and re-notifies; else nothing.
INCIDENT = (
    PRELUDE
    + r"""
local okey = KEYS[1]
local state = redis.call('HGET', okey, 'state')
if not state then return 'missing' end
local meta = cjson.decode(ARGV[5])
if ARGV[1] == 'incident_closed' then
  if redis.call('HSETNX', okey, 'incident_closed_at', ARGV[2]) == 0 then return 'noop' end
  note(KEYS[2], ARGV[2], 'incident_closed',
       'the engine closed the incident (no detection for the inactivity window); order stays ' ..
       state)
  return 'ok'
end
local current = meta.ranks[redis.call('HGET', okey, 'severity')]
if tonumber(ARGV[4]) <= current then return 'noop' end
redis.call('HSET', okey, 'severity', ARGV[3])
note(KEYS[2], ARGV[2], 'severity', 'severity rose to ' .. ARGV[3])
if state ~= 'closed' and #meta.streams > 0 then
  tell(meta.streams, meta.maxlen, meta.message)
  bump(okey, meta.rows, {meta.metrics.renotified})
  note(KEYS[2], ARGV[2], 'notified', table.concat(meta.targets, ' '))
end
return 'ok'
"""
)
