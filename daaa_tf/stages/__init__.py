"""Stage runners: a config in, artifacts out (source, CycleGAN + pair shards, adaptation, RevGrad, export, the
pipeline).
"""
