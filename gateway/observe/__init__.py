"""Observation: the security events, their listeners (audit log, Prometheus metrics) and logging set-up.

Everything else emits into this package and nothing here decides anything, so it sits just above the
floor (errors, types): the store, the state and the gate may all import it; it imports none of them.
"""
