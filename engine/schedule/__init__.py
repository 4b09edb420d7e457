"""Scheduled tasks: what a schedule is and when it fires, and the APScheduler that fires it.

``schedules`` is the API (``Engine.schedules``), ``when`` the kinds of schedule, ``targets`` what
a firing starts (a tree or a process's instance), ``firing`` one firing with its misfire policy
and history row, ``scheduler`` the APScheduler 3 thread, run by the one process ``leader`` lets.
"""
