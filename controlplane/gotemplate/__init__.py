"""A subset of Go's text/template, as Prometheus renders alert annotations with it: actions,
pipelines, `if`/`range`/`with`/`define`/`template`/`block`, variables, comparison and logic
builtins, and Go's `%v`/`%q`/float formatting. No HTML escaping contexts, no method calls on
arbitrary Go values. A library of its own: imports only `controlplane.errors`.
"""
