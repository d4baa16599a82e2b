"""The bundled casino aggregator: operator wallet, regions, front door and load generator.

It never imports the control plane; the control plane reaches it only over HTTP.
"""
