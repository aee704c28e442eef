"""The linkage queue on Redis: dispatch orders, acknowledgement, escalation, closure and rates.

keys.py names every Redis key; scripts.py holds the atomic Lua transitions; store.py is the only
module that talks to Redis for dispatch (codec.py encodes orders as Redis fields, inbox.py reads
notifications at least once, incidents.py records incident events and lists incidents, feed.py
reads the change feed); service.py adds the clock and the closed loop; consumer.py feeds
incident events in with retries; aggregates.py lays out the running counters and report.py reads
them.
"""
