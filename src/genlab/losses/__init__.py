"""Pure loss functions: adversarial pairs, likelihoods, divergences."""
