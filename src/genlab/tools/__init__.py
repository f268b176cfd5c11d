"""What a user does with a trained run or a set of runs, one module per task: sample
grids are in models.sampling; here latent, edit, probe, coverage, compare, report,
bench and doctor."""
