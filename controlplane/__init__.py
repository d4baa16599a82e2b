"""The SRE control plane.

scrape -> store -> evaluate -> alerts -> notify / remediate -> verify -> audit.
"""
