"""The linkage queue on Redis: dispatch orders, acknowledgement, escalation, closure and rates.

keys.py names every Redis key; scripts.py holds the atomic Lua transitions; store.py is the only
module that talks to Redis for dispatch; service.py adds the clock and the closed loop;
consumer.py feeds incident events in with retries; report.py reads the running aggregates.
"""
