"""The wardrobe: a household's items and the outfits made of them.

Its routes attach to the households blueprint (``app.households.bp``): they live under
``/api/households/{householdId}/`` and their endpoint names, hence operation ids, are the
household's. The factory imports ``app.wardrobe.routes`` before registering that blueprint.
"""
