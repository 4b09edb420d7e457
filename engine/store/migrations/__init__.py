"""The schema's history as Alembic revisions (``versions/``), one per released change.

``engine.store.schema`` runs them; ``steps`` holds what revisions share. Revisions are frozen:
once released, a revision is never edited, a change of the schema is a new revision on top
(ARCHITECTURE.md, "Changing the schema", says how to write one).
"""
