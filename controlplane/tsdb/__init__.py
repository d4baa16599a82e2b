"""Store: the embedded time-series database (head, closed chunks, postings index), its
long-term tier (selected series downsampled beyond retention), its checkpoint (snapshot +
write-ahead log) and the export file format.

May import `model` (and `controlplane.errors`) only.
"""
