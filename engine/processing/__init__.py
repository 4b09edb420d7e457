"""Claiming triggers, executing them and committing what they changed, and the threads around it.

``intake`` writes the triggers the engine accepts; ``runner`` claims a batch, builds run states
(kept between batches by ``run_cache``), executes them in memory and commits the batch with the
closes; ``workers`` runs that loop on background threads with a heartbeat that renews leases;
``outage`` rides out a lost database; ``observers`` tells a host (metrics) what each commit closed.
"""
