"""The console's pages, one module a page, each with a ``router`` the console includes."""
