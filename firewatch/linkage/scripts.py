"""The Lua scripts that change dispatch state. Each runs atomically in Redis, so a transition, its
log entry, its notifications, its aggregate counts and (for a false-alarm closure) its suppression
mask happen together or not at all, and running one twice (a redelivered event, a repeated tap on a
phone, a retry after a lost reply) changes nothing the second time.

Every change also appends one entry to the change feed (keys.FEED, feed.py) in the same call, and
every incident event is recorded with its incident (incidents.py) by the script that acts on it
(CREATE for `opened`, INCIDENT for `updated` and `closed`): a change that is not in the feed, or an
event acted on but not recorded, cannot happen. A call that changes nothing appends nothing.

Shared prelude: `bump(order_key, rows, metrics)` adds 1 to each metric of the order's slots in the
order's buckets, in the aggregate layout the order was created with (see aggregates.py: `rows`
maps a layout to its row width; an order of a layout missing from `rows` is not counted, and a
metric beyond its layout's row is skipped); `note(log_key, at, kind, detail, by)` appends to the
log; `feed(feed_key, maxlen, fields)` appends to the change feed (feed.FIELDS, '' when absent),
`feed_order(...)` an order's entry from its hash, and `change(...)` both a log entry and its feed
entry; `record(r, ix, at, order_id, responder, feed_key, maxlen)` records an incident event.
Layout numbers (rows, metric indices, duration edges) come from Python in ARGV, never from here.
An order's buckets are in its field `agg_buckets` (`buckets` for layout 1): a dispatcher still
running the layout-1 code finds no `buckets` on a newer order and counts nothing, rather than
writing rows of the old width into the new layout's keys.
Scripts reach the keys named in the order hash (its buckets): firewatch needs a single Redis node.
"""

from __future__ import annotations

from firewatch.linkage.feed import FIELDS as FEED_FIELDS

PRELUDE = (
    "local FEED_FIELDS = {"
    + ", ".join(f"'{name}'" for name in FEED_FIELDS)
    + "}\n"
    + r"""
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

local function note(logkey, at, kind, detail, by)
  if by and by ~= '' then
    redis.call('XADD', logkey, '*', 'at', at, 'kind', kind, 'detail', detail, 'by', by)
  else
    redis.call('XADD', logkey, '*', 'at', at, 'kind', kind, 'detail', detail)
  end
end

local function feed(fkey, maxlen, e)
  local args = {}
  for _, name in ipairs(FEED_FIELDS) do
    table.insert(args, name); table.insert(args, e[name] or '')
  end
  redis.call('XADD', fkey, 'MAXLEN', '~', maxlen, '*', unpack(args))
end

local ORDER_FEED = {'order', 'incident', 'severity', 'state', 'team', 'village', 'township',
                    'district', 'grid_id', 'lat', 'lon', 'responder'}
local function feed_order(fkey, maxlen, okey, at, event, by, detail)
  local h = redis.call('HMGET', okey, 'id', 'incident_id', 'severity', 'state', 'team', 'village',
                       'township', 'district', 'grid_id', 'lat', 'lon', 'responder')
  local e = {kind = 'order', event = event, at = at, by = by, detail = detail}
  for i, name in ipairs(ORDER_FEED) do e[name] = h[i] end
  feed(fkey, maxlen, e)
end

local function change(okey, logkey, fkey, maxlen, at, kind, detail, by)
  note(logkey, at, kind, detail, by)
  feed_order(fkey, maxlen, okey, at, kind, by, detail)
end

-- r (incidents.record_item): the event's keys (key: record hash, events, seen, places: its
-- place indexes), incident, event_id, kind, json, fields (hash fields from the event),
-- detections, severity, score (first_seen), observed_at, detail; ix (incidents.INDEXES): the
-- other indexes. Returns 1, or 0 when this event id was recorded before (nothing is written).
-- The latest state is taken from the event unless it has fewer detections than the one recorded
-- (an older event, redelivered late); an incident once closed stays closed. Indexes are scored
-- by first_seen (a late detection can lower it).
local function record(r, ix, at, oid, responder, fkey, maxlen)
  if redis.call('SADD', r.seen, r.event_id) == 0 then return 0 end
  redis.call('RPUSH', r.events, r.json)
  local cur = redis.call('HMGET', r.key, 'status', 'severity', 'detections', 'first_seen')
  local status, severity, score = cur[1] or 'open', cur[2], cur[4]
  local h = {}
  if not cur[1] then h = {'id', r.incident, 'recorded_at', at} end
  if not cur[3] or tonumber(r.detections) >= tonumber(cur[3]) then
    for _, x in ipairs(r.fields) do h[#h + 1] = x end
    severity, score = r.severity, r.score
  end
  if r.kind == 'closed' then
    status = 'closed'
    h[#h + 1] = 'closed_at'; h[#h + 1] = r.observed_at
  end
  for _, x in ipairs({'status', status, 'updated_at', at, 'last_event', r.kind}) do
    h[#h + 1] = x
  end
  if oid ~= '' then h[#h + 1] = 'order_id'; h[#h + 1] = oid end
  redis.call('HSET', r.key, unpack(h))
  local moved = score ~= cur[4]  -- a new record, or a late detection lowered first_seen
  if cur[1] and cur[1] ~= status and ix.status[cur[1]] then
    redis.call('ZREM', ix.status[cur[1]], r.incident)
  end
  if cur[2] and cur[2] ~= severity and ix.severity[cur[2]] then
    redis.call('ZREM', ix.severity[cur[2]], r.incident)
  end
  if moved or status ~= cur[1] then redis.call('ZADD', ix.status[status], score, r.incident) end
  if moved or severity ~= cur[2] then
    redis.call('ZADD', ix.severity[severity], score, r.incident)
  end
  if moved then
    redis.call('ZADD', ix.all, score, r.incident)
    for _, k in ipairs(r.places) do redis.call('ZADD', k, score, r.incident) end
  end
  local v = {}
  for i = 1, #r.fields, 2 do v[r.fields[i]] = r.fields[i + 1] end
  feed(fkey, maxlen, {
    kind = 'incident', event = r.kind, incident = r.incident, order = oid,
    event_id = r.event_id, severity = severity, state = status, team = v.team,
    village = v.village, township = v.township, district = v.district, grid_id = v.grid_id,
    lat = v.lat, lon = v.lon, responder = responder, at = at, observed_at = r.observed_at,
    detail = r.detail})
  return 1
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
)

# ARGV[1]: a JSON array of orders to create, each {k: [incident key, order key, log key,
# orders-by-created zset, sla zset, team open set ('' if none), slots hash, layouts set, open
# orders zset (the dispatch board)],
# f: [name, value, ...] (the order hash, with id, created_at, sla_deadline, responder among them),
# m: {scopes, layout, buckets (that layout's keys), rows, bumps (metric offsets to count: issued,
# dispatched, the detection-to-dispatch bin), streams, targets, maxlen, message},
# r: the `opened` event to record (see record)}. ARGV[2]: the feed key, ARGV[3]: its maxlen,
# ARGV[4]: the incident indexes (incidents.INDEXES, JSON).
# One call creates a whole batch: with `appendfsync always` Redis syncs the append-only file once
# per call instead of once per few orders. Returns {created, recorded} per order: created 1 or 0
# (existed already), recorded 1 or 0 (the event was recorded before).
CREATE = (
    PRELUDE
    + r"""
local FEED, FEED_MAXLEN, IX = ARGV[2], ARGV[3], cjson.decode(ARGV[4])
local function create(k, f, meta, r)
  local o = {}
  for i = 1, #f, 2 do o[f[i]] = f[i + 1] end
  local exists = redis.call('EXISTS', k[1]) == 1
  local responder = o.responder
  if exists then responder = redis.call('HGET', k[2], 'responder') or '' end
  local recorded = record(r, IX, o.created_at, o.id, responder, FEED, FEED_MAXLEN)
  if exists then return {0, recorded} end
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
  redis.call('ZADD', k[9], o.created_at, o.id)
  if k[6] ~= '' then redis.call('SADD', k[6], o.id) end
  bump(k[2], meta.rows, meta.bumps)
  local detail = 'dispatched to ' .. o.responder
  note(k[3], o.created_at, 'created', detail)
  feed(FEED, FEED_MAXLEN, {
    kind = 'order', event = 'created', order = o.id, incident = o.incident_id,
    severity = o.severity, state = o.state, team = o.team, village = o.village,
    township = o.township, district = o.district, grid_id = o.grid_id, lat = o.lat, lon = o.lon,
    responder = o.responder, at = o.created_at, detail = detail})
  tell(meta.streams, meta.maxlen, meta.message)
  if #meta.streams > 1 then
    note(k[3], o.created_at, 'notified', table.concat(meta.targets, ' '))
  end
  return {1, recorded}
end

local out = {}
for i, item in ipairs(cjson.decode(ARGV[1])) do out[i] = create(item.k, item.f, item.m, item.r) end
return out
"""
)

# KEYS: order key, log key, sla zset, team open set ('' if none), masks hash, masks version, feed,
# open orders zset (the dispatch board: a close removes the order from it).
# ARGV: action, at (epoch s), resolution, cause, note, meta JSON {rows, metrics, edges,
# feed_maxlen}, mask name and Mask JSON ('' and '' unless a close makes a suppression mask), by
# (who did it, '' when unnamed: recorded on the log entries, their text and the feed entries),
# only team ('' for any: a team's token may act on its own team's orders only, checked here so
# that another team's order is refused before anything changes).
# A close with a mask writes the close, the mask (fw:masks), a new masks version and the order's
# field `mask` (the mask's name) at once. The same close repeated makes the mask only when the
# order has no `mask` field yet (a close by the old two-step code whose mask was lost), so a mask
# removed with `masks remove` stays removed.
# Returns {status, state, detail, order}: status ok | noop (order: the order's hash, HGETALL) |
# invalid | missing | forbidden (detail: the order's team).
# The transition's own part, after PRELUDE: the API's gate runs it inside a function, after
# the token check, in one script (firewatch/api/gate.py).
TRANSITION_BODY = r"""
local okey, action, at = KEYS[1], ARGV[1], tonumber(ARGV[2])
local state = redis.call('HGET', okey, 'state')
if not state then return {'missing', '', 'no such order'} end
local owner = redis.call('HGET', okey, 'team') or ''
if ARGV[10] ~= '' and owner ~= ARGV[10] then return {'forbidden', state, owner} end
local meta = cjson.decode(ARGV[6])
local m, rows = meta.metrics, meta.rows
local mask_name, mask, by = ARGV[7], ARGV[8], ARGV[9]

local function did(kind, detail)
  change(okey, KEYS[2], KEYS[7], meta.feed_maxlen, ARGV[2], kind, detail, by)
end
local function done(status, reached, detail)
  return {status, reached, detail, redis.call('HGETALL', okey)}
end
local function who(detail)
  if by == '' then return detail end
  return detail .. ', by ' .. by
end

local function put_mask(detail)
  redis.call('HSET', KEYS[5], mask_name, mask)
  redis.call('INCR', KEYS[6])
  redis.call('HSET', okey, 'mask', mask_name)
  did('mask', who('suppression mask ' .. mask_name .. detail))
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
    did('ack', who(action == 'ack' and 'acknowledged' or 'acknowledged on arrival'))
    state = 'acknowledged'
  elseif action == 'ack' then
    return done('noop', state, 'already acknowledged')
  end
  if action == 'arrive' then
    if state == 'on_scene' then return done('noop', state, 'already on scene') end
    redis.call('HSET', okey, 'state', 'on_scene', 'on_scene_at', ARGV[2])
    table.insert(bumps, m.on_scene)
    table.insert(bumps, m.to_scene + bin(meta.edges, at - created))
    did('arrive', who('on scene'))
    state = 'on_scene'
  end
  bump(okey, rows, bumps)
  return done('ok', state, '')
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
      return done('noop', state, same)
    end
    if redis.call('HEXISTS', KEYS[5], mask_name) == 1 then
      redis.call('HSET', okey, 'mask', mask_name)  -- made by the old code, never recorded
      return done('noop', state, same)
    end
    put_mask(' (made by a repeated close: the first close had not made it)')
    return done('ok', state, '')
  end
  redis.call('HSET', okey, 'state', 'closed', 'closed_at', ARGV[2], 'resolution', ARGV[3],
             'cause', ARGV[4], 'note', ARGV[5], 'sla_deadline', '')
  redis.call('ZREM', KEYS[3], redis.call('HGET', okey, 'id'))
  if KEYS[4] ~= '' then redis.call('SREM', KEYS[4], redis.call('HGET', okey, 'id')) end
  redis.call('ZREM', KEYS[8], redis.call('HGET', okey, 'id'))
  bump(okey, rows, {m.closed, m[ARGV[3]], m.to_close + bin(meta.edges, at - created)})
  local detail = ARGV[3]
  if ARGV[4] ~= '' then detail = detail .. ' (' .. ARGV[4] .. ')' end
  detail = who(detail)
  if ARGV[5] ~= '' then detail = detail .. ': ' .. ARGV[5] end
  did('close', detail)
  if mask_name ~= '' then put_mask('') end
  return done('ok', 'closed', '')
end
return {'invalid', state, 'unknown action ' .. action}
"""
TRANSITION = PRELUDE + TRANSITION_BODY

# KEYS: order key, log key, sla zset, feed. ARGV: now, next deadline, meta JSON {rows, metrics,
# maxlen, prefix, feed_maxlen}. Escalates a pending order past its deadline one level up its
# chain (the top level is told again), notifies the new responder, and sets the next deadline.
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
change(okey, KEYS[2], KEYS[4], meta.feed_maxlen, ARGV[1], 'escalated',
       'to ' .. target .. ' (escalation ' .. n .. ')', '')
return target
"""
)

# KEYS: order key, log key, feed. ARGV: kind (severity | incident_closed), at, severity, rank,
# meta JSON {rows, metrics, ranks, streams, maxlen, message, targets, feed_maxlen, reached,
# reached_streams, reached_message}, the `updated` or `closed` event to record (JSON, see record;
# recorded whether or not there is an order), the incident indexes (incidents.INDEXES, JSON).
# Reached: each team the fire has reached besides the order's (`reached`, with its stream in
# `reached_streams`) is told once (the order's field `told:<target>` remembers it) while the order
# is not closed: a notification, not a second order.
# Severity: raises the order's severity when `rank` is higher and re-notifies; else nothing.
# Returns {status, recorded, told}: status ok (the severity rose, or the order noted the incident's
# close) | noop | missing (no order), recorded 1 or 0, told: teams told the fire reached them.
INCIDENT = (
    PRELUDE
    + r"""
local okey = KEYS[1]
local state = redis.call('HGET', okey, 'state')
local meta = cjson.decode(ARGV[5])
local o = redis.call('HMGET', okey, 'id', 'responder')
local recorded = record(cjson.decode(ARGV[6]), cjson.decode(ARGV[7]), ARGV[2], o[1] or '',
                        o[2] or '', KEYS[3], meta.feed_maxlen)
if not state then return {'missing', recorded, 0} end
if ARGV[1] == 'incident_closed' then
  if redis.call('HSETNX', okey, 'incident_closed_at', ARGV[2]) == 0 then
    return {'noop', recorded, 0}
  end
  change(okey, KEYS[2], KEYS[3], meta.feed_maxlen, ARGV[2], 'incident_closed',
         'the engine closed the incident (no detection for the inactivity window); order stays ' ..
         state, '')
  return {'ok', recorded, 0}
end
local told = 0
if state ~= 'closed' then
  for i, target in ipairs(meta.reached) do
    if redis.call('HSETNX', okey, 'told:' .. target, ARGV[2]) == 1 then
      tell({meta.reached_streams[i]}, meta.maxlen, meta.reached_message)
      change(okey, KEYS[2], KEYS[3], meta.feed_maxlen, ARGV[2], 'reached',
             'the fire reached the cells of ' .. target .. ': told', '')
      told = told + 1
    end
  end
end
local current = meta.ranks[redis.call('HGET', okey, 'severity')]
if tonumber(ARGV[4]) <= current then return {'noop', recorded, told} end
redis.call('HSET', okey, 'severity', ARGV[3])
change(okey, KEYS[2], KEYS[3], meta.feed_maxlen, ARGV[2], 'severity',
       'severity rose to ' .. ARGV[3], '')
if state ~= 'closed' and #meta.streams > 0 then
  tell(meta.streams, meta.maxlen, meta.message)
  bump(okey, meta.rows, {meta.metrics.renotified})
  note(KEYS[2], ARGV[2], 'notified', table.concat(meta.targets, ' '))
end
return {'ok', recorded, told}
"""
)

# KEYS: masks hash, masks version, masks-by hash. ARGV: mask name, Mask JSON, who made it (JSON
# {by, at, note}). A mask made by hand (a muted cell): written with who made it and a new masks
# version, unless a mask of that name exists (then nothing changes). Returns 1 added, 0 not.
ADD_MASK = r"""
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
redis.call('INCR', KEYS[2])
return 1
"""
