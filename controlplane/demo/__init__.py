"""The demo: the bundled aggregator and a control plane started on one machine
(`controlplane demo`), and the named incidents it, the end-to-end test and the MTTR benchmark
inject. Top layer: starts the other parts as processes; nothing imports it but `cli`.
"""
