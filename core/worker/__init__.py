"""``connector worker``: runs recipes on the schedules they declare, with every other worker.

:mod:`core.worker.schedule` says when a recipe is due and remembers the runs that finished;
:mod:`core.worker.scheduler` runs what is due, once across every worker sharing the state;
:mod:`core.worker.command` is the command line.
"""
