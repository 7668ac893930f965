"""The results report: tables (results.md/json) and plots; the translation measures of the CycleGAN bench scripts."""
