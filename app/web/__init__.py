"""Pages for people rather than programs: the interactive API documentation (``/api/docs``) and
the reference SPA (``/``). Both are off in production unless their setting turns them on."""
