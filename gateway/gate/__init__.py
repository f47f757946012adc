"""May this request pass, and as whom: the decision every door shares.

:mod:`~gateway.gate.authenticate` reads the session cookie and asks :mod:`~gateway.gate.access` (the
rules), returning one typed :class:`~gateway.gate.authenticate.Verdict`; :mod:`~gateway.gate.answers`
says how a refusal is worded; :mod:`~gateway.gate.assertion` and the proof (:mod:`gateway.proof`) are
what the app receives; :mod:`~gateway.gate.redirects` validates ``next``. Nothing here imports the
runtime, the pages or the doors: the doors in :mod:`gateway.front` only translate the verdict.
"""
