"""The :class:`~engine.engine.Engine`'s methods by concern, each a class the Engine derives from.

The facade is one class to its callers (``from engine import Engine``), but some fifty methods
in one module hid what belongs together. ``engine.engine`` keeps what makes an engine and the
trigger API (construction, tree loading, createStart, createDeferred, resolutions, processing);
here are the reads (``inspection``), run control and retention (``run_control``), and
processes and instances (``kianda``). Each part names the engine attributes it uses; the
Engine sets them in ``__init__``. Each method stays thin: the logic is in the packages below.
"""
