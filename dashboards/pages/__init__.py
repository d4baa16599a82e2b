"""One module per page: `dash.register_page`, a `layout(**query)` and its callbacks."""
