"""Dash dashboards, mounted by the control plane at /dash/. They read; they never act."""
