"""Development-only tools: never deploy them, never ship them in the wheel.

They exist so that ``make demo`` and the tests can run the whole sign-in flow on one
machine without a real OpenID provider. Nothing here is hardened for the Internet.
"""
