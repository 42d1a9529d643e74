"""Built-in plugins: each module implements hooks of ``app.hookspecs``, as a third party would."""
