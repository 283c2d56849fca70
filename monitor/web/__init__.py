"""The web front door (``monitor web``): operator pages, the JSON API, unsubscribe links, Atom, health."""
