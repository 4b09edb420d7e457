"""The Kianda side: processes (trees seen by process name), their instances and field values.

An instance is a run started through the instance API, with named fields read and written under
optimistic concurrency (a version per instance).
"""
