"""Collect: scrape targets over HTTP, parse the text exposition format, append to the store.

May import `tsdb` and `model` (and `controlplane.errors`); never rules, notify or anything above.
"""
